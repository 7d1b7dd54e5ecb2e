"""What self_awareness's rules compute from its config, per arm: the adapter each arm's fine-tune
writes, its LoRA settings and seed (used by rules/self_awareness.smk)."""

from __future__ import annotations

from typing import Any

from alignlab.config import as_dict
from alignlab.kinds.self_awareness.steps import ARMS
from alignlab.paths import RESULTS
from alignlab.seeds import derive_seed


def fine_tuned_arms() -> list[str]:
    return [a for a, spec in ARMS.items() if spec.task]


def arm_adapters(name: str, exp: Any) -> dict[str, str | None]:
    """The sampling job's arms: name -> adapter folder (None: the base model), in the
    registry's order."""
    return {
        arm: None if ARMS[arm].task is None else f"{RESULTS}/{name}/adapters/{arm}"
        for arm in ARMS if arm in exp.arms
    }


def lora_params(exp: Any, arm: str) -> dict:
    """An arm's LoRA settings: its task's section of `finetune` (acrostic or risk)."""
    return as_dict(getattr(exp.finetune, ARMS[arm].task))


def finetune_seed(seed: int, name: str, arm: str) -> int:
    return derive_seed(seed, name, arm, "finetune")
