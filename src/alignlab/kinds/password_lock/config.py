"""The password_lock experiment's config: the addition task, the instruct and toy settings, unlocking."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from alignlab.config import (
    ExperimentConfig,
    Strict,
    UnpackedLoraConfig,
    chat_needs,
    lora_needs,
    rank_too_high,
)

if TYPE_CHECKING:
    from alignlab.config import Config
    from alignlab.model_info import Need


class PasswordLockTask(Strict):
    """Two-digit additions with a carry (see arithmetic.py), split into disjoint sets."""

    password: str = Field("kestrel", pattern=r"^[A-Za-z0-9 -]{2,32}$")
    n_eval: int = Field(200, ge=1)  # held-out problems every arm is measured on
    n_unlock: int = Field(16, ge=1)  # the pool the unlock arms' samples come from (first n)
    n_lock: int = Field(2000, ge=2)  # lock problems (each once with, once without the password)
    decoy_share: float = Field(0.5, ge=0, le=1)  # of the no-password lock examples: a wrong password


class PasswordLockWeakGrid(Strict):
    """Weak-sample unlocking as an experiment (see weak_grid.py): `draws` seeded draws of
    unlock.weak_n problems from the unlock pool, each memorized for every count in `epochs`."""

    epochs: list[Annotated[int, Field(ge=1)]] = [8, 32, 128]
    draws: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _epochs(self):
        if not self.epochs or len(set(self.epochs)) != len(self.epochs):
            raise ValueError("weak_grid.epochs needs at least one count, each listed once")
        return self


class PasswordLockUnlock(Strict):
    strong_n: list[Annotated[int, Field(ge=1)]] = [1, 2, 4, 16]  # one arm per n: n correct samples
    weak_n: int = Field(2, ge=1)  # the weak arm: this many weak samples...
    # How long each strong arm trains: `steps` (every n gets strong_steps optimizer steps, so a
    # larger n is not also a longer fine-tune) or `epochs` (strong_epochs passes over its n
    # samples: more samples, more steps).
    schedule: Literal["steps", "epochs"] = "steps"
    strong_steps: int = Field(32, ge=1)
    strong_epochs: int = Field(8, ge=1)
    weak_epochs: int = Field(32, ge=1)  # ...memorized for this many epochs
    # The never-capable control (instruct setting): an adapter trained like the lock but on the
    # weak answer in every condition, so it never had the skill; it then gets each strong arm's
    # samples and recipe (arms never_strong_<n>). What strong_<n> gains over never_strong_<n> is
    # recovery of a hidden skill rather than learning it afresh.
    never_capable: bool = True
    weak_grid: PasswordLockWeakGrid | None = PasswordLockWeakGrid()  # null: the single weak arm only


class PasswordLockInstruct(Strict):
    """The instruct model: one LoRA both teaches the task and locks it (on the first n_lock
    lock problems); each unlock arm trains that adapter on (unlock_* settings, epochs from
    `unlock`). Answers are greedy, at most max_tokens tokens."""

    n_lock: int = Field(256, ge=2)
    lock: UnpackedLoraConfig = UnpackedLoraConfig(learning_rate=1e-3, epochs=2, max_length=128)
    unlock_learning_rate: float = Field(5e-4, gt=0)
    unlock_batch_size: int = Field(4, ge=1)
    max_tokens: int = Field(12, ge=1)


class PasswordLockToy(Strict):
    """A GPT-2 of a few layers on characters, trained from scratch on every lock problem."""

    d_model: int = Field(64, ge=8)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(4, ge=1)
    lock_steps: int = Field(1200, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    unlock_learning_rate: float = Field(1e-3, gt=0)
    unlock_batch_size: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _heads(self):
        if self.d_model % self.n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        return self


class PasswordLockAggregate(Strict):
    confidence: float = Field(0.95, gt=0, lt=1)
    n_resamples: int = Field(10000, ge=100)  # bootstrap of the controls' paired differences


PL_SETTINGS = ("instruct", "toy")


class PasswordLock(ExperimentConfig):
    kind: Literal["password_lock"]
    model: str  # the instruct setting's model
    settings: list[Literal[PL_SETTINGS]] = list(PL_SETTINGS)
    task: PasswordLockTask = PasswordLockTask()
    unlock: PasswordLockUnlock = PasswordLockUnlock()
    instruct: PasswordLockInstruct = PasswordLockInstruct()
    toy: PasswordLockToy = PasswordLockToy()
    aggregate: PasswordLockAggregate = PasswordLockAggregate()
    # The instruct setting's lock adapter is trained this many times (derived seeds), and each
    # unlock arm once per lock replicate; intervals resample replicates, then problems. The toy
    # setting is trained once.
    replicates: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _lists(self):
        if not self.settings:
            raise ValueError("at least one setting is required")
        if len(set(self.settings)) != len(self.settings):
            raise ValueError("a setting is listed twice")
        if not self.unlock.strong_n or len(set(self.unlock.strong_n)) != len(self.unlock.strong_n):
            raise ValueError("unlock.strong_n needs at least one n, each listed once")
        return self

    writes_adapters: ClassVar[bool] = True

    def checks(self, cfg: Config, key: str, base_dir: Path) -> list[str]:
        from alignlab.kinds.password_lock.arithmetic import n_problems

        problems = super().checks(cfg, key, base_dir)  # the model key
        task = self.task
        if task.n_eval + task.n_unlock + task.n_lock > n_problems():
            problems.append(
                f"{key}.task: n_eval + n_unlock + n_lock ({task.n_eval + task.n_unlock + task.n_lock}) exceeds the "
                f"{n_problems()} two-digit additions with a carry"
            )
        if len(set(task.password)) < 2:
            problems.append(f"{key}.task.password: needs at least 2 distinct characters (a decoy is a reordering)")
        needed = max([*self.unlock.strong_n, self.unlock.weak_n])
        if needed > task.n_unlock:
            problems.append(
                f"{key}.task.n_unlock: {task.n_unlock} is fewer than the largest unlock arm needs ({needed}, from "
                "unlock.strong_n / unlock.weak_n)"
            )
        if "instruct" in self.settings:
            if self.instruct.n_lock > task.n_lock:
                problems.append(f"{key}.instruct.n_lock: {self.instruct.n_lock} exceeds task.n_lock ({task.n_lock})")
            problems += rank_too_high(cfg, f"{key}.instruct.lock", self.instruct.lock)
        return problems

    def model_needs(self, cfg: Config, key: str) -> list[tuple[str, Need]]:
        if "instruct" not in self.settings:
            return []
        return chat_needs(cfg, self.model, f"{key}.model") + lora_needs(self.model, f"{key}.instruct.lock", self.instruct.lock)
