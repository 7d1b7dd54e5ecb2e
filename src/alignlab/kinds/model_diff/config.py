"""The model_diff experiment's config: the pairs, the text set, the SAE."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from alignlab.config import (
    ExperimentConfig,
    Strict,
    layer_needs,
    unknown_model,
)

if TYPE_CHECKING:
    from alignlab.config import Config
    from alignlab.model_info import Need


class ModelDiffPair(Strict):
    """A fine-tune of the experiment's base model: a LoRA adapter folder (merged into the base
    for analysis; usually one another experiment writes, e.g. results/af/adapters/sdf) or a key
    of `models` (a full fine-tune). Exactly one of the two."""

    adapter: str | None = None
    model: str | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.adapter is None) == (self.model is None):
            raise ValueError("set exactly one of 'adapter' (a folder) or 'model' (a key of models)")
        return self


class ModelDiffTextFile(Strict):
    """A table whose `column` holds texts (CSV / JSONL / Parquet; may be another experiment's
    output)."""

    path: str
    column: str = "text"


class ModelDiffTexts(Strict):
    """The fixed text set activations are compared on: the packaged passages
    (data/diff_texts.yaml) or a CSV / JSONL / Parquet file's `column`, which may be a table
    another experiment writes (results/af/documents/setting.parquet, column text). Texts found
    in any `exclude` table (e.g. a fine-tune's training data) are dropped first, so the pairs are
    measured on held-out documents only. The first `n` that remain are used; of those, the first
    `sae_train_share` train the SAE and the rest score it."""

    source: Literal["packaged", "file"] = "packaged"
    path: str | None = None
    column: str = "text"
    n: int = Field(32, ge=4)
    max_length: int = Field(128, ge=8)  # tokens per text
    sae_train_share: float = Field(0.5, gt=0, lt=1)
    exclude: list[ModelDiffTextFile] = []

    @model_validator(mode="after")
    def _path(self):
        if self.source == "file" and not self.path:
            raise ValueError("source: file needs a 'path'")
        return self


class ModelDiffSae(Strict):
    """A ReLU SAE trained on the base's output of decoder layer `layer` (null: the middle one)."""

    layer: int | None = Field(None, ge=0)
    d_hidden: int = Field(1024, ge=8)
    l1: float = Field(3e-3, ge=0)
    steps: int = Field(1000, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    tied: bool = False
    # the target sparsity: [lo, hi] mean active features per token (L0) on the SAE's training
    # texts; null: no target. Outside it the SAE is flagged (l0_action: flag; the summary's SAE
    # sparsity check FAILS and the SAE's numbers say so) or its step fails (l0_action: fail).
    l0_range: list[float] | None = None
    l0_action: Literal["flag", "fail"] = "flag"

    @model_validator(mode="after")
    def _l0(self):
        if self.l0_range is not None:
            if len(self.l0_range) != 2 or not 0 <= self.l0_range[0] <= self.l0_range[1]:
                raise ValueError(f"l0_range: expected [lo, hi] with 0 <= lo <= hi, got {self.l0_range}")
            if self.l0_range[0] > self.d_hidden:
                raise ValueError(f"l0_range: lo {self.l0_range[0]} is above d_hidden {self.d_hidden} "
                                 "(L0 counts active features, at most d_hidden)")
        return self


class ModelDiffBootstrap(Strict):
    """Intervals by resampling texts with replacement (seeded from the config seed): per layer,
    for the global mean cosine, and for the difference between pairs adjacent in the ranking
    (paired: both pairs on the same resampled texts)."""

    n_resamples: int = Field(1000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1)


class ModelDiffReference(Strict):
    """A random perturbation of the base whose change has, in every tensor, the Frobenius norm of
    pair `like`'s change: how far any change of that size moves the model. `tolerance`: the
    largest relative gap between the two per-tensor norms that still counts as size-matched
    (the summary's check)."""

    like: str
    tolerance: float = Field(0.05, gt=0, lt=1)


class ModelDiff(ExperimentConfig):
    kind: Literal["model_diff"]
    model: str  # the base model: a key of `models`
    pairs: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")], ModelDiffPair]
    texts: ModelDiffTexts = ModelDiffTexts()
    batch_size: int = Field(8, ge=1)  # texts per forward pass
    sae: ModelDiffSae = ModelDiffSae()
    bootstrap: ModelDiffBootstrap = ModelDiffBootstrap()
    # name -> {like: pair}: a size-matched random reference for a real pair, compared with the
    # base like a pair (its name must not be a pair's)
    references: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")], ModelDiffReference] = {}
    # [fewer, more]: two pairs fine-tuned by one recipe, the second for more steps; the summary
    # checks that the second moved the weights more.
    more_steps: list[str] | None = None

    @model_validator(mode="after")
    def _pairs(self):
        if not self.pairs:
            raise ValueError("at least one pair is required")
        if self.more_steps is not None:
            if len(self.more_steps) != 2 or len(set(self.more_steps)) != 2:
                raise ValueError("more_steps needs two different pairs: [fewer steps, more steps]")
            missing = [p for p in self.more_steps if p not in self.pairs]
            if missing:
                raise ValueError(f"more_steps names {missing}, not among the pairs {sorted(self.pairs)}")
        for name, ref in self.references.items():
            if name in self.pairs:
                raise ValueError(f"references.{name}: the name is already a pair's; give the reference its own")
            if ref.like not in self.pairs:
                raise ValueError(f"references.{name}.like: '{ref.like}' is not among the pairs {sorted(self.pairs)}")
        return self

    def all_pairs(self) -> list[str]:
        """The pairs, then the references: every fine-tune compared with the base."""
        return [*self.pairs, *self.references]

    def checks(self, cfg: Config, key: str, base_dir: Path) -> list[str]:
        from alignlab.config import adapter_producer, pipeline_output

        problems = super().checks(cfg, key, base_dir)  # the model key
        for name, pair in self.pairs.items():
            sub = f"{key}.pairs.{name}"
            if pair.model is not None:
                problems += unknown_model(cfg, f"{sub}.model", pair.model)
                continue
            producer = adapter_producer(cfg, pair.adapter)
            if producer is not None:
                other = cfg.experiments[producer]
                if other.model != self.model:
                    problems.append(
                        f"{sub}.adapter: '{pair.adapter}' is a fine-tune of model '{other.model}' (experiment "
                        f"'{producer}'), not of this experiment's model '{self.model}'"
                    )
            elif not (base_dir / pair.adapter).is_dir():
                problems.append(
                    f"{sub}.adapter: '{pair.adapter}' is neither an adapter folder that exists nor one that an "
                    "experiment of this config writes (results/<experiment>/adapters/<arm>)"
                )
        if self.texts.source == "file":
            path = base_dir / self.texts.path
            if Path(self.texts.path).suffix not in (".csv", ".jsonl", ".parquet"):
                problems.append(f"{key}.texts.path: expected a .csv, .jsonl or .parquet file, got '{self.texts.path}'")
            elif pipeline_output(cfg, self.texts.path):
                pass  # another experiment's rules write it (e.g. results/af/documents/setting.parquet)
            elif not path.is_file():
                problems.append(f"{key}.texts.path: file '{self.texts.path}' does not exist")
        for i, ex in enumerate(self.texts.exclude):
            sub = f"{key}.texts.exclude.{i}.path"
            if Path(ex.path).suffix not in (".csv", ".jsonl", ".parquet"):
                problems.append(f"{sub}: expected a .csv, .jsonl or .parquet file, got '{ex.path}'")
            elif not pipeline_output(cfg, ex.path) and not (base_dir / ex.path).is_file():
                problems.append(f"{sub}: file '{ex.path}' does not exist")
        return problems

    def model_needs(self, cfg: Config, key: str) -> list[tuple[str, Need]]:
        return [] if self.sae.layer is None else layer_needs(self.model, f"{key}.sae.layer", [self.sae.layer])
