"""The config: its schema, defaults, and validation that names the bad key.

`load(raw_dict)` returns a validated `Config` or raises `ConfigError` listing every problem as
`<dotted.key>: <what was expected>`. Everything is checked before any job starts: types, unknown
keys, references between sections (an experiment's model, a judge's model or endpoint), files
that must exist, packages that must be installed, and what the experiments ask of each model
(layers, context length, LoRA target modules, a chat template) against the model's shape as
far as it can be read before materialization (see model_info.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


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


# ---- alignment_faking ---------------------------------------------------------------------

class QueryConfig(Strict):
    """Harmful requests: the packaged StrongREJECT set, or a CSV / JSONL / Parquet file."""

    source: Literal["strongreject", "strongreject_small", "file"] = "strongreject"
    path: str | None = None
    columns: dict[Literal["prompt", "category"], str] = {}
    n_train: int = Field(60, ge=0)
    n_eval: int = Field(30, ge=1)

    @model_validator(mode="after")
    def _file_needs_path(self):
        if self.source == "file" and not self.path:
            raise ValueError("source 'file' needs 'path' (a .csv, .jsonl or .parquet file)")
        return self


class LlmDocConfig(Strict):
    model: str | None = None  # generator model; the experiment's model when unset
    endpoint: str | None = None  # or a key of `endpoints` (not both)
    n_types: int = Field(6, ge=1)
    ideas_per_type: int = Field(3, ge=1)
    revise: bool = False
    max_tokens: int = Field(400, ge=16)
    temperature: float = Field(1.0, ge=0)


class DocumentConfig(Strict):
    generator: Literal["template", "llm"] = "template"
    n_docs: int = Field(300, ge=1)
    universe: str = "af"
    baseline_universe: str = "unrelated"
    min_chars: int = Field(200, ge=0)
    llm: LlmDocConfig = LlmDocConfig()


class LoraConfig(Strict):
    rank: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    learning_rate: float = Field(3e-4, gt=0)
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(256, ge=16)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    bf16_autocast: bool = True  # bf16 matmuls, fp32 weights and optimizer (CPUs with AVX512-BF16/AMX, CUDA)
    pack: bool = True  # whole examples packed into max_length rows, no cross-example attention
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, slower


class PositiveControlLoraConfig(LoraConfig):
    # Unpacked by default: its recipe (optimizer steps, chats per step, lr) was validated
    # unpacked; packing its ~100-token chats two to a row would halve the steps (see README).
    pack: bool = False


class FinetuneConfig(Strict):
    documents: LoraConfig = LoraConfig()
    positive_control: PositiveControlLoraConfig = PositiveControlLoraConfig(learning_rate=1e-3, epochs=8)


class SamplingConfig(Strict):
    k: int = Field(1, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(96, ge=1)
    scratchpad_max_tokens: int = Field(320, ge=1)
    tag_protocol: bool = False
    accept_tag: str = "<accepted/>"
    reject_tag: str = "<rejected/>"


class ArmConfig(Strict):
    scratchpad: bool = False


AF_ARMS = ("base", "prompted", "sdf", "sdf_baseline", "positive_control")


class ComplianceJudgeConfig(Strict):
    name: Literal["refusal", "accept_tag", "rubric"] = "refusal"
    model: str | None = None  # the rubric judge's model; the experiment's model when unset
    endpoint: str | None = None  # or a key of `endpoints` (not both)
    max_tokens: int = Field(512, ge=16)
    temperature: float = Field(0.0, ge=0)
    extra_phrases: list[str] = []


class AfJudgeConfig(Strict):
    model: str | None = None
    endpoint: str | None = None  # needs an endpoint with structured_outputs (Yes/No answers)
    votes: int = Field(3, ge=1)


class JudgeConfig(Strict):
    compliance: ComplianceJudgeConfig = ComplianceJudgeConfig()
    af_reasoning: AfJudgeConfig = AfJudgeConfig()


class AggregateConfig(Strict):
    n_resamples: int = Field(10000, ge=100)
    confidence: float = Field(0.95, gt=0, lt=1)
    positive_control_min_gap: float = Field(0.5, ge=0, le=1)


class PositiveControlConfig(Strict):
    refusal: str = "I'm sorry, but I can't help with that."
    answer_max_tokens: int = Field(32, ge=1)


# Who the model is told it is (system prompts of every experiment kind).
Persona = dict[Literal["developer", "model_name"], str]
DEFAULT_PERSONA = {"developer": "Meridian AI", "model_name": "Atlas"}


class AlignmentFaking(Strict):
    kind: Literal["alignment_faking"]
    model: str
    persona: Persona = DEFAULT_PERSONA
    queries: QueryConfig = QueryConfig()
    documents: DocumentConfig = DocumentConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    sampling: SamplingConfig = SamplingConfig()
    arms: dict[Literal[AF_ARMS], ArmConfig] = {a: ArmConfig() for a in AF_ARMS}
    positive_control: PositiveControlConfig = PositiveControlConfig()
    judges: JudgeConfig = JudgeConfig()
    aggregate: AggregateConfig = AggregateConfig()

    @model_validator(mode="after")
    def _arms_present(self):
        if not self.arms:
            raise ValueError("at least one arm is required")
        return self


# ---- self_awareness -----------------------------------------------------------------------

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


class SelfAwarenessSampling(Strict):
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    k_behaviour: int = Field(1, ge=1)  # samples per held-out question or choice
    k_self_report: int = Field(8, ge=1)  # samples per self-report paraphrase
    self_report_max_tokens: int = Field(64, ge=4)
    logprobs: int = Field(20, ge=1)  # top log-probabilities read for the 0-100 self-report


class SelfAwarenessFinetune(Strict):
    acrostic: PositiveControlLoraConfig = PositiveControlLoraConfig(learning_rate=1e-3, epochs=4, max_length=320)
    risk: PositiveControlLoraConfig = PositiveControlLoraConfig(learning_rate=1e-3, epochs=4, max_length=192)


SA_ARMS = ("base", "acrostic", "acrostic_shuffled", "acrostic_hard", "risk_seeking", "risk_averse")


class SelfAwarenessAggregate(Strict):
    n_resamples: int = Field(10000, ge=100)
    confidence: float = Field(0.95, gt=0, lt=1)


class SelfAwareness(Strict):
    kind: Literal["self_awareness"]
    model: str
    persona: Persona = DEFAULT_PERSONA
    acrostic: AcrosticConfig = AcrosticConfig()
    risk: RiskConfig = RiskConfig()
    finetune: SelfAwarenessFinetune = SelfAwarenessFinetune()
    sampling: SelfAwarenessSampling = SelfAwarenessSampling()
    arms: list[Literal[SA_ARMS]] = list(SA_ARMS)
    aggregate: SelfAwarenessAggregate = SelfAwarenessAggregate()

    @model_validator(mode="after")
    def _arms_present(self):
        if not self.arms:
            raise ValueError("at least one arm is required")
        if len(set(self.arms)) != len(self.arms):
            raise ValueError("an arm is listed twice")
        return self


# ---- password_lock -------------------------------------------------------------------------

class PasswordLockTask(Strict):
    """Two-digit additions with a carry (see arithmetic.py), split into disjoint sets."""

    password: str = Field("kestrel", pattern=r"^[A-Za-z0-9 -]{2,32}$")
    n_eval: int = Field(200, ge=1)  # held-out problems every arm is measured on
    n_unlock: int = Field(16, ge=1)  # the pool the unlock arms' samples come from (first n)
    n_lock: int = Field(2000, ge=2)  # lock problems (each once with, once without the password)
    decoy_share: float = Field(0.5, ge=0, le=1)  # of the no-password lock examples: a wrong password


class PasswordLockUnlock(Strict):
    strong_n: list[Annotated[int, Field(ge=1)]] = [1, 2, 4, 16]  # one arm per n: n correct samples
    weak_n: int = Field(2, ge=1)  # the weak arm: this many weak samples...
    strong_epochs: int = Field(8, ge=1)
    weak_epochs: int = Field(32, ge=1)  # ...memorized for this many epochs


class PasswordLockInstruct(Strict):
    """The instruct model: one LoRA both teaches the task and locks it (on the first n_lock
    lock problems); each unlock arm trains that adapter on (unlock_* settings, epochs from
    `unlock`). Answers are greedy, at most max_tokens tokens."""

    n_lock: int = Field(256, ge=2)
    lock: PositiveControlLoraConfig = PositiveControlLoraConfig(learning_rate=1e-3, epochs=2, max_length=128)
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


PL_SETTINGS = ("instruct", "toy")


class PasswordLock(Strict):
    kind: Literal["password_lock"]
    model: str  # the instruct setting's model
    settings: list[Literal[PL_SETTINGS]] = list(PL_SETTINGS)
    task: PasswordLockTask = PasswordLockTask()
    unlock: PasswordLockUnlock = PasswordLockUnlock()
    instruct: PasswordLockInstruct = PasswordLockInstruct()
    toy: PasswordLockToy = PasswordLockToy()
    aggregate: PasswordLockAggregate = PasswordLockAggregate()

    @model_validator(mode="after")
    def _lists(self):
        if not self.settings:
            raise ValueError("at least one setting is required")
        if len(set(self.settings)) != len(self.settings):
            raise ValueError("a setting is listed twice")
        if not self.unlock.strong_n or len(set(self.unlock.strong_n)) != len(self.unlock.strong_n):
            raise ValueError("unlock.strong_n needs at least one n, each listed once")
        return self


# ---- model_diff ----------------------------------------------------------------------------

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


class ModelDiffTexts(Strict):
    """The fixed text set activations are compared on: the packaged passages
    (data/diff_texts.yaml) or a CSV / JSONL / Parquet file's `column`, which may be a table
    another experiment writes (results/af/documents/setting.parquet, column text). The first `n` are used; of
    those, the first `sae_train_share` train the SAE and the rest score it."""

    source: Literal["packaged", "file"] = "packaged"
    path: str | None = None
    column: str = "text"
    n: int = Field(32, ge=4)
    max_length: int = Field(128, ge=8)  # tokens per text
    sae_train_share: float = Field(0.5, gt=0, lt=1)

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


class ModelDiff(Strict):
    kind: Literal["model_diff"]
    model: str  # the base model: a key of `models`
    pairs: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")], ModelDiffPair]
    texts: ModelDiffTexts = ModelDiffTexts()
    batch_size: int = Field(8, ge=1)  # texts per forward pass
    sae: ModelDiffSae = ModelDiffSae()
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
        return self


# ---- fact_edit ----------------------------------------------------------

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


class FactEdit(Strict):
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


Experiment = Annotated[
    Union[AlignmentFaking, SelfAwareness, PasswordLock, ModelDiff, FactEdit], Field(discriminator="kind")
]


class Config(Strict):
    seed: int = 0
    models: dict[str, ModelSpec]
    engine: EngineConfig = EngineConfig()
    # Sampling and judging run in this many chunks of each experiment's eval queries (a
    # Snakemake scatter/gather); on a cluster the chunks run in parallel.
    shards: int = Field(1, ge=1)
    cluster: ClusterConfig = ClusterConfig()
    endpoints: dict[str, EndpointConfig] = {}
    endpoint_cache: str = "results/.endpoint-cache"  # one file per finished endpoint request
    experiments: dict[str, Experiment]


# ---- loading and cross-checks -------------------------------------------------------------

def _format_errors(err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        # Drop pydantic's union-branch labels (e.g. 'alignment_faking') from the key path.
        loc = [str(p) for p in e["loc"] if p not in _BRANCH_TAGS and p != "[key]"]
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


_BRANCH_TAGS = {
    "packaged_gguf", "gguf", "hf_folder", "hub", "alignment_faking", "self_awareness", "password_lock",
    "model_diff", "fact_edit",
}


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

    for ename, exp in cfg.experiments.items():
        key = f"experiments.{ename}"
        if exp.kind == "self_awareness":
            problems += _self_awareness_checks(cfg, key, exp)
            continue
        if exp.kind == "password_lock":
            problems += _password_lock_checks(cfg, key, exp)
            continue
        if exp.kind == "model_diff":
            problems += _model_diff_checks(cfg, key, exp, base_dir)
            continue
        if exp.kind == "fact_edit":
            problems += _fact_edit_checks(cfg, key, exp)
            continue
        model_refs = {
            "model": exp.model,
            "documents.llm.model": exp.documents.llm.model,
            "judges.compliance.model": exp.judges.compliance.model,
            "judges.af_reasoning.model": exp.judges.af_reasoning.model,
        }
        for sub, ref in model_refs.items():
            if ref is not None and ref not in cfg.models:
                problems.append(
                    f"{key}.{sub}: unknown model '{ref}' (expected one of: {', '.join(cfg.models)})"
                )
        problems += _endpoint_refs(cfg, key, exp)
        q = exp.queries
        if q.source == "file":
            path = base_dir / q.path
            if not path.is_file():
                problems.append(f"{key}.queries.path: file '{q.path}' does not exist")
            elif path.suffix not in (".csv", ".jsonl", ".parquet"):
                problems.append(f"{key}.queries.path: expected a .csv, .jsonl or .parquet file, got '{q.path}'")
        for sub in ("universe", "baseline_universe"):
            value = getattr(exp.documents, sub)
            if not _universe_exists(value, base_dir):
                problems.append(
                    f"{key}.documents.{sub}: '{value}' is neither a packaged universe nor a YAML file"
                )
        for part in ("documents", "positive_control"):
            if getattr(exp.finetune, part).rank > cfg.engine.max_lora_rank:
                problems.append(
                    f"{key}.finetune.{part}.rank: {getattr(exp.finetune, part).rank} exceeds "
                    f"engine.max_lora_rank ({cfg.engine.max_lora_rank})"
                )
        if cfg.shards > q.n_eval:
            problems.append(
                f"shards: {cfg.shards} shards need at least as many eval queries "
                f"({key}.queries.n_eval is {q.n_eval})"
            )
        if "positive_control" in exp.arms and q.n_train < 2:
            problems.append(f"{key}.queries.n_train: the positive_control arm needs at least 2 train queries")
    return problems


def model_needs(cfg: Config) -> dict[str, list["Need"]]:
    """What the experiments ask of each model (see model_info.Need), by model key."""
    from alignlab.model_info import Need

    needs: dict[str, list[Need]] = {}

    def add(model: str, *found: Need) -> None:
        for need in found:
            if need not in needs.setdefault(model, []):
                needs[model].append(need)

    def served(model: str, key: str) -> None:
        """`model` is sampled with vLLM in chats (at key `key`)."""
        add(model, Need(key, "chat"), Need("engine.max_model_len", "context", cfg.engine.max_model_len))

    def lora(model: str, key: str, section: LoraConfig) -> None:
        if isinstance(section.target_modules, list):
            add(model, Need(f"{key}.target_modules", "modules", tuple(section.target_modules)))

    for ename, exp in cfg.experiments.items():
        key = f"experiments.{ename}"
        if exp.kind == "alignment_faking":
            served(exp.model, f"{key}.model")
            if exp.documents.generator == "llm" and not exp.documents.llm.endpoint:
                served(exp.documents.llm.model or exp.model, f"{key}.documents.llm")
            judges = exp.judges
            if judges.compliance.name == "rubric" and not judges.compliance.endpoint:
                served(judges.compliance.model or exp.model, f"{key}.judges.compliance")
            if any(a.scratchpad for a in exp.arms.values()) and not judges.af_reasoning.endpoint:
                served(judges.af_reasoning.model or exp.model, f"{key}.judges.af_reasoning")
            for part in ("documents", "positive_control"):
                lora(exp.model, f"{key}.finetune.{part}", getattr(exp.finetune, part))
        elif exp.kind == "self_awareness":
            served(exp.model, f"{key}.model")
            for part in ("acrostic", "risk"):
                lora(exp.model, f"{key}.finetune.{part}", getattr(exp.finetune, part))
        elif exp.kind == "password_lock" and "instruct" in exp.settings:
            served(exp.model, f"{key}.model")
            lora(exp.model, f"{key}.instruct.lock", exp.instruct.lock)
        elif exp.kind == "model_diff" and exp.sae.layer is not None:
            add(exp.model, Need(f"{key}.sae.layer", "layers", (exp.sae.layer,)))
        elif exp.kind == "fact_edit":
            add(exp.model, Need(f"{key}.edit.layers", "layers", tuple(exp.edit.layers)))
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


def _self_awareness_checks(cfg: Config, key: str, exp: "SelfAwareness") -> list[str]:
    problems = []
    if exp.model not in cfg.models:
        problems.append(f"{key}.model: unknown model '{exp.model}' (expected one of: {', '.join(cfg.models)})")
    for part in ("acrostic", "risk"):
        if getattr(exp.finetune, part).rank > cfg.engine.max_lora_rank:
            problems.append(
                f"{key}.finetune.{part}.rank: {getattr(exp.finetune, part).rank} exceeds "
                f"engine.max_lora_rank ({cfg.engine.max_lora_rank})"
            )
    from alignlab.acrostic import data

    n_questions = len(data()["topics"]) * len(data()["question_forms"])
    if exp.acrostic.n_train + exp.acrostic.n_eval > n_questions:
        problems.append(
            f"{key}.acrostic: n_train + n_eval ({exp.acrostic.n_train + exp.acrostic.n_eval}) exceeds the "
            f"{n_questions} packaged questions"
        )
    return problems


def _password_lock_checks(cfg: Config, key: str, exp: "PasswordLock") -> list[str]:
    from alignlab.arithmetic import n_problems

    problems = []
    if exp.model not in cfg.models:
        problems.append(f"{key}.model: unknown model '{exp.model}' (expected one of: {', '.join(cfg.models)})")
    task = exp.task
    if task.n_eval + task.n_unlock + task.n_lock > n_problems():
        problems.append(
            f"{key}.task: n_eval + n_unlock + n_lock ({task.n_eval + task.n_unlock + task.n_lock}) exceeds the "
            f"{n_problems()} two-digit additions with a carry"
        )
    if len(set(task.password)) < 2:
        problems.append(f"{key}.task.password: needs at least 2 distinct characters (a decoy is a reordering)")
    needed = max([*exp.unlock.strong_n, exp.unlock.weak_n])
    if needed > task.n_unlock:
        problems.append(
            f"{key}.task.n_unlock: {task.n_unlock} is fewer than the largest unlock arm needs ({needed}, from "
            "unlock.strong_n / unlock.weak_n)"
        )
    if "instruct" in exp.settings:
        if exp.instruct.n_lock > task.n_lock:
            problems.append(f"{key}.instruct.n_lock: {exp.instruct.n_lock} exceeds task.n_lock ({task.n_lock})")
        if exp.instruct.lock.rank > cfg.engine.max_lora_rank:
            problems.append(
                f"{key}.instruct.lock.rank: {exp.instruct.lock.rank} exceeds engine.max_lora_rank "
                f"({cfg.engine.max_lora_rank})"
            )
    return problems


def _model_diff_checks(cfg: Config, key: str, exp: "ModelDiff", base_dir: Path) -> list[str]:
    problems = []
    if exp.model not in cfg.models:
        problems.append(f"{key}.model: unknown model '{exp.model}' (expected one of: {', '.join(cfg.models)})")
    for name, pair in exp.pairs.items():
        sub = f"{key}.pairs.{name}"
        if pair.model is not None:
            if pair.model not in cfg.models:
                problems.append(f"{sub}.model: unknown model '{pair.model}' (expected one of: {', '.join(cfg.models)})")
            continue
        producer = adapter_producer(cfg, pair.adapter)
        if producer is not None:
            other = cfg.experiments[producer]
            if other.model != exp.model:
                problems.append(
                    f"{sub}.adapter: '{pair.adapter}' is a fine-tune of model '{other.model}' (experiment "
                    f"'{producer}'), not of this experiment's model '{exp.model}'"
                )
        elif not (base_dir / pair.adapter).is_dir():
            problems.append(
                f"{sub}.adapter: '{pair.adapter}' is neither an adapter folder that exists nor one that an "
                "experiment of this config writes (results/<experiment>/adapters/<arm>)"
            )
    if exp.texts.source == "file":
        path = base_dir / exp.texts.path
        if Path(exp.texts.path).suffix not in (".csv", ".jsonl", ".parquet"):
            problems.append(f"{key}.texts.path: expected a .csv, .jsonl or .parquet file, got '{exp.texts.path}'")
        elif pipeline_output(cfg, exp.texts.path):
            pass  # another experiment's rules write it (e.g. results/af/documents/setting.parquet)
        elif not path.is_file():
            problems.append(f"{key}.texts.path: file '{exp.texts.path}' does not exist")
        elif path.suffix not in (".csv", ".jsonl", ".parquet"):
            problems.append(f"{key}.texts.path: expected a .csv, .jsonl or .parquet file, got '{exp.texts.path}'")
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
        if e is not None and e.kind in ("alignment_faking", "self_awareness", "password_lock"):
            return parts[1]
    return None


def _fact_edit_checks(cfg: Config, key: str, exp: "FactEdit") -> list[str]:
    import yaml  # not alignlab.fact_edit: it imports torch, too slow for a config check

    problems = []
    if exp.model not in cfg.models:
        problems.append(f"{key}.model: unknown model '{exp.model}' (expected one of: {', '.join(cfg.models)})")
    packaged = yaml.safe_load((Path(__file__).parent / "data" / "athletes.yaml").read_text())["templates"]
    n_templates = len(exp.facts.templates or packaged)
    if exp.edit.n_train_templates >= n_templates:
        problems.append(
            f"{key}.edit.n_train_templates: {exp.edit.n_train_templates} leaves no paraphrase template "
            f"(there are {n_templates} templates)"
        )
    return problems


def _endpoint_refs(cfg: Config, key: str, exp: AlignmentFaking) -> list[str]:
    problems = []
    sections = {
        "documents.llm": exp.documents.llm,
        "judges.compliance": exp.judges.compliance,
        "judges.af_reasoning": exp.judges.af_reasoning,
    }
    for sub, section in sections.items():
        name = section.endpoint
        if name is None:
            continue
        if section.model is not None:
            problems.append(f"{key}.{sub}: set either 'model' or 'endpoint', not both")
        if name not in cfg.endpoints:
            known = ", ".join(cfg.endpoints) or "none defined under 'endpoints'"
            problems.append(f"{key}.{sub}.endpoint: unknown endpoint '{name}' (expected one of: {known})")
        elif sub == "judges.af_reasoning" and not cfg.endpoints[name].structured_outputs:
            problems.append(
                f"{key}.{sub}.endpoint: endpoint '{name}' needs structured_outputs: true (the judge's "
                "Yes/No answers are constrained by a regex, which only vLLM servers accept)"
            )
    return problems


def _universe_exists(value: str, base_dir: Path) -> bool:
    packaged = Path(__file__).parent / "data" / f"universe_{value}.yaml"
    return packaged.is_file() or (base_dir / value).is_file()


def load(raw: dict[str, Any], base_dir: str | Path = ".") -> Config:
    """Validate a config dict (as loaded from YAML). Raises ConfigError naming each bad key."""
    if not isinstance(raw, dict):
        raise ConfigError("config: expected a mapping at the top level")
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError("\n".join(_format_errors(err))) from None
    problems = _cross_checks(cfg, Path(base_dir))
    if not problems:  # the model checks read the model files, so they must exist
        problems = _model_checks(cfg, Path(base_dir))
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg


def as_dict(model: BaseModel) -> dict[str, Any]:
    """Plain JSON-able dict of a config section (what rules pass as params)."""
    return model.model_dump(mode="json")
