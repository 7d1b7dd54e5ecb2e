"""Imported first by every rule script: puts this workflow's src/ at the front of sys.path, so
a job runs the alignlab code beside its Snakefile, also where alignlab is not installed (the
conda environments in envs/) and in copies of the workflow."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
