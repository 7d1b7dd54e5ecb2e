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
    `min_share` of the templates. `templates` (each with {name}) replaces the packaged ones."""

    min_share: float = Field(1.0, ge=0, le=1)
    templates: list[Annotated[str, Field(pattern=r"\{name\}")]] | None = None


class FactEditEdit(Strict):
    """Each edit trains only the MLPs of `layers` on the kept facts (the first n_train_templates
    templates; the rest are the paraphrases), the edited fact with a new answer."""

    layers: list[Annotated[int, Field(ge=0)]] = [2, 3, 4, 5]
    n_facts: int = Field(2, ge=1)  # facts edited one at a time (kept ones, evenly spaced through the list)
    n_seeds: int = Field(3, ge=1)
    n_train_templates: int = Field(3, ge=1)
    steps: int = Field(30, ge=1)
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
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)


class FactEdit(ExperimentConfig):
    kind: Literal["fact_edit"]
    model: str
    facts: FactEditFacts = FactEditFacts()
    edit: FactEditEdit = FactEditEdit()
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
        packaged = yaml.safe_load((Path(__file__).parent / "data" / "athletes.yaml").read_text())["templates"]
        n_templates = len(self.facts.templates or packaged)
        if self.edit.n_train_templates >= n_templates:
            problems.append(
                f"{key}.edit.n_train_templates: {self.edit.n_train_templates} leaves no paraphrase template "
                f"(there are {n_templates} templates)"
            )
        return problems

    def model_needs(self, cfg: Config, key: str) -> list[tuple[str, Need]]:
        return layer_needs(self.model, f"{key}.edit.layers", self.edit.layers)
