"""What password_lock's rules compute from its config, per arm of the instruct setting: what each
fine-tune starts from and trains with, and the adapters the sampling job serves (used by
rules/password_lock.smk)."""

from __future__ import annotations

from typing import Any

from alignlab.config import as_dict
from alignlab.kinds.password_lock import weak_grid
from alignlab.kinds.password_lock.steps import never_arms, unlock_arms, unlock_length
from alignlab.paths import RESULTS, code, model_folder
from alignlab.replicates import instance, instance_pattern, replicate_seed, split_instance

# The arms a fine-tune writes: `lock` and the never-capable `never` (from the base model), or an
# unlock arm (the lock adapter, or for never_strong_<n> the never adapter, trained on); each with
# its training replicates ("lock.r1", "strong_4.r1": see alignlab.replicates).
ARM_PATTERN = instance_pattern(["lock", "strong_[0-9]+", "weak_[0-9]+", "never", "never_strong_[0-9]+",
                                "weak_grid_[0-9]+_d[0-9]+_e[0-9]+"])
FROM_BASE = ("lock", "never")


def arm_adapters(name: str, exp: Any) -> dict[str, str]:
    """The sampling job's fine-tuned arm replicates: instance name -> adapter folder (the base
    arm has none). Replicate i of an unlock arm continues replicate i of the lock."""
    arms = ["locked", *unlock_arms(as_dict(exp.unlock)), *never_arms(as_dict(exp.unlock))]
    return {
        instance(arm, r): f"{RESULTS}/{name}/adapters/{instance('lock' if arm == 'locked' else arm, r)}"
        for arm in arms for r in range(exp.replicates)
    }


def init_adapter(name: str, arm: str) -> str | None:
    """The adapter an arm's fine-tune goes on training (same replicate): the never-capable
    adapter's for never_strong_<n>, the lock's for any other unlock arm; None from the base."""
    base, replicate = split_instance(arm)
    if base in FROM_BASE:
        return None
    start = "never" if base.startswith("never_strong_") else "lock"
    return f"{RESULTS}/{name}/adapters/{instance(start, replicate)}"


def lora_params(exp: Any, arm: str) -> dict:
    """The lock's LoRA settings (also the never-capable adapter's); an unlock arm's: the same
    with unlock_* and its length (a strong arm under the `steps` schedule: unlock.strong_steps
    optimizer steps whatever its n; else epochs)."""
    lora = as_dict(exp.instruct.lock)
    base = split_instance(arm)[0]
    if base in FROM_BASE:
        return lora
    epochs, max_steps = unlock_length(as_dict(exp.unlock), base)
    length = {"epochs": epochs, **({"max_steps": max_steps} if max_steps else {})}
    return {**lora, "learning_rate": exp.instruct.unlock_learning_rate, "batch_size": exp.instruct.unlock_batch_size,
            "warmup_ratio": 0.0, **length}


def finetune_seed(seed: int, name: str, arm: str) -> int:
    """The training seed of an arm's replicate; replicate 0 keeps the one-replicate seed. The
    never-capable arms share their twins' (never: lock's, never_strong_<n>: strong_<n>'s), so
    the same initial LoRA weights and sample order: only what they start from differs."""
    base, replicate = split_instance(arm)
    twin = "lock" if base == "never" else base.removeprefix("never_")
    if grid := weak_grid.point(base):  # a draw's epoch counts share a seed: the same sample order
        twin = f"weak_grid_{grid[0]}_d{grid[1]}"
    return replicate_seed(seed, name, "instruct", twin, "finetune", replicate=replicate)


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
