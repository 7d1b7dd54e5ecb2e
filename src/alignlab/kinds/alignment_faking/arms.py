"""What alignment_faking's rules compute from its config, per arm: the training set, the LoRA
settings and the adapter of a fine-tuned arm, and what the sampling job serves (used by
rules/alignment_faking.smk; plain functions, so tests reach them)."""

from __future__ import annotations

from typing import Any

from alignlab.config import as_dict
from alignlab.kinds.alignment_faking.steps import ARMS, DOCUMENT_SETS
from alignlab.paths import RESULTS, code, model_folder
from alignlab.replicates import instance, instance_pattern, replicate_seed, split_instance


INSTANCE = instance_pattern(ARMS)  # an arm's training replicate (see alignlab.replicates)


def fine_tuned(arm: str) -> bool:
    return ARMS[split_instance(arm)[0]].train_set is not None


def train_set_path(name: str, arm: str) -> str:
    """The training set of an arm (or of one of its replicates: they share it)."""
    train_set = ARMS[split_instance(arm)[0]].train_set
    folder = "documents" if train_set in DOCUMENT_SETS else "train"
    return f"{RESULTS}/{name}/{folder}/{train_set}.parquet"


def trains_on_documents(arm: str) -> bool:
    return ARMS[split_instance(arm)[0]].train_set in DOCUMENT_SETS


def lora_params(exp: Any, arm: str) -> dict:
    """The LoRA settings of an arm's fine-tune: `finetune.documents` for the document arms,
    `finetune.positive_control` for the chat arm."""
    section = "documents" if trains_on_documents(arm) else "positive_control"
    return as_dict(getattr(exp.finetune, section))


def finetune_seed(seed: int, name: str, arm: str) -> int:
    """The training seed of an arm's replicate (`arm` an instance name): replicate 0 keeps the
    seed a one-replicate experiment has always had."""
    base, replicate = split_instance(arm)
    return replicate_seed(seed, name, base, "finetune", replicate=replicate)


def adapter_path(name: str, arm: str) -> str | None:
    """The adapter folder of a fine-tuned arm's replicate (`arm` an instance name); None for an
    arm that runs the base model."""
    return f"{RESULTS}/{name}/adapters/{arm}" if fine_tuned(arm) else None


def sample_arms(name: str, exp: Any) -> dict[str, dict]:
    """What the sampling job needs per arm replicate (instance name -> its arm, replicate,
    hidden scratchpad and adapter). In the registry's order, not the config's: reordering arms
    in a config changes no sample."""
    return {
        instance(arm, r): {"arm": arm, "replicate": r, "scratchpad": exp.arms[arm].scratchpad,
                           "adapter": adapter_path(name, instance(arm, r))}
        for arm in ARMS if arm in exp.arms
        for r in range(exp.arm_replicates(arm))
    }


# ---- the input functions of rules/alignment_faking.smk: a step's model only where it runs one

STEPS = "kinds.alignment_faking.steps"


def samples_shard(name: str, shard: str) -> str:
    return f"{RESULTS}/{name}/shards/samples/{shard}.parquet"


def documents_inputs(name: str, exp: Any) -> dict:
    inputs = {"code": code(f"{STEPS}.make_documents")}
    if exp.documents_model():
        inputs["model_dir"] = model_folder(exp.documents_model())
    return inputs


def compliance_inputs(name: str, exp: Any, shard: str) -> dict:
    inputs = {
        "samples_path": samples_shard(name, shard),
        "queries_path": f"{RESULTS}/{name}/queries.parquet",
        "code": code(f"{STEPS}.judge_compliance"),
    }
    if exp.compliance_model():
        inputs["model_dir"] = model_folder(exp.compliance_model())
    return inputs


def af_judge_inputs(name: str, exp: Any, shard: str) -> dict:
    inputs = {"samples_path": samples_shard(name, shard), "code": code(f"{STEPS}.judge_af")}
    if exp.af_judge_model():
        inputs["model_dir"] = model_folder(exp.af_judge_model())
    return inputs


def validation_inputs(name: str, exp: Any, judge: str) -> dict:
    """Inputs of a judge-validation rule (`judge`: "compliance" or "af_reasoning"): the judge's
    model where it runs one, and the user's labelled file where the config names one."""
    step = "validate_compliance_judges" if judge == "compliance" else "validate_af_judge"
    inputs = {"code": code(f"{STEPS}.{step}")}
    model = exp.compliance_model() if judge == "compliance" else exp.af_judge_model()
    if model:
        inputs["model_dir"] = model_folder(model)
    labelled = getattr(exp.judges.validation, judge).path
    if labelled:
        inputs["labelled"] = labelled
    return inputs


def validation_outputs(name: str, exp: Any) -> list[str]:
    """The judge_scores tables an experiment's aggregation reads: the compliance judges', and
    the alignment-faking judge's where an arm has a scratchpad."""
    judges = ["compliance"] + (["af_reasoning"] if exp.scratchpad_arms() else [])
    return [f"{RESULTS}/{name}/judge_validation/{j}.parquet" for j in judges]
