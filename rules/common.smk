# Helpers shared by the rules: config lookups, paths, input functions, each step's code
# inputs and what each job asks a cluster for. Functions only; the rules are in the other files.
import os

from alignlab import codedeps
from alignlab.alignment_faking import ARMS, DOCUMENT_SETS
from alignlab.config import as_dict
from alignlab.password_lock import unlock_arms as pl_unlock_arms
from alignlab.self_awareness import ARMS as SA_ARMS

RESULTS = "results"
# Experiments by kind: each kind has its own rules and wildcard ({exp}: alignment_faking,
# {sa}: self_awareness, {pl}: password_lock, {md}: model_diff, {fe}: fact_edit), so no path of one kind can match a rule of another.
EXPERIMENTS = {n: e for n, e in CFG.experiments.items() if e.kind == "alignment_faking"}
SA_EXPERIMENTS = {n: e for n, e in CFG.experiments.items() if e.kind == "self_awareness"}
PL_EXPERIMENTS = {n: e for n, e in CFG.experiments.items() if e.kind == "password_lock"}
MD_EXPERIMENTS = {n: e for n, e in CFG.experiments.items() if e.kind == "model_diff"}
MD_PAIRS = sorted({p for e in MD_EXPERIMENTS.values() for p in e.pairs})
FE_EXPERIMENTS = {n: e for n, e in CFG.experiments.items() if e.kind == "fact_edit"}
FE_SETTINGS = sorted({p for e in FE_EXPERIMENTS.values() for p in e.penalties})
# Locally a model job (vLLM, training) takes every core, so such jobs run one at a time: two
# of them side by side on a small machine stall each other's thread pools.
HEAVY_THREADS = max(1, workflow.cores or 1)
ON_GPU = CFG.engine.device == "cuda"
# The software each rule runs, for `--software-deployment-method conda` (paths are relative
# to the files in rules/).
CONDA_ENV = "../envs/cuda.yaml" if ON_GPU else "../envs/cpu.yaml"


def code(target):
    """The src/ files a step runs (and steps.py, which every script runs it with); see
    alignlab/codedeps.py. Relative to the working directory when inside it, else absolute."""
    return sorted(set(codedeps.files(target, os.getcwd()) + codedeps.files("steps", os.getcwd())))


def exp(w):
    return EXPERIMENTS[w.exp]


def sa_exp(w):
    return SA_EXPERIMENTS[w.sa]


def pl_exp(w):
    return PL_EXPERIMENTS[w.pl]


def fe_exp(w):
    return FE_EXPERIMENTS[w.fe]


def fe_setting_files(fe, setting):
    return {t: f"{RESULTS}/{fe}/settings/{setting}/{t}.parquet" for t in ("runs", "layers", "overlap")}


def md_exp(w):
    return MD_EXPERIMENTS[w.md]


def md_tuned_folder(w):
    """A model_diff pair's fine-tune as a model folder: a `models` key's folder, or the adapter
    merged into the base."""
    pair = md_exp(w).pairs[w.md_pair]
    if pair.model is not None:
        return model_folder(pair.model)
    return f"{RESULTS}/{w.md}/merged/{w.md_pair}"


def md_pair_files(md, pair):
    return {t: f"{RESULTS}/{md}/pairs/{pair}/{t}.parquet" for t in ("weights", "activations", "sae")}


def md_sources(w):
    """What each pair's fine-tune is, for the tables: the adapter folder or `model:<key>`."""
    return {p: (s.adapter if s.adapter is not None else f"model:{s.model}") for p, s in md_exp(w).pairs.items()}


def pl_arm_adapters(w):
    """The password_lock sampling job's adapters: arm -> folder (the base arm has none)."""
    arms = ["locked", *pl_unlock_arms(as_dict(pl_exp(w).unlock))]
    return {arm: f"{RESULTS}/{w.pl}/adapters/{'lock' if arm == 'locked' else arm}" for arm in arms}


def pl_finetune_inputs(w):
    """The lock adapter trains from the base model; an unlock arm's trains the lock adapter on."""
    inputs = {
        "train": f"{RESULTS}/{w.pl}/train/{w.pl_arm}.parquet",
        "model": model_folder(pl_exp(w).model),
        "code": code("password_lock.finetune"),
    }
    if w.pl_arm != "lock":
        inputs["init_adapter"] = f"{RESULTS}/{w.pl}/adapters/lock"
    return inputs


def pl_lora_params(w):
    """The lock's LoRA settings; an unlock arm's: the same with unlock_* and its epochs."""
    e = pl_exp(w)
    lora = as_dict(e.instruct.lock)
    if w.pl_arm == "lock":
        return lora
    epochs = e.unlock.strong_epochs if w.pl_arm.startswith("strong_") else e.unlock.weak_epochs
    return {**lora, "learning_rate": e.instruct.unlock_learning_rate, "batch_size": e.instruct.unlock_batch_size,
            "epochs": epochs, "warmup_ratio": 0.0}


def sa_arm_adapters(w):
    """The self_awareness sampling job's arms: name -> adapter folder (None: the base model),
    in the registry's order."""
    arms = sa_exp(w).arms
    return {
        arm: None if SA_ARMS[arm].task is None else f"{RESULTS}/{w.sa}/adapters/{arm}"
        for arm in SA_ARMS if arm in arms
    }


def model_folder(name):
    return f"{RESULTS}/models/{name}/hf"


def chat_template_file(w):
    """The Jinja file a model's `chat_template` names (none for a packaged template), so that
    editing it rebuilds the model folder."""
    template = CFG.models[w.model].chat_template
    return [template] if template and template.endswith(".jinja") else []


def engine_params(w):
    """The vLLM settings of steps that run the base model as is (judges, generators): all but
    how adapters are served, so changing `engine.lora` reruns sampling only."""
    return {k: v for k, v in as_dict(CFG.engine).items() if k != "lora"}


def sample_engine_params(w):
    return as_dict(CFG.engine)


def judge_model(w, section):
    """The model a judge runs on: its own `model`, else the experiment's."""
    return getattr(exp(w).judges, section).model or exp(w).model


def judge_endpoint(w, section):
    """The endpoint a judge sends its requests to (None: it runs vLLM on `judge_model`)."""
    return getattr(exp(w).judges, section).endpoint


def docs_endpoint(w):
    return exp(w).documents.llm.endpoint


def endpoint_params(name):
    """An endpoint's settings for a rule's params (its key's variable name, never the key), and
    the request cache; None when no endpoint is used."""
    if name is None:
        return None
    return {"name": name, **as_dict(CFG.endpoints[name]), "cache_dir": CFG.endpoint_cache}


def model_input(name, endpoint):
    """A step's model folder input: none when an endpoint serves the model."""
    return [] if endpoint else model_folder(name)


def experiment_targets():
    targets = []
    for name, e in EXPERIMENTS.items():
        targets += expand(f"{RESULTS}/{name}/samples/{{arm}}.parquet", arm=list(e.arms))
        targets += [
            f"{RESULTS}/{name}/summary.md",
            f"{RESULTS}/{name}/compliance.png",
            f"{RESULTS}/{name}/report/metrics.csv",
            f"{RESULTS}/{name}/report/gaps.csv",
        ]
    for name in SA_EXPERIMENTS:
        targets += [f"{RESULTS}/{name}/{f}" for f in ("summary.md", "acrostic.png", "risk.png", "report/metrics.csv")]
    for name in PL_EXPERIMENTS:
        targets += [f"{RESULTS}/{name}/{f}" for f in ("summary.md", "unlock.png", "report/metrics.csv")]
    for name, e in MD_EXPERIMENTS.items():
        targets += [f"{RESULTS}/{name}/{f}" for f in ("summary.md", "report/metrics.csv")]
        targets += [f"{RESULTS}/{name}/pairs/{p}/layers.png" for p in e.pairs]
    for name in FE_EXPERIMENTS:
        targets += [f"{RESULTS}/{name}/{f}" for f in ("summary.md", "layers.png", "report/metrics.csv")]
    return targets


# ---- cluster resources (profiles/slurm turns them into sbatch options) --------------------

def _placement(gpus):
    """Partition, account and GPUs; unset keys are left to the profile's default-resources."""
    cluster = CFG.cluster
    res = {}
    partition = cluster.gpu_partition if gpus else cluster.partition
    if partition:
        res["slurm_partition"] = partition
    if cluster.account:
        res["slurm_account"] = cluster.account
    if gpus:
        res["gpu"] = gpus
        if cluster.gpu_model:
            res["gpu_model"] = cluster.gpu_model
    return res


def model_job(gpus=0):
    """Resources of a job that loads a model (materialization, fine-tuning, vLLM).
    `gpus`: how many GPUs it needs when the engine runs on CUDA (0: none)."""
    cluster = CFG.cluster
    return {
        "cpus_per_task": cluster.cpus,
        "mem_mb": cluster.mem_mb,
        "runtime": cluster.runtime,
        **_placement(gpus if ON_GPU else 0),
    }


def small_job():
    """Resources of a quick job that loads no model (data, rule-based judges, aggregation)."""
    return {"cpus_per_task": 1, "mem_mb": 4000, "runtime": 30, **_placement(0)}


VLLM_GPUS = CFG.engine.tensor_parallel_size
# Fine-tuning spreads the model over as many GPUs as sampling shards it over.
TRAIN_GPUS = CFG.engine.tensor_parallel_size


# ---- input functions -----------------------------------------------------------------------

def documents_inputs(w):
    inputs = {"code": code("alignment_faking.make_documents")}
    documents = exp(w).documents
    if documents.generator == "llm" and not documents.llm.endpoint:
        inputs["model"] = model_folder(documents.llm.model or exp(w).model)
    return inputs


def train_set_path(w):
    train_set = ARMS[w.arm].train_set
    if train_set in DOCUMENT_SETS:
        return f"{RESULTS}/{w.exp}/documents/{train_set}.parquet"
    return f"{RESULTS}/{w.exp}/train/{train_set}.parquet"


def lora_params(w):
    section = "documents" if ARMS[w.arm].train_set in DOCUMENT_SETS else "positive_control"
    return as_dict(getattr(exp(w).finetune, section))


def adapter_path(w, arm):
    """The adapter folder of a fine-tuned arm; None for an arm that runs the base model."""
    return f"{RESULTS}/{w.exp}/adapters/{arm}" if ARMS[arm].train_set is not None else None


def sample_inputs(w):
    return {
        "queries": f"{RESULTS}/{w.exp}/queries.parquet",
        "model": model_folder(exp(w).model),
        "adapters": [a["adapter"] for a in sample_arms(w).values() if a["adapter"]],
        "code": code("alignment_faking.sample"),
    }


def sample_arms(w):
    """What the sampling job needs per arm: its hidden scratchpad, and its adapter. In the
    registry's order, not the config's: reordering arms in a config changes no sample."""
    arms = exp(w).arms
    return {
        arm: {"scratchpad": arms[arm].scratchpad, "adapter": adapter_path(w, arm)}
        for arm in ARMS if arm in arms
    }


def samples_shard(w):
    return f"{RESULTS}/{w.exp}/shards/samples/{w.scatteritem}.parquet"


def compliance_inputs(w):
    inputs = {
        "samples": samples_shard(w),
        "queries": f"{RESULTS}/{w.exp}/queries.parquet",
        "code": code("alignment_faking.judge_compliance"),
    }
    if exp(w).judges.compliance.name == "rubric" and not judge_endpoint(w, "compliance"):
        inputs["model"] = model_folder(judge_model(w, "compliance"))
    return inputs


# Resources are fixed when the workflow is parsed, so a step that loads a model for some
# experiments only (the rubric judge, the LLM document generator, a judge without an endpoint)
# asks for a model job if any experiment needs one.
def _model_job_if(needed):
    return model_job(VLLM_GPUS) if any(needed(e) for e in EXPERIMENTS.values()) else small_job()


COMPLIANCE_JOB = _model_job_if(lambda e: e.judges.compliance.name == "rubric" and not e.judges.compliance.endpoint)
AF_JOB = _model_job_if(lambda e: not e.judges.af_reasoning.endpoint)
DOCUMENTS_JOB = _model_job_if(lambda e: e.documents.generator == "llm" and not e.documents.llm.endpoint)


def scratchpad_arms(w):
    return [a for a, o in exp(w).arms.items() if o.scratchpad]
