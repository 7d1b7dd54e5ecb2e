# Helpers shared by the rule files: config lookups, paths, and each step's code inputs.
import os

from alignlab import codedeps
from alignlab.alignment_faking import ARMS, DOCUMENT_SETS
from alignlab.config import as_dict

RESULTS = "results"
EXPERIMENTS = CFG.experiments
HEAVY_THREADS = max(1, workflow.cores or 1)

wildcard_constraints:
    exp="|".join(EXPERIMENTS) or "NONE",
    model="|".join(CFG.models),
    arm="|".join(ARMS),
    corpus="|".join(DOCUMENT_SETS),


def code(target):
    """The src/ files a step runs (and steps.py, which every script runs it with); see
    alignlab/codedeps.py. Relative to the working directory when inside it, else absolute."""
    return sorted(set(codedeps.files(target, os.getcwd()) + codedeps.files("steps", os.getcwd())))


def exp(w):
    return EXPERIMENTS[w.exp]


def model_folder(name):
    return f"{RESULTS}/models/{name}/hf"


def engine_params(w=None):
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


def adapter_arms(e):
    return [a for a in e.arms if ARMS[a].train_set is not None]


def experiment_targets():
    targets = []
    for name in EXPERIMENTS:
        targets += [
            f"{RESULTS}/{name}/summary.md",
            f"{RESULTS}/{name}/compliance.png",
            f"{RESULTS}/{name}/report/metrics.csv",
            f"{RESULTS}/{name}/report/gaps.csv",
        ]
    return targets
