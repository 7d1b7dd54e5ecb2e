"""What alignment_faking's rules compute from its config, per arm: the training set, the LoRA
settings and the adapter of a fine-tuned arm, and what the sampling job serves (used by
rules/alignment_faking.smk; plain functions, so tests reach them)."""

from __future__ import annotations

from typing import Any

from alignlab.config import as_dict
from alignlab.kinds.alignment_faking.config import PRESETS, WEIGHTS
from alignlab.kinds.alignment_faking.steps import DOCUMENT_SETS
from alignlab.paths import RESULTS, code, model_folder
from alignlab.replicates import instance, instance_pattern, replicate_seed, split_instance


# An adapter's training replicate ("sdf", "sdf.r1"; see alignlab.replicates): adapters belong to
# weights, so the arms on the same weights (sdf, sdf_cot) share them.
ADAPTER = instance_pattern([w for w, train_set in WEIGHTS.items() if train_set])


def train_set_path(name: str, adapter: str) -> str:
    """The training set of an adapter (or of one of its replicates: they share it)."""
    train_set = WEIGHTS[split_instance(adapter)[0]]
    folder = "documents" if train_set in DOCUMENT_SETS else "train"
    return f"{RESULTS}/{name}/{folder}/{train_set}.parquet"


def trains_on_documents(adapter: str) -> bool:
    return WEIGHTS[split_instance(adapter)[0]] in DOCUMENT_SETS


def lora_params(exp: Any, adapter: str) -> dict:
    """The LoRA settings of an adapter's fine-tune: `finetune.documents` for the document sets,
    `finetune.positive_control` for the chats."""
    section = "documents" if trains_on_documents(adapter) else "positive_control"
    return as_dict(getattr(exp.finetune, section))


def finetune_seed(seed: int, name: str, adapter: str) -> int:
    """The training seed of an adapter's replicate: replicate 0 keeps the seed a one-replicate
    experiment has always had."""
    weights, replicate = split_instance(adapter)
    return replicate_seed(seed, name, weights, "finetune", replicate=replicate)


def adapter_path(name: str, weights: str, replicate: int = 0) -> str | None:
    """The adapter folder of replicate `replicate` of `weights`; None for the base model."""
    return f"{RESULTS}/{name}/adapters/{instance(weights, replicate)}" if WEIGHTS[weights] else None


def adapter_paths(name: str, exp: Any) -> list[str]:
    """Every adapter the experiment's arms sample (each replicate of each weights once)."""
    return [adapter_path(name, w, r) for w, n in exp.adapters().items() for r in range(n)]


def sample_arms(name: str, exp: Any) -> dict[str, dict]:
    """What the sampling job needs per arm replicate (instance name -> its arm, replicate,
    system prompt, hidden scratchpad, tag protocol and adapter): the presets in their order,
    then the other arms by name, so reordering a config's arms changes no sample."""
    out = {}
    for arm in [a for a in PRESETS if a in exp.arms] + sorted(set(exp.arms) - set(PRESETS)):
        spec = exp.arm(arm)
        for r in range(exp.arm_replicates(arm)):
            out[instance(arm, r)] = {
                "arm": arm, "replicate": r, "describe_training": spec.describe_training,
                "scratchpad": spec.scratchpad, "tag_protocol": spec.tag_protocol,
                "adapter": adapter_path(name, spec.weights, r),
            }
    return out


def arm_sampling(exp: Any, arm: str) -> dict:
    """The sampling settings as arm `arm` sees them (its own tag protocol)."""
    return {**as_dict(exp.sampling), "tag_protocol": exp.arm(arm).tag_protocol}


# ---- the input functions of rules/alignment_faking.smk: a step's model only where it runs one

STEPS = "kinds.alignment_faking.steps"


def samples_shard(name: str, shard: str) -> str:
    return f"{RESULTS}/{name}/shards/samples/{shard}.parquet"


def identity_inputs(name: str, exp: Any) -> dict:
    """The identity probe's table, for the steps that write the model's identity into documents,
    prompts or questions, where the config asks for the model's own (`identity.source: self`)."""
    return {"identity_path": f"{RESULTS}/{name}/identity.parquet"} if exp.identity.source == "self" else {}


def identity_rule_inputs(name: str, exp: Any) -> dict:
    inputs = {"model_dir": model_folder(exp.model), "code": code("kinds.alignment_faking.identity.probe_identity")}
    if exp.identity.questions:
        inputs["questions"] = exp.identity.questions
    return inputs


def documents_inputs(name: str, exp: Any) -> dict:
    inputs = {"code": code(f"{STEPS}.make_documents"), **identity_inputs(name, exp)}
    if exp.documents_model():
        inputs["model_dir"] = model_folder(exp.documents_model())
    return inputs


def positive_control_inputs(name: str, exp: Any) -> dict:
    """The positive-control data's inputs: the experiment's model (its answers), and the keep
    judge's model where that is another one."""
    inputs = {"queries_path": f"{RESULTS}/{name}/queries.parquet", "model_dir": model_folder(exp.model),
              "code": code(f"{STEPS}.make_positive_control"), **identity_inputs(name, exp)}
    if exp.keep_judge_model() not in (None, exp.model):
        inputs["keep_model_dir"] = model_folder(exp.keep_judge_model())
    return inputs


def keep_judge_settings(exp: Any) -> dict:
    """The keep judge's settings: the phrase judge's own rules (no extra phrases, no off-topic
    rule, so tuning the scoring judge does not retrain the controls), or the rubric judge with
    the compliance judge's decoding."""
    if exp.keep_judge() == "refusal":
        return {"name": "refusal", "extra_phrases": [], "off_topic": False}
    return {**as_dict(exp.judges.compliance), "name": "rubric"}


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
    model = exp.validation_model() if judge == "compliance" else exp.af_judge_model()
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
