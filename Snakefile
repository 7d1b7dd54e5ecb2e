# alignlab: alignment fine-tuning experiments on open-weight models.
# `snakemake --profile profiles/default` runs every experiment in config.yaml;
# `--configfile other.yaml` replaces config.yaml entirely (it is not merged with it).
# On SLURM: `snakemake --profile profiles/slurm` (see README, "Running on a cluster").
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from alignlab import config as alignlab_config

if not workflow.overwrite_configfiles:
    configfile: "config.yaml"

try:
    CFG = alignlab_config.load(config)
except alignlab_config.ConfigError as err:
    sys.stderr.write(f"alignlab: the config is invalid; nothing was run.\n{err}\n")
    sys.exit(1)


include: "rules/common.smk"


wildcard_constraints:
    model="|".join(CFG.models),


# Sampling and judging run per chunk of the eval queries ("1-of-4", ...), then are gathered.
scattergather:
    shard=CFG.shards,


# Quick jobs that a cluster run does on the submitting node instead of queueing them.
localrules:
    all,
    report_table,
    transcript_examples,


include: "rules/models.smk"
include: "rules/report.smk"
# Each experiment kind's rules: rules/<kind>.smk, or the rule file a kind registers.
for kind in KINDS.values():

    include: kind.rules or f"rules/{kind.name}.smk"


rule all:
    input:
        experiment_targets(),
    default_target: True
