"""What password_lock's rules compute from its config, per arm of the instruct setting: what each
fine-tune starts from and trains with, and the adapters the sampling job serves (used by
rules/password_lock.smk)."""

from __future__ import annotations

from typing import Any

from alignlab.config import as_dict
from alignlab.kinds.password_lock.steps import unlock_arms
from alignlab.paths import RESULTS, code, model_folder
from alignlab.seeds import derive_seed

# The arms a fine-tune writes: `lock` (from the base model), or an unlock arm (the lock adapter trained on).
ARM_PATTERN = "lock|strong_[0-9]+|weak_[0-9]+"


def arm_adapters(name: str, exp: Any) -> dict[str, str]:
    """The sampling job's fine-tuned arms: arm -> adapter folder (the base arm has none)."""
    arms = ["locked", *unlock_arms(as_dict(exp.unlock))]
    return {arm: f"{RESULTS}/{name}/adapters/{'lock' if arm == 'locked' else arm}" for arm in arms}


def init_adapter(name: str, arm: str) -> str | None:
    """The adapter an arm's fine-tune goes on training: the lock's for an unlock arm."""
    return None if arm == "lock" else f"{RESULTS}/{name}/adapters/lock"


def lora_params(exp: Any, arm: str) -> dict:
    """The lock's LoRA settings; an unlock arm's: the same with unlock_* and its epochs."""
    lora = as_dict(exp.instruct.lock)
    if arm == "lock":
        return lora
    epochs = exp.unlock.strong_epochs if arm.startswith("strong_") else exp.unlock.weak_epochs
    return {**lora, "learning_rate": exp.instruct.unlock_learning_rate, "batch_size": exp.instruct.unlock_batch_size,
            "epochs": epochs, "warmup_ratio": 0.0}


def finetune_seed(seed: int, name: str, arm: str) -> int:
    return derive_seed(seed, name, "instruct", arm, "finetune")


def finetune_inputs(name: str, exp: Any, arm: str) -> dict:
    """The lock adapter trains from the base model; an unlock arm's trains the lock adapter on."""
    inputs = {
        "train_path": f"{RESULTS}/{name}/train/{arm}.parquet",
        "model_dir": model_folder(exp.model),
        "code": code("finetune.train_step"),
    }
    if init_adapter(name, arm):
        inputs["init_adapter"] = init_adapter(name, arm)
    return inputs
