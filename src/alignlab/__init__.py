"""alignlab: alignment fine-tuning experiments on open-weight models, as a Snakemake DAG."""

__version__ = "0.1.0"
