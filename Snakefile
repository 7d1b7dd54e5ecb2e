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
    exp="|".join(EXPERIMENTS) or "NONE",
    model="|".join(CFG.models),
    arm="|".join(ARMS),
    corpus="|".join(DOCUMENT_SETS),
    sa="|".join(SA_EXPERIMENTS) or "NONE",
    sa_arm="|".join(a for a, spec in SA_ARMS.items() if spec.task),
    pl="|".join(PL_EXPERIMENTS) or "NONE",
    pl_arm="lock|strong_[0-9]+|weak_[0-9]+",
    md="|".join(MD_EXPERIMENTS) or "NONE",
    md_pair="|".join(MD_PAIRS) or "NONE",
    fe="|".join(FE_EXPERIMENTS) or "NONE",
    fe_setting="|".join(FE_SETTINGS) or "NONE",


# Sampling and judging run per chunk of the eval queries ("1-of-4", ...), then are gathered.
scattergather:
    shard=CFG.shards,


# Quick jobs that a cluster run does on the submitting node instead of queueing them.
localrules:
    all,
    gather_samples,
    gather_compliance,
    gather_af,
    report_table,


include: "rules/models.smk"
include: "rules/data.smk"
include: "rules/finetune.smk"
include: "rules/sample.smk"
include: "rules/judge.smk"
include: "rules/aggregate.smk"
include: "rules/report.smk"
include: "rules/self_awareness.smk"
include: "rules/password_lock.smk"
include: "rules/model_diff.smk"
include: "rules/fact_edit.smk"


rule all:
    input:
        experiment_targets(),
    default_target: True
