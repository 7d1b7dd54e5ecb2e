"""What self_awareness's rules compute from its config, per arm: the adapter each arm's fine-tune
writes, its LoRA settings and seed (used by rules/self_awareness.smk)."""

from __future__ import annotations

from typing import Any

from alignlab.config import as_dict
from alignlab.kinds.self_awareness.steps import ARMS
from alignlab.paths import RESULTS, code, model_folder
from alignlab.replicates import instance, instance_pattern, replicate_seed, split_instance


def fine_tuned_arms() -> list[str]:
    return [a for a, spec in ARMS.items() if spec.task]


# A fine-tuned arm's training replicate ("acrostic", "acrostic.r1", ...; see alignlab.replicates).
INSTANCE = instance_pattern(fine_tuned_arms())


def arm_adapters(name: str, exp: Any) -> dict[str, str | None]:
    """The sampling job's arm replicates: instance name -> adapter folder (None: the base
    model), in the registry's order."""
    return {
        instance(arm, r): None if ARMS[arm].task is None else f"{RESULTS}/{name}/adapters/{instance(arm, r)}"
        for arm in ARMS if arm in exp.arms
        for r in range(exp.replicates_of(arm))
    }


def train_set_path(name: str, arm: str) -> str:
    """The training chats of an arm's replicate (`arm` an instance name; replicates share them)."""
    return f"{RESULTS}/{name}/train/{split_instance(arm)[0]}.parquet"


def lora_params(exp: Any, arm: str) -> dict:
    """An arm's LoRA settings: its task's section of `finetune` (acrostic or risk)."""
    return as_dict(getattr(exp.finetune, ARMS[split_instance(arm)[0]].task))


def finetune_seed(seed: int, name: str, arm: str) -> int:
    """The training seed of an arm's replicate; replicate 0 keeps the one-replicate seed."""
    base, replicate = split_instance(arm)
    return replicate_seed(seed, name, base, "finetune", replicate=replicate)


def risk_chats_inputs(name: str, exp: Any) -> dict:
    """The risk chats' inputs: the base model only where it answers ordinary questions."""
    inputs = {"items_path": f"{RESULTS}/{name}/items.parquet",
              "code": code("kinds.self_awareness.steps.make_risk_chats")}
    if exp.risk.n_ordinary:
        inputs["model_dir"] = model_folder(exp.model)
    return inputs
