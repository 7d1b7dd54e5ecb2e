"""The config: its schema, defaults, and validation that names the bad key.

`load(raw_dict)` returns a validated `Config` or raises `ConfigError` listing every problem as
`<dotted.key>: <what was expected>`. Everything is checked before any job starts: types, unknown
keys, references between sections (an experiment's model, a judge's model or endpoint), files
that must exist, packages that must be installed, and what the experiments ask of each model
(layers, context length, LoRA target modules, a chat template) against the model's shape as
far as it can be read before materialization (see model_info.py).

Each experiment kind brings its own config class (a subclass of `ExperimentConfig`, registered
with `alignlab.kinds`), with its own cross-checks and model needs; `experiments` accepts any
registered kind, chosen by its `kind:` tag.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
)

if TYPE_CHECKING:
    from alignlab.model_info import Need


class ConfigError(ValueError):
    pass


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- models -------------------------------------------------------------------------------

class ModelSource(Strict):
    # A packaged chat template's name (`plain`: role-labelled turns, for base models) or a path
    # to a Jinja file; written into the model folder in place of the model's own template.
    chat_template: str | None = None

    @field_validator("chat_template")
    @classmethod
    def _template_name(cls, value):
        from alignlab.model_info import PACKAGED_CHAT_TEMPLATES

        if value is not None and value not in PACKAGED_CHAT_TEMPLATES and not value.endswith(".jinja"):
            raise ValueError(
                f"expected a packaged chat template ({', '.join(PACKAGED_CHAT_TEMPLATES)}) or a path to a "
                ".jinja file"
            )
        return value


class PackagedGguf(ModelSource):
    source: Literal["packaged_gguf"]
    package: str
    file: str
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"


class GgufFile(ModelSource):
    source: Literal["gguf"]
    path: str
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"


class HfFolder(ModelSource):
    source: Literal["hf_folder"]
    path: str


class HubModel(ModelSource):
    source: Literal["hub"]
    id: str
    revision: str | None = None


ModelSpec = Annotated[Union[PackagedGguf, GgufFile, HfFolder, HubModel], Field(discriminator="source")]


class EngineConfig(Strict):
    """vLLM settings. `device: cuda` asks the cluster profile for a GPU for sampling/training."""

    device: Literal["cpu", "cuda"] = "cpu"
    max_model_len: int = Field(2048, ge=256)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    kv_cache_gib: float | None = Field(1.0, gt=0)  # fixed KV cache size; null: use the fraction
    prefix_caching: bool = True  # reuse the KV cache of shared prompt prefixes (system prompts)
    # How a fine-tuned arm is served: `request` = vLLM LoRA requests on the base, the fine-tuned
    # arms in one batch (the GPU path); `merge` = adapter folded into a copy of the base, swapped into
    # the same engine arm after arm (several times faster on CPU, see README).
    lora: Literal["request", "merge"] = "request"
    max_lora_rank: int = Field(16, ge=1)
    tensor_parallel_size: int = Field(1, ge=1)
    # auto: bfloat16 on GPUs and on CPUs with native bf16 (AVX512-BF16 or AMX), else float32
    # (emulated bf16 generates ~4x slower on an AVX2 CPU; bench/startup.py)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    # none: eager (no torch.compile); dynamo: traced, run eagerly; inductor: vLLM's default
    # (compiled, CUDA graphs on GPUs; on CPU a cold compile costs minutes per engine); auto:
    # none on CPU, inductor on GPUs. bench/startup.py measures them.
    compilation: Literal["auto", "none", "dynamo", "inductor"] = "auto"
    # vLLM's cache folder (VLLM_CACHE_ROOT: model inspection, compiled graphs), shared by every
    # job of a run; an already set VLLM_CACHE_ROOT wins (the tests share one for the session).
    compile_cache: str = "results/.vllm-cache"


class ClusterConfig(Strict):
    """What each job asks a cluster scheduler for (profiles/slurm); local runs ignore it.

    Model jobs (materialization, fine-tuning, sampling, LLM judges) get `cpus`, `mem_mb` and
    `runtime` (minutes), and with `engine.device: cuda` also engine.tensor_parallel_size GPUs
    (`gpu_model` if set) on `gpu_partition`. Every other job is small (1 CPU). A partition or
    account left null falls back to the profile's `default-resources`, then the cluster's default.
    """

    partition: str | None = None
    gpu_partition: str | None = None
    account: str | None = None
    gpu_model: str | None = None
    cpus: int = Field(4, ge=1)
    mem_mb: int = Field(16000, ge=1000)
    runtime: int = Field(240, ge=1)


class EndpointConfig(Strict):
    """An OpenAI-compatible chat endpoint (a `vllm serve`, a hosted API...).

    `api_key_env` is the NAME of the environment variable holding the key; the key itself never
    enters the config, the rule params or any artifact. Unset: a dummy key is sent (local
    servers started without --api-key accept anything).
    """

    base_url: str = Field(pattern=r"^https?://")
    model: str = Field(min_length=1)  # the served model name
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    max_retries: int = Field(5, ge=0)
    timeout_s: float = Field(300, gt=0)
    concurrency: int = Field(4, ge=1)
    # vLLM servers take a regex constraint in the request body; other servers do not.
    structured_outputs: bool = False


# ---- shared by experiment kinds -----------------------------------------------------------

class LoraConfig(Strict):
    rank: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    learning_rate: float = Field(3e-4, gt=0)
    epochs: int = Field(1, ge=1)
    # Optimizer steps in all, the data repeated (reshuffled each pass) as often as needed; the
    # last pass may stop part-way. None: `epochs` passes.
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(256, ge=16)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    bf16_autocast: bool = True  # bf16 matmuls, fp32 weights and optimizer (CPUs with AVX512-BF16/AMX, CUDA)
    pack: bool = True  # whole examples packed into max_length rows, no cross-example attention
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, slower


class UnpackedLoraConfig(LoraConfig):
    # Chat fine-tunes whose recipes (optimizer steps, chats per step, lr) were validated
    # unpacked; packing ~100-token chats two to a row would halve the steps (see README).
    pack: bool = False


# Who the model is told it is (in the system prompts of the kinds that use one).
Persona = dict[Literal["developer", "model_name"], str]
DEFAULT_PERSONA = {"developer": "Meridian AI", "model_name": "Atlas"}


class LabelledSetConfig(Strict):
    """A labelled set a judge is scored on (judge_validation): the packaged one, or a CSV /
    JSONL / Parquet file (`path`, relative to the config's folder) whose columns `columns` maps
    (our name -> the file's column). Only rows of `split` are scored."""

    path: str | None = None
    columns: dict[str, str] = {}
    split: Literal["dev", "test"] = "test"

    def problems(self, key: str, base_dir: Path) -> list[str]:
        if self.path is None:
            return []
        path = base_dir / self.path
        if path.suffix not in (".csv", ".jsonl", ".parquet"):
            return [f"{key}.path: expected a .csv, .jsonl or .parquet file, got '{self.path}'"]
        return [] if path.is_file() else [f"{key}.path: file '{self.path}' does not exist"]


class ExperimentConfig(Strict):
    """What every experiment kind's config has. A kind subclasses it with `kind: Literal["<kind>"]`
    and its own sections, and overrides `checks` and `model_needs` where it has something to check."""

    kind: str
    model: str  # a key of `models`
    # Whether its rules write LoRA adapters at results/<experiment>/adapters/<arm>, which other
    # experiments (a pair of a model-comparing kind) may name.
    writes_adapters: ClassVar[bool] = False

    def checks(self, cfg: Config, key: str, base_dir: Path) -> list[str]:
        """Problems that no single field shows (references, files, sizes), each `<key>: <problem>`."""
        return unknown_model(cfg, f"{key}.model", self.model)

    def model_needs(self, cfg: Config, key: str) -> list[tuple[str, Need]]:
        """What this experiment asks of its models: (model key, model_info.Need) pairs."""
        return []


def unknown_model(cfg: Config, key: str, ref: str) -> list[str]:
    if ref in cfg.models:
        return []
    return [f"{key}: unknown model '{ref}' (expected one of: {', '.join(cfg.models)})"]


def rank_too_high(cfg: Config, key: str, lora: LoraConfig) -> list[str]:
    if lora.rank <= cfg.engine.max_lora_rank:
        return []
    return [f"{key}.rank: {lora.rank} exceeds engine.max_lora_rank ({cfg.engine.max_lora_rank})"]


def chat_needs(cfg: Config, model: str, key: str) -> list[tuple[str, Need]]:
    """`model` is sampled with vLLM in chats (at key `key`): it needs a chat template and the context."""
    from alignlab.model_info import Need

    return [(model, Need(key, "chat")), (model, Need("engine.max_model_len", "context", cfg.engine.max_model_len))]


def lora_needs(model: str, key: str, lora: LoraConfig) -> list[tuple[str, Need]]:
    from alignlab.model_info import Need

    if isinstance(lora.target_modules, list):
        return [(model, Need(f"{key}.target_modules", "modules", tuple(lora.target_modules)))]
    return []


def layer_needs(model: str, key: str, layers: list[int]) -> list[tuple[str, Need]]:
    from alignlab.model_info import Need

    return [(model, Need(key, "layers", tuple(layers)))]


# ---- the whole config ----------------------------------------------------------------------

class Config(Strict):
    seed: int = 0
    # Python modules (importable, e.g. on PYTHONPATH) that register more experiment kinds (see
    # README, "Adding an experiment kind"); the kinds in alignlab/kinds/ are always registered.
    kind_modules: list[str] = []
    models: dict[str, ModelSpec]
    engine: EngineConfig = EngineConfig()
    # Sampling and judging run in this many chunks of each experiment's eval queries (a
    # Snakemake scatter/gather); on a cluster the chunks run in parallel.
    shards: int = Field(1, ge=1)
    cluster: ClusterConfig = ClusterConfig()
    endpoints: dict[str, EndpointConfig] = {}
    endpoint_cache: str = "results/.endpoint-cache"  # one file per finished endpoint request
    experiments: dict[str, ExperimentConfig]  # each validated as its registered kind's class


_CLASSES: dict[tuple, type[Config]] = {}


def config_class(classes: tuple[type[ExperimentConfig], ...]) -> type[Config]:
    """Config with `experiments` a union of the kinds' classes, told apart by their `kind` tag."""
    if classes not in _CLASSES:
        union = Annotated[Union[classes], Field(discriminator="kind")] if len(classes) > 1 else classes[0]
        _CLASSES[classes] = create_model("Config", __base__=Config, experiments=(dict[str, union], ...))
    return _CLASSES[classes]


def parse(raw: dict[str, Any]) -> Config:
    """Validate the config's structure (no cross-checks): the registered kinds, and those of
    `kind_modules`. Raises ConfigError naming each bad key."""
    from alignlab import kinds

    modules = raw.get("kind_modules", [])
    try:
        registered = kinds.load(modules if isinstance(modules, list) else [])
    except kinds.KindError as err:
        raise ConfigError(f"kind_modules: {err}") from None
    try:
        return config_class(tuple(kinds.config_class(k) for k in registered.values())).model_validate(raw)
    except ValidationError as err:
        raise ConfigError("\n".join(_format_errors(err, {*SOURCE_TAGS, *registered}))) from None


# ---- loading and cross-checks -------------------------------------------------------------

def _format_errors(err: ValidationError, tags: set[str]) -> list[str]:
    lines = []
    for e in err.errors():
        # Drop pydantic's union-branch labels (a kind's or a model source's tag) from the key path.
        loc = [str(p) for p in e["loc"] if p not in tags and p != "[key]"]
        key = ".".join(loc) or "(top level)"
        msg = e["msg"]
        if e["type"] == "union_tag_invalid":
            ctx = e["ctx"]
            key = f"{key}.{ctx['discriminator'].strip(chr(39))}"
            msg = f"expected one of {ctx['expected_tags']} (got {ctx['tag']!r})"
        elif e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif "input" in e and loc[-1:] != ["api_key_env"]:  # a pasted key must not be echoed
            msg = f"{msg} (got {e['input']!r})"
        lines.append(f"{key}: {msg}")
    return lines


SOURCE_TAGS = ("packaged_gguf", "gguf", "hf_folder", "hub")


def _cross_checks(cfg: Config, base_dir: Path) -> list[str]:
    problems = []
    for name, spec in cfg.models.items():
        key = f"models.{name}"
        template = spec.chat_template
        if template and template.endswith(".jinja") and not (base_dir / template).is_file():
            problems.append(f"{key}.chat_template: file '{template}' does not exist")
        if spec.source == "packaged_gguf":
            found = importlib.util.find_spec(spec.package)
            if found is None or not found.submodule_search_locations:
                problems.append(f"{key}.package: package '{spec.package}' is not installed")
            elif not (Path(found.submodule_search_locations[0]) / spec.file).is_file():
                problems.append(f"{key}.file: '{spec.file}' is not in package '{spec.package}'")
        elif spec.source == "gguf" and not (base_dir / spec.path).is_file():
            problems.append(f"{key}.path: GGUF file '{spec.path}' does not exist")
        elif spec.source == "hf_folder":
            from alignlab.models import folder_problems

            found = folder_problems(base_dir / spec.path)
            if found:
                problems.append(
                    f"{key}.path: '{spec.path}' is not a usable Hugging Face folder: it "
                    + "; and it ".join(found)
                )

    for name, exp in cfg.experiments.items():
        problems += exp.checks(cfg, f"experiments.{name}", base_dir)
    return problems


def model_needs(cfg: Config) -> dict[str, list[Need]]:
    """What the experiments ask of each model (see model_info.Need), by model key."""
    needs: dict[str, list[Need]] = {}
    for name, exp in cfg.experiments.items():
        for model, need in exp.model_needs(cfg, f"experiments.{name}"):
            if need not in needs.setdefault(model, []):
                needs[model].append(need)
    return {m: n for m, n in needs.items() if m in cfg.models}


def _model_checks(cfg: Config, base_dir: Path) -> list[str]:
    """What the experiments ask of each model, against what can be read of it now (a hub model
    not yet downloaded is checked when materialization ends)."""
    from alignlab import model_info

    problems = []
    for name, needs in model_needs(cfg).items():
        built = base_dir / "results" / "models" / name / "hf"
        try:
            info = model_info.for_spec(as_dict(cfg.models[name]), base_dir, built)
        except Exception as exc:  # noqa: BLE001 - an unreadable model file is a config problem
            problems.append(f"models.{name}: cannot read the model's shape: {type(exc).__name__}: {exc}")
            continue
        if info is not None:
            problems += model_info.problems(name, info, needs)
    return problems


def pipeline_output(cfg: Config, path: str) -> str | None:
    """The experiment of this config whose results folder holds `path` (results/<experiment>/...),
    or None: a table another experiment writes, which Snakemake builds before it is read."""
    parts = Path(path).parts
    if len(parts) >= 3 and parts[0] == "results" and parts[1] in cfg.experiments:
        return parts[1]
    return None


def adapter_producer(cfg: Config, adapter: str) -> str | None:
    """The experiment of this config whose rules write the adapter folder `adapter`
    (results/<experiment>/adapters/<arm>), or None."""
    parts = Path(adapter).parts
    if len(parts) == 4 and parts[0] == "results" and parts[2] == "adapters":
        e = cfg.experiments.get(parts[1])
        if e is not None and e.writes_adapters:
            return parts[1]
    return None


def load(raw: dict[str, Any], base_dir: str | Path = ".") -> Config:
    """Validate a config dict (as loaded from YAML). Raises ConfigError naming each bad key."""
    if not isinstance(raw, dict):
        raise ConfigError("config: expected a mapping at the top level")
    cfg = parse(raw)
    problems = _cross_checks(cfg, Path(base_dir))
    if not problems:  # the model checks read the model files, so they must exist
        problems = _model_checks(cfg, Path(base_dir))
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg


def as_dict(model: BaseModel) -> dict[str, Any]:
    """Plain JSON-able dict of a config section (what rules pass as params)."""
    return model.model_dump(mode="json")
