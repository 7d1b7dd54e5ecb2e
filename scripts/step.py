"""The script every rule runs: the step function the rule names in `params.step`, called with
the rule's named inputs, outputs and params (see alignlab/steps.py)."""

import _src  # noqa: F401 - alignlab from ../src (see _src.py)
from alignlab import steps

steps.main(snakemake)  # noqa: F821 - Snakemake defines it
