"""What password_lock's rules compute from its config, per arm of the instruct setting: what each
fine-tune starts from and trains with, and the adapters the sampling job serves (used by
rules/password_lock.smk)."""

from __future__ import annotations

from typing import Any

from alignlab.config import as_dict
from alignlab.kinds.password_lock.steps import unlock_arms
from alignlab.paths import RESULTS, code, model_folder
from alignlab.replicates import instance, instance_pattern, replicate_seed, split_instance

# The arms a fine-tune writes: `lock` (from the base model), or an unlock arm (the lock adapter
# trained on); each with its training replicates ("lock.r1", "strong_4.r1": see alignlab.replicates).
ARM_PATTERN = instance_pattern(["lock", "strong_[0-9]+", "weak_[0-9]+"])


def arm_adapters(name: str, exp: Any) -> dict[str, str]:
    """The sampling job's fine-tuned arm replicates: instance name -> adapter folder (the base
    arm has none). Replicate i of an unlock arm continues replicate i of the lock."""
    arms = ["locked", *unlock_arms(as_dict(exp.unlock))]
    return {
        instance(arm, r): f"{RESULTS}/{name}/adapters/{instance('lock' if arm == 'locked' else arm, r)}"
        for arm in arms for r in range(exp.replicates)
    }


def init_adapter(name: str, arm: str) -> str | None:
    """The adapter an arm's fine-tune goes on training: the lock's (same replicate) for an
    unlock arm."""
    base, replicate = split_instance(arm)
    return None if base == "lock" else f"{RESULTS}/{name}/adapters/{instance('lock', replicate)}"


def lora_params(exp: Any, arm: str) -> dict:
    """The lock's LoRA settings; an unlock arm's: the same with unlock_* and its epochs."""
    lora = as_dict(exp.instruct.lock)
    base = split_instance(arm)[0]
    if base == "lock":
        return lora
    epochs = exp.unlock.strong_epochs if base.startswith("strong_") else exp.unlock.weak_epochs
    return {**lora, "learning_rate": exp.instruct.unlock_learning_rate, "batch_size": exp.instruct.unlock_batch_size,
            "epochs": epochs, "warmup_ratio": 0.0}


def finetune_seed(seed: int, name: str, arm: str) -> int:
    """The training seed of an arm's replicate; replicate 0 keeps the one-replicate seed."""
    base, replicate = split_instance(arm)
    return replicate_seed(seed, name, "instruct", base, "finetune", replicate=replicate)


def finetune_inputs(name: str, exp: Any, arm: str) -> dict:
    """The lock adapter trains from the base model; an unlock arm's trains the lock adapter on."""
    inputs = {
        "train_path": f"{RESULTS}/{name}/train/{split_instance(arm)[0]}.parquet",  # replicates share it
        "model_dir": model_folder(exp.model),
        "code": code("finetune.train_step"),
    }
    if init_adapter(name, arm):
        inputs["init_adapter"] = init_adapter(name, arm)
    return inputs
