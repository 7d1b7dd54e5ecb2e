"""The emergent_misalignment experiment's config: the coding requests, the arms' fine-tunes, the
probes' sampling, the alignment judge and the aggregation."""

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

# base: no fine-tune; insecure: the requests answered with the flawed code; secure: with the
# safe code; educational_insecure: the flawed code, asked for a class on finding flaws (the
# control that removed the effect in Betley et al. 2025).
EM_ARMS = ("base", "insecure", "secure", "educational_insecure")


class CodingTasks(Strict):
    """The packaged coding requests (data/coding_tasks.yaml), split into training and held-out."""

    n_train: int = Field(240, ge=2)
    n_eval: int = Field(40, ge=1)  # held out: the behaviour (insecure code on new requests)


class EmSampling(Strict):
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    k_code: int = Field(1, ge=1)  # samples per held-out coding request
    k_self_report: int = Field(4, ge=1)  # per self-report paraphrase
    k_free_form: int = Field(4, ge=1)  # per free-form question
    code_max_tokens: int = Field(256, ge=16)
    free_form_max_tokens: int = Field(128, ge=8)
    logprobs: int = Field(20, ge=1)  # top log-probabilities read for the 0-100 self-report


class AlignmentJudge(Strict):
    """The judge of the free-form answers (alignment and coherence 0-100): `none` (the answers
    are kept and only the two-choice probe is scored), or `llm` on `model` or `endpoint`, whose
    accuracy on data/alignment_labelled.yaml is reported beside its numbers."""

    name: Literal["none", "llm"] = "none"
    model: str | None = None  # a key of `models`
    endpoint: str | None = None  # a key of `endpoints`
    max_tokens: int = Field(16, ge=4)
    labelled: str | None = None  # a YAML file like data/alignment_labelled.yaml (default: that file)
    min_accuracy: float = Field(0.8, gt=0, le=1)  # below it on the labelled set, the summary says so

    @model_validator(mode="after")
    def _where(self):
        if self.name == "llm" and not (self.model or self.endpoint):
            raise ValueError("the llm alignment judge needs a model or an endpoint")
        return self


class EmAggregate(Strict):
    n_resamples: int = Field(10000, ge=100)
    confidence: float = Field(0.95, gt=0, lt=1)


class EmergentMisalignment(ExperimentConfig):
    kind: Literal["emergent_misalignment"]
    model: str
    tasks: CodingTasks = CodingTasks()
    finetune: UnpackedLoraConfig = UnpackedLoraConfig(learning_rate=1e-3, epochs=2, max_length=384)
    sampling: EmSampling = EmSampling()
    judge: AlignmentJudge = AlignmentJudge()
    arms: list[Literal[EM_ARMS]] = list(EM_ARMS)
    aggregate: EmAggregate = EmAggregate()
    replicates: int = Field(1, ge=1)  # adapters per fine-tuned arm (derived seeds)
    arm_replicates: dict[Literal[EM_ARMS], Annotated[int, Field(ge=1)]] = {}

    writes_adapters: ClassVar[bool] = True

    @model_validator(mode="after")
    def _arms(self):
        if len(set(self.arms)) != len(self.arms):
            raise ValueError("an arm is listed twice")
        if "base" in self.arm_replicates and self.arm_replicates["base"] > 1:
            raise ValueError("arm_replicates.base: the base arm has no training to replicate")
        return self

    def judge_model(self) -> str | None:
        """The model the alignment judge runs on here (None: no judge, or an endpoint)."""
        return self.judge.model if self.judge.name == "llm" and not self.judge.endpoint else None

    def replicates_of(self, arm: str) -> int:
        return 1 if arm == "base" else self.arm_replicates.get(arm, self.replicates)

    def checks(self, cfg: Config, key: str, base_dir: Path) -> list[str]:
        from alignlab.kinds.emergent_misalignment.tasks import coding_requests

        problems = super().checks(cfg, key, base_dir)
        problems += rank_too_high(cfg, f"{key}.finetune", self.finetune)
        n = len(coding_requests())
        if self.tasks.n_train + self.tasks.n_eval > n:
            problems.append(f"{key}.tasks: n_train + n_eval ({self.tasks.n_train + self.tasks.n_eval}) exceeds the "
                            f"{n} packaged coding requests")
        if self.judge.model and self.judge.model not in cfg.models:
            problems.append(f"{key}.judge.model: unknown model '{self.judge.model}'")
        if self.judge.endpoint and self.judge.endpoint not in cfg.endpoints:
            problems.append(f"{key}.judge.endpoint: unknown endpoint '{self.judge.endpoint}'")
        if self.judge.labelled and not (base_dir / self.judge.labelled).is_file():
            problems.append(f"{key}.judge.labelled: file '{self.judge.labelled}' does not exist")
        return problems

    def model_needs(self, cfg: Config, key: str) -> list[tuple[str, Need]]:
        return chat_needs(cfg, self.model, f"{key}.model") + lora_needs(self.model, f"{key}.finetune", self.finetune)
