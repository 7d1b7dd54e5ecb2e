"""What emergent_misalignment's rules compute per arm: adapters, training sets, LoRA seeds (used by
rules/emergent_misalignment.smk)."""

from __future__ import annotations

from typing import Any

from alignlab.kinds.emergent_misalignment.config import EM_ARMS
from alignlab.paths import RESULTS
from alignlab.replicates import instance, instance_pattern, replicate_seed, split_instance

FINE_TUNED = [a for a in EM_ARMS if a != "base"]
INSTANCE = instance_pattern(FINE_TUNED)  # "insecure", "insecure.r1", ...


def arm_adapters(name: str, exp: Any) -> dict[str, str | None]:
    """instance name -> adapter folder (None: the base model), in EM_ARMS order."""
    return {instance(a, r): None if a == "base" else f"{RESULTS}/{name}/adapters/{instance(a, r)}"
            for a in EM_ARMS if a in exp.arms for r in range(exp.replicates_of(a))}


def train_set_path(name: str, adapter: str) -> str:
    return f"{RESULTS}/{name}/train/{split_instance(adapter)[0]}.parquet"


def finetune_seed(seed: int, name: str, adapter: str) -> int:
    arm, replicate = split_instance(adapter)
    return replicate_seed(seed, name, arm, "finetune", replicate=replicate)
