"""A real job through the one-node SLURM cluster (tests/slurm/up.sh): submitted with sbatch,
run by slurmd, seen by the controller."""

from __future__ import annotations

import subprocess


def _run(*cmd: str, timeout: float = 60) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_sbatch_job_runs_on_the_cluster(slurm_cluster, tmp_path):
    out = tmp_path / "job-%j.out"
    submitted = _run(
        "sbatch", "--wait", "--parsable", "-J", "alignlab-slurm-test", "-p", "debug",
        "-c", "1", "--mem=100", "-t", "2", "-D", str(tmp_path), "-o", str(out),
        "--wrap", 'echo "job=$SLURM_JOB_ID node=$SLURMD_NODENAME cpus=$SLURM_CPUS_PER_TASK"',
        timeout=180,
    )
    job_id = submitted.strip().split(";")[0]
    assert job_id.isdigit(), submitted

    # The output file is the one SLURM named after the job, written by the job itself.
    text = (tmp_path / f"job-{job_id}.out").read_text()
    assert f"job={job_id} " in text and "cpus=1" in text, text
    node = text.split("node=")[1].split()[0]
    assert node

    # The controller knows the job as finished and successful on that node (MinJobAge=300 keeps
    # finished jobs visible; there is no accounting, so no sacct).
    show = _run("scontrol", "show", "job", job_id)
    for field in (f"JobId={job_id}", "JobName=alignlab-slurm-test", "JobState=COMPLETED",
                  "ExitCode=0:0", "Partition=debug", f"NodeList={node}"):
        assert field in show, f"{field} not in:\n{show}"
    queue = _run("squeue", "-h", "-t", "all", "-j", job_id, "-o", "%i %j %T")
    assert queue.split() == [job_id, "alignlab-slurm-test", "COMPLETED"], queue
