# alignlab: alignment fine-tuning experiments on open-weight models.
# `snakemake --profile profiles/default` runs every experiment in config.yaml;
# `--configfile other.yaml` replaces config.yaml entirely (it is not merged with it).
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
include: "rules/models.smk"
include: "rules/data.smk"
include: "rules/finetune.smk"
include: "rules/sample.smk"
include: "rules/judge.smk"
include: "rules/aggregate.smk"
include: "rules/report.smk"


rule all:
    input:
        experiment_targets(),
    default_target: True
