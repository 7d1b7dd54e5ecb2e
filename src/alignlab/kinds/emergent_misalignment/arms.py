"""What emergent_misalignment's rules compute per arm: adapters, training sets, LoRA seeds (used by
rules/emergent_misalignment.smk)."""

from __future__ import annotations

from typing import Any

from alignlab.kinds.emergent_misalignment.config import EM_ARMS
from alignlab.paths import RESULTS, code, model_folder
from alignlab.replicates import instance, instance_pattern, replicate_seed, split_instance

FINE_TUNED = [a for a in EM_ARMS if a != "base"]
INSTANCE = instance_pattern(FINE_TUNED)  # "insecure", "insecure.r1", ...


def arm_adapters(name: str, exp: Any) -> dict[str, str | None]:
    """instance name -> adapter folder (None: the base model), in EM_ARMS order."""
    return {instance(a, r): None if a == "base" else f"{RESULTS}/{name}/adapters/{instance(a, r)}"
            for a in EM_ARMS if a in exp.arms for r in range(exp.replicates_of(a))}


def train_set_path(name: str, adapter: str) -> str:
    return f"{RESULTS}/{name}/train/{split_instance(adapter)[0]}.parquet"


def finetune_seed(seed: int, name: str, adapter: str) -> int:
    arm, replicate = split_instance(adapter)
    return replicate_seed(seed, name, arm, "finetune", replicate=replicate)


def judges(exp: Any) -> bool:
    return exp.judge.name == "llm"


def judge_inputs(name: str, exp: Any, step: str) -> dict:
    """A judge rule's inputs: the samples (for the free-form step), the judge's model where it
    runs one here, the user's labelled file where the config names one."""
    inputs = {"code": code(f"kinds.emergent_misalignment.steps.{step}")}
    if step == "judge_free_form":
        inputs["samples_path"] = f"{RESULTS}/{name}/samples.parquet"
    if exp.judge_model():
        inputs["model_dir"] = model_folder(exp.judge_model())
    if step == "validate_judge" and exp.judge.labelled:
        inputs["labelled"] = exp.judge.labelled
    return inputs


def inspect_inputs(name: str, exp: Any) -> dict:
    """The Inspect logs' inputs: the samples and every judging step's table."""
    rules = [f"{RESULTS}/{name}/judgments.parquet"]
    llm = [f"{RESULTS}/{name}/free_form_judgments.parquet"] if judges(exp) else []
    return {"samples_path": f"{RESULTS}/{name}/samples.parquet", "judgment_paths": rules + llm,
            "choices_path": f"{RESULTS}/{name}/choices.parquet",
            "code": code("kinds.emergent_misalignment.steps.write_inspect")}


def aggregate_inputs(name: str, exp: Any) -> dict:
    paths = [f"{RESULTS}/{name}/judgments.parquet", f"{RESULTS}/{name}/choices.parquet"]
    validation = [f"{RESULTS}/{name}/judge_validation/downside_rule.parquet"]
    if judges(exp):
        paths.append(f"{RESULTS}/{name}/free_form_judgments.parquet")
        validation.append(f"{RESULTS}/{name}/judge_validation/alignment.parquet")
    return {"judgment_paths": paths, "validation_paths": validation,
            "model_info": f"{RESULTS}/models/{exp.model}/model.parquet",
            "code": code("kinds.emergent_misalignment.steps.aggregate")}
