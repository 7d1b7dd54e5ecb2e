"""Part of the tiny DAG (conftest.RERUN_TARGETS: model materialization, data, vLLM sampling and
judging for the positive-control chats, two LoRA fine-tunes) through a real one-node SLURM
(started by the `slurm_cluster` fixture) with profiles/slurm-test, which differs from
profiles/slurm only in partition and polling: every model and data job is an sbatch job, and
the results equal those of the local run. The SLURM run is the session's clean second run
(conftest.clean_rerun), which the reproducibility test compares with the local run too."""

from __future__ import annotations

import re

import pytest

from conftest import RERUN_MIN_TABLES
from workflow import assert_same_results, count_jobs

pytestmark = pytest.mark.slow

LOCAL_RULES = {"all", "gather_samples", "gather_compliance", "gather_af", "report_table"}


@pytest.fixture(scope="module")
def slurm_run(clean_rerun):
    """The session's second clean run of the tiny config (conftest.clean_rerun), which goes
    through SLURM wherever the SLURM fixture can run."""
    if not clean_rerun["on_slurm"]:
        pytest.skip(clean_rerun["why_local"])
    return clean_rerun["workdir"], clean_rerun["expected"], clean_rerun["proc"]


def test_every_model_and_data_job_ran_as_a_slurm_job(slurm_run):
    workdir, expected, _ = slurm_run
    logs = sorted((workdir / ".snakemake/slurm_logs").rglob("*.log"))
    by_rule = count_jobs("".join(f"rule {p.relative_to(workdir / '.snakemake/slurm_logs').parts[0].removeprefix('rule_')}:\n" for p in logs))
    submitted = {rule: n for rule, n in expected.items() if rule not in LOCAL_RULES}
    assert by_rule == submitted, (by_rule, submitted)
    # The plugin names each job's log by its SLURM job id, and each step's own log says which
    # SLURM job ran it.
    job_ids = {p.stem for p in logs}
    assert all(re.fullmatch(r"\d+", j) for j in job_ids), job_ids
    step_logs = [p for p in (workdir / "logs").rglob("*.log") if not p.name.startswith(("gather_", "report_"))]
    ran_in = {re.search(r"SLURM job (\d+)", p.read_text(errors="replace")).group(1) for p in step_logs}
    assert ran_in == job_ids


def test_slurm_results_equal_the_local_results(slurm_run, tiny_run):
    workdir, _, _ = slurm_run
    assert assert_same_results(tiny_run["workdir"] / "results", workdir / "results", subset=True) >= RERUN_MIN_TABLES
