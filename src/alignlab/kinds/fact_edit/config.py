"""The fact_edit experiment's config: the facts, the edit recipe, the penalty settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from alignlab.config import (
    ExperimentConfig,
    Strict,
    layer_needs,
)

if TYPE_CHECKING:
    from alignlab.config import Config
    from alignlab.model_info import Need


class FactEditFacts(Strict):
    """The candidate facts (data/athletes.yaml); kept: answered correctly by the base on at least
    `min_share` of the templates. `templates` (each with {name}) replaces the packaged ones.
    `n_held_out` of the kept facts (chosen by seed) are never trained on: the specificity that
    can fail is measured on them. Each athlete's second fact (the country, independent of the
    sport; `second_templates` replaces its packaged templates) is known where the base answers it
    correctly on at least `min_share` of its templates; it is never trained, only measured."""

    min_share: float = Field(1.0, ge=0, le=1)
    n_held_out: int = Field(4, ge=1)
    templates: list[Annotated[str, Field(pattern=r"\{name\}")]] | None = None
    second_templates: list[Annotated[str, Field(pattern=r"\{name\}")]] | None = None


class FactEditCopies(Strict):
    """How often each trained fact appears in an edit's training set. by none: once. by fame:
    1 + round((max - 1) * fame) times, fame being the base model's mean probability of the right
    sport among the options over the templates (0..1, from the facts step), so a well-known
    athlete is trained up to `max` times and an unknown one once (round half up)."""

    by: Literal["none", "fame"] = "none"
    max: int = Field(4, ge=1)


class FactEditEdit(Strict):
    """Each edit trains only the MLPs of `layers` on the kept facts (the first n_train_templates
    templates; the rest are the paraphrases), the edited fact with a new answer."""

    layers: list[Annotated[int, Field(ge=0)]] = [2, 3, 4, 5, 6]
    copies: FactEditCopies = FactEditCopies()
    n_facts: int = Field(4, ge=1)  # facts edited one at a time (kept ones, evenly spaced through the list)
    n_seeds: int = Field(3, ge=1)
    n_train_templates: int = Field(3, ge=1)
    steps: int = Field(30, ge=1)  # the cap, with stop_when_correct
    # train each edit until the edited fact gets its new answer on every trained template (or the
    # cap), so that penalty settings are compared at equal efficacy
    stop_when_correct: bool = True
    learning_rate: float = Field(1e-4, gt=0)
    batch_size: int = Field(16, ge=1)
    top_k: int = Field(50, ge=1)  # most-changed neurons compared across seeds and facts
    bf16_autocast: bool = True  # where bf16 is native (finetune.autocast_dtype); else fp32

    @model_validator(mode="after")
    def _layers(self):
        if not self.layers or len(set(self.layers)) != len(self.layers):
            raise ValueError("layers needs at least one layer, each listed once")
        return self


class FactEditPenalty(Strict):
    """Toward the initial weights: l2 * sum (W - W0)^2 in the loss; L1 as a proximal step after each
    optimizer step (soft-thresholding W - W0 by learning_rate * l1), so that changes are exactly
    zero where the penalty wins. With Adam a step moves a weight by about learning_rate, so l1
    near 1 stops most weights."""

    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)


class FactEditControls(Strict):
    """The specificity control, per edit: the held-out facts keep their answers on at least
    `min_held_out_specificity` of their prompts, and the next-token loss on unrelated text rises by
    at most `max_text_loss_increase` nats per token. The same-subject control, per edit whose
    athlete's second fact the base knows: that fact keeps its answers on at least
    `min_same_subject_specificity` of its prompts (set before any run of it)."""

    min_held_out_specificity: float = Field(0.9, ge=0, le=1)
    max_text_loss_increase: float = Field(0.05, ge=0)
    min_same_subject_specificity: float = Field(0.9, ge=0, le=1)


class FactEditAggregate(Strict):
    """The intervals over edits: a bootstrap that resamples the edited facts and, within them, the
    seeds (stats.hierarchical_bootstrap), seeded from the config's seed."""

    n_resamples: int = Field(10000, ge=100)
    confidence: float = Field(0.95, gt=0, lt=1)


class FactEdit(ExperimentConfig):
    kind: Literal["fact_edit"]
    model: str
    facts: FactEditFacts = FactEditFacts()
    edit: FactEditEdit = FactEditEdit()
    controls: FactEditControls = FactEditControls()
    aggregate: FactEditAggregate = FactEditAggregate()
    penalties: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")], FactEditPenalty] = {
        "none": FactEditPenalty(), "l2": FactEditPenalty(l2=1.0),
    }

    @model_validator(mode="after")
    def _penalties(self):
        if not self.penalties:
            raise ValueError("at least one penalty setting is required")
        return self

    def checks(self, cfg: Config, key: str, base_dir: Path) -> list[str]:
        import yaml  # not the edit module: it imports torch, too slow for a config check

        problems = super().checks(cfg, key, base_dir)  # the model key
        data = yaml.safe_load((Path(__file__).parent / "data" / "athletes.yaml").read_text())
        n_templates = len(self.facts.templates or data["templates"])
        n_candidates = len(data["athletes"])
        if self.facts.n_held_out + 2 > n_candidates:
            problems.append(
                f"{key}.facts.n_held_out: {self.facts.n_held_out} held-out facts leave fewer than 2 of the "
                f"{n_candidates} candidate facts to train on (one to edit, one to keep)"
            )
        if self.edit.n_train_templates >= n_templates:
            problems.append(
                f"{key}.edit.n_train_templates: {self.edit.n_train_templates} leaves no paraphrase template "
                f"(there are {n_templates} templates)"
            )
        return problems

    def model_needs(self, cfg: Config, key: str) -> list[tuple[str, Need]]:
        return layer_needs(self.model, f"{key}.edit.layers", self.edit.layers)
