# Helpers shared by every kind's rules: config lookups, paths, each step's code inputs, report
# outputs and what each job asks a cluster for. Functions only; the rules are in the other files.
# Nothing here names a kind: a kind's own helpers live in its package (src/alignlab/kinds/<kind>).
import os

from alignlab import kinds
from alignlab.config import as_dict
from alignlab.paths import RESULTS, code, model_folder
KINDS = kinds.load(CFG.kind_modules)
# Locally a model job (vLLM, training) takes every core, so such jobs run one at a time: two
# of them side by side on a small machine stall each other's thread pools.
HEAVY_THREADS = max(1, workflow.cores or 1)
ON_GPU = CFG.engine.device == "cuda"
# The software each rule runs, for `--software-deployment-method conda` (paths are relative
# to the files in rules/).
CONDA_ENV = "../envs/cuda.yaml" if ON_GPU else "../envs/cpu.yaml"
# Every rule runs its step function through this script (see alignlab/steps.py); an absolute
# path, so that a kind's rule file outside rules/ can use it too.
STEP_SCRIPT = os.path.join(workflow.basedir, "scripts", "step.py")


def experiments_of(kind):
    """The config's experiments of one kind, by name. Each kind's rules use their own wildcard
    ({exp}, {sa}, ...), constrained to these names, so no path of one kind matches another's rule."""
    return {n: e for n, e in CFG.experiments.items() if e.kind == kind}


def one_of(names):
    """A wildcard constraint matching exactly these names (a never-matching one when empty)."""
    return "|".join(names) or "NONE"


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


def endpoint_params(name):
    """An endpoint's settings for a rule's params (its key's variable name, never the key), and
    the request cache; None when no endpoint is used."""
    if name is None:
        return None
    return {"name": name, **as_dict(CFG.endpoints[name]), "cache_dir": CFG.endpoint_cache}


def experiment_targets():
    """The files the `all` target builds, each experiment's final files as its kind lists them,
    and the report's page of example transcripts where a kind writes Inspect logs."""
    out = []
    for name, e in CFG.experiments.items():
        targets = KINDS[e.kind].targets(name, e)
        if f"{RESULTS}/{name}/inspect" in targets:
            targets.append(f"{RESULTS}/{name}/report/transcripts.html")
        out += targets
    return out


# ---- report outputs (`snakemake --report`) -------------------------------------------------

def metrics_report(wildcard):
    """An aggregate rule's metrics table, in the report under its experiment."""
    return report(f"{RESULTS}/{{{wildcard}}}/metrics.parquet", category=f"{{{wildcard}}}", labels={"table": "metrics"})


def summary_report(wildcard):
    """An aggregate rule's Markdown summary, in the report under its experiment."""
    return report(
        f"{RESULTS}/{{{wildcard}}}/summary.md", category=f"{{{wildcard}}}", caption="../report/summary.rst",
        labels={"table": "summary"},
    )


def figure_report(kind, wildcard, path, caption, label):
    """A figure (path under the experiment's results folder) with its caption from the kind's
    report/ folder."""
    folder = os.path.relpath(KINDS[kind].folder / "report", os.path.join(workflow.basedir, "rules"))
    return report(
        f"{RESULTS}/{{{wildcard}}}/{path}", category=f"{{{wildcard}}}", caption=f"{folder}/{caption}",
        labels={"figure": label},
    )


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


# Resources are fixed when the workflow is parsed, so a step that loads a model for some
# experiments only (an LLM judge, an LLM document generator) asks for a model job if any
# experiment needs one.
def model_job_if(experiments, needs_model):
    return model_job(VLLM_GPUS) if any(needs_model(e) for e in experiments.values()) else small_job()


VLLM_GPUS = CFG.engine.tensor_parallel_size
# Fine-tuning spreads the model over as many GPUs as sampling shards it over.
TRAIN_GPUS = CFG.engine.tensor_parallel_size
