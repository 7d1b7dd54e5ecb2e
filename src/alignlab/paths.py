"""Paths the rule files and the kinds' input functions share: the results folder, a model's
folder, and a step's source files (its `code` input)."""

from __future__ import annotations

import os

from alignlab import codedeps

RESULTS = "results"


def model_folder(name: str) -> str:
    return f"{RESULTS}/models/{name}/hf"


def code(target: str) -> list[str]:
    """The src/ files a step runs (and steps.py, which every rule runs it with); see
    alignlab/codedeps.py. Relative to the working directory when inside it, else absolute."""
    return sorted(set(codedeps.files(target, os.getcwd()) + codedeps.files("steps", os.getcwd())))
