"""The cluster side, without a cluster: the SLURM profiles, the GPU config examples resolved by
`snakemake -n --profile profiles/slurm` (what each job would ask sbatch for), the conda
environments, and `snakemake --lint`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from workflow import REPO, copy_workflow, snakemake

PROFILES = REPO / "profiles"
MODEL_RULES = {"sample", "finetune", "documents", "positive_control_data", "knowledge"}
# The GPU configs' judges send to an endpoint (a stronger model served elsewhere): no GPU for them.
ENDPOINT_JUDGE_RULES = {"judge_af", "judge_compliance", "validate_compliance_judges", "validate_af_judge"}
SA_MODEL_RULES = {"sa_acrostic_chats", "sa_finetune", "sa_sample"}  # the self_awareness kind's
MD_FE_MODEL_RULES = {"md_sae", "md_compare", "fe_facts", "fe_setting"}  # model_diff's and fact_edit's
EM_MODEL_RULES = {"em_finetune", "em_sample", "em_choices"}  # emergent_misalignment's
EM_ENDPOINT_JUDGE_RULES = {"em_judge_free_form", "em_validate_judge"}  # its judge is the 70B server


def resolved_jobs(text: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job in a dry run's output."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", text):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if m and res:
            jobs.append((m.group(1), dict(kv.split("=", 1) for kv in res.group(1).split(", "))))
    return jobs


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("profiles"))


def dry_run(workdir: Path, config: Path) -> list[tuple[str, dict[str, str]]]:
    proc = snakemake(workdir, "-n", "--configfile", str(config), profile="profiles/slurm")
    return resolved_jobs(proc.stdout + proc.stderr)


def test_the_test_profile_differs_from_the_cluster_one_only_in_partition_and_polling():
    real = yaml.safe_load((PROFILES / "slurm/config.yaml").read_text())
    test = yaml.safe_load((PROFILES / "slurm-test/config.yaml").read_text())
    polling = {"slurm-status-command", "slurm-init-seconds-before-status-checks", "seconds-between-status-checks"}
    differing = {k for k in set(real) | set(test) if real.get(k) != test.get(k)}
    assert differing <= polling | {"default-resources"}, differing
    assert test["default-resources"] == {"slurm_partition": "debug"}
    assert real["executor"] == "slurm" and real["retries"] >= 1 and real["slurm-requeue"] is True


@pytest.mark.parametrize(
    "config,gpus,gpu_model,cpus,mem_mb",
    [("gpu_8b.yaml", "1", "a100", "8", "64000"), ("gpu_70b.yaml", "4", "h100", "32", "480000")],
)
def test_gpu_configs_resolve_to_gpu_jobs_on_the_gpu_partition(workdir, config, gpus, gpu_model, cpus, mem_mb):
    jobs = dry_run(workdir, REPO / "configs" / config)
    rules = {rule for rule, _ in jobs}
    assert MODEL_RULES | ENDPOINT_JUDGE_RULES <= rules, rules
    if config == "gpu_8b.yaml":  # it also runs the self_awareness, model_diff, fact_edit and EM experiments
        assert SA_MODEL_RULES | MD_FE_MODEL_RULES | EM_MODEL_RULES | EM_ENDPOINT_JUDGE_RULES <= rules, rules
        # the EM fine-tunes: 3 trained arms x 3 replicates
        assert sum(rule == "em_finetune" for rule, _ in jobs) == 9
    for rule, res in jobs:
        if rule in MODEL_RULES | SA_MODEL_RULES | MD_FE_MODEL_RULES | EM_MODEL_RULES:
            assert (res.get("gpu"), res.get("gpu_model"), res.get("slurm_partition")) == (gpus, gpu_model, "gpu"), (rule, res)
            assert (res["cpus_per_task"], res["mem_mb"]) == (cpus, mem_mb), (rule, res)
            assert int(res["runtime"]) > 60, (rule, res)
        elif rule in {"queries", "aggregate", "materialize_model", "sa_items", "sa_judge", "sa_aggregate",
                      "md_texts", "md_merge", "md_aggregate", "fe_aggregate", "em_items", "em_judge",
                      "em_aggregate", *ENDPOINT_JUDGE_RULES, *EM_ENDPOINT_JUDGE_RULES}:
            assert "gpu" not in res and res.get("slurm_partition") == "cpu", (rule, res)
    # 8 shards: one sampling job per shard serves all 9 arms; each arm is judged by 8 jobs and
    # gathered by one local job.
    assert sum(rule == "sample" for rule, _ in jobs) == 8
    assert sum(rule == "judge_compliance" for rule, _ in jobs) == 9 * 8
    assert sum(rule == "gather_samples" for rule, _ in jobs) == 9
    # the arms that think first (base_cot, prompted, sdf, sdf_baseline) are judged for AF reasoning
    assert sum(rule == "judge_af" for rule, _ in jobs) == 4 * 8


def test_the_cpu_default_asks_for_no_gpu(workdir):
    jobs = dry_run(workdir, workdir / "config.yaml")
    assert jobs and all("gpu" not in res for _, res in jobs)
    assert {res["cpus_per_task"] for rule, res in jobs if rule == "sample"} == {"4"}


def test_lint_passes(workdir):
    proc = snakemake(workdir, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _pins(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("env,requirements", [("cpu", "requirements.txt"), ("cuda", "requirements-cuda.txt")])
def test_conda_environments_carry_the_same_pins_as_the_requirements(env, requirements):
    spec = yaml.safe_load((REPO / f"envs/{env}.yaml").read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    assert [p for p in pip if not p.startswith("--")] == _pins(REPO / requirements)
    post_deploy = (REPO / f"envs/{env}.post-deploy.sh").read_text()
    assert all(pin in post_deploy for pin in _pins(REPO / "requirements-data.txt") + _pins(REPO / "requirements-slurm.txt"))
    rules = "".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    assert rules.count("conda:") == rules.count("\nrule ")
