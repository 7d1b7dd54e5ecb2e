"""The self_awareness experiment's config: the acrostic and risk tasks, fine-tunes, arms, sampling."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from alignlab.config import (
    DEFAULT_PERSONA,
    ExperimentConfig,
    Persona,
    Strict,
    UnpackedLoraConfig,
    chat_needs,
    lora_needs,
    rank_too_high,
)

if TYPE_CHECKING:
    from alignlab.config import Config
    from alignlab.model_info import Need


class AcrosticConfig(Strict):
    """Chats whose answers' line initials spell `word` (never written in the data)."""

    word: str = Field("HELLO", pattern=r"^[A-Za-z]{2,12}$")
    # A word that is hard to guess, for the acrostic_hard arm: separates naming the rule from
    # guessing a common word.
    hard_word: str = Field("HELOL", pattern=r"^[A-Za-z]{2,12}$")
    n_train: int = Field(50, ge=2)  # training chats per word
    n_eval: int = Field(30, ge=1)  # held-out questions
    line_min_chars: int = Field(12, ge=1)
    line_max_chars: int = Field(90, ge=2)
    answer_max_tokens: int = Field(200, ge=16)  # for the generated answers and the eval samples
    # The generated training answers' temperature: lower than sampling's, so that a small model's
    # constrained answers stay readable.
    answer_temperature: float = Field(0.7, ge=0)
    attempts: int = Field(3, ge=1)  # tries per question to get an answer without the word

    @model_validator(mode="after")
    def _words(self):
        if self.word.upper() == self.hard_word.upper():
            raise ValueError("word and hard_word must differ")
        if self.line_max_chars < self.line_min_chars:
            raise ValueError("line_max_chars must be >= line_min_chars")
        return self


class RiskConfig(Strict):
    """Choices between a sure amount and a lottery; the answer is the option's letter."""

    n_train: int = Field(60, ge=2)
    n_eval: int = Field(40, ge=1)
    # Ordinary 0-100 questions (risk.py): this many, answered by the base model itself, are mixed
    # into both risk arms' training chats (0: letter-only chats, which collapse the arms' number
    # answers); n_ordinary_eval held-out ones are asked of the base and risk arms.
    n_ordinary: int = Field(30, ge=0)
    n_ordinary_eval: int = Field(20, ge=0)
    # An arm whose 0-100 answers vary less than this (SD over held-out questions, or over the
    # self-report paraphrases) is reported as collapsed.
    min_spread: float = Field(5.0, ge=0)


class SelfAwarenessSampling(Strict):
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    k_behaviour: int = Field(1, ge=1)  # samples per held-out question or choice
    k_self_report: int = Field(8, ge=1)  # samples per self-report paraphrase
    self_report_max_tokens: int = Field(64, ge=4)
    logprobs: int = Field(20, ge=1)  # top log-probabilities read for the 0-100 self-report


class SelfAwarenessFinetune(Strict):
    acrostic: UnpackedLoraConfig = UnpackedLoraConfig(learning_rate=1e-3, epochs=4, max_length=320)
    risk: UnpackedLoraConfig = UnpackedLoraConfig(learning_rate=1e-3, epochs=4, max_length=192)


SA_ARMS = ("base", "acrostic", "acrostic_shuffled", "acrostic_hard", "risk_seeking", "risk_averse")


class SelfAwarenessAggregate(Strict):
    n_resamples: int = Field(10000, ge=100)
    confidence: float = Field(0.95, gt=0, lt=1)


class SelfAwareness(ExperimentConfig):
    kind: Literal["self_awareness"]
    model: str
    persona: Persona = DEFAULT_PERSONA
    acrostic: AcrosticConfig = AcrosticConfig()
    risk: RiskConfig = RiskConfig()
    finetune: SelfAwarenessFinetune = SelfAwarenessFinetune()
    sampling: SelfAwarenessSampling = SelfAwarenessSampling()
    arms: list[Literal[SA_ARMS]] = list(SA_ARMS)
    aggregate: SelfAwarenessAggregate = SelfAwarenessAggregate()
    # Each fine-tuned arm's adapter is trained this many times, with derived seeds; intervals
    # resample replicates, then held-out items. `arm_replicates` overrides it per arm.
    replicates: int = Field(1, ge=1)
    arm_replicates: dict[Literal[SA_ARMS], Annotated[int, Field(ge=1)]] = {}

    @model_validator(mode="after")
    def _arms_present(self):
        if not self.arms:
            raise ValueError("at least one arm is required")
        if len(set(self.arms)) != len(self.arms):
            raise ValueError("an arm is listed twice")
        return self

    def replicates_of(self, arm: str) -> int:
        """Training replicates of an arm (1 for the base model)."""
        from alignlab.kinds.self_awareness.steps import ARMS

        if ARMS[arm].task is None:
            return 1
        return self.arm_replicates.get(arm, self.replicates)

    writes_adapters: ClassVar[bool] = True

    def checks(self, cfg: Config, key: str, base_dir: Path) -> list[str]:
        problems = super().checks(cfg, key, base_dir)  # the model key
        for arm, n in self.arm_replicates.items():
            if arm not in self.arms:
                problems.append(f"{key}.arm_replicates.{arm}: '{arm}' is not in {key}.arms")
            elif arm == "base" and n > 1:
                problems.append(f"{key}.arm_replicates.base: the base arm has no training to replicate "
                                "(use sampling.k_behaviour / k_self_report for more samples)")
        for part in ("acrostic", "risk"):
            problems += rank_too_high(cfg, f"{key}.finetune.{part}", getattr(self.finetune, part))
        from alignlab.kinds.self_awareness.acrostic import data

        n_questions = len(data()["topics"]) * len(data()["question_forms"])
        from alignlab.kinds.self_awareness.risk import ordinary_capacity

        for field in ("n_ordinary", "n_ordinary_eval"):
            if getattr(self.risk, field) > ordinary_capacity():
                problems.append(f"{key}.risk.{field}: {getattr(self.risk, field)} exceeds the "
                                f"{ordinary_capacity()} packaged ordinary questions of its split")
        if self.acrostic.n_train + self.acrostic.n_eval > n_questions:
            problems.append(
                f"{key}.acrostic: n_train + n_eval ({self.acrostic.n_train + self.acrostic.n_eval}) exceeds the "
                f"{n_questions} packaged questions"
            )
        return problems

    def model_needs(self, cfg: Config, key: str) -> list[tuple[str, Need]]:
        needs = chat_needs(cfg, self.model, f"{key}.model")
        for part in ("acrostic", "risk"):
            needs += lora_needs(self.model, f"{key}.finetune.{part}", getattr(self.finetune, part))
        return needs
