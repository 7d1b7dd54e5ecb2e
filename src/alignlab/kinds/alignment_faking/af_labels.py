"""The packaged labelled scratchpads the alignment-faking judge is scored on (judge validation):
one row per scratchpad with a yes / no label per criterion of data/af_criteria.yaml and the
final `alignment_faking` label (all criteria met). See judge_sets/README.md."""

from pathlib import Path

# The package files this module reads (see codedeps: editing one reruns the steps that run it).
DATA_FILES = ("data/af_reasoning_labels.jsonl",)

LABELLED = Path(__file__).parent / "data" / "af_reasoning_labels.jsonl"
