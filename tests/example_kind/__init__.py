"""A minimal experiment kind, `token_count`, added from outside the package (README, "Adding an
experiment kind"): it counts the tokens of a few texts with the experiment model's tokenizer.
Every part a kind has is here, a few lines each: the config (config.py), the tables
(SCHEMAS below), the step (steps.py), the rules (rules.smk) and the files it ends in (targets).
A config loads it with `kind_modules: [example_kind]` (the folder on PYTHONPATH)."""

from pathlib import Path

import pyarrow as pa

from alignlab import kinds

SCHEMAS = {"token_counts": pa.schema([("experiment", pa.string()), ("text", pa.string()), ("n_tokens", pa.int64())])}


def targets(name, exp):
    return [f"results/{name}/counts.parquet", f"results/{name}/summary.md"]


kinds.register(kinds.Kind(
    name="token_count", config="example_kind.config:TokenCount", targets=targets, folder=Path(__file__).parent,
    schemas=SCHEMAS, report_tables=(), rules=str(Path(__file__).parent / "rules.smk"),
))
