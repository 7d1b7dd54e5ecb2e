import _src  # noqa: F401, I001 - alignlab from ../src (see _src.py)
from alignlab import config, models, steps

# What the config's experiments ask of this model (its layers, context, modules, chat
# template), checked once the folder exists; not a rule param, so that the folder (and the
# between-workflow cache entry) does not change when only an experiment's setting does.
needs = config.model_needs(config.load(snakemake.config)).get(snakemake.wildcards.model, [])
steps.run(
    snakemake, models.build, name=snakemake.wildcards.model, spec=snakemake.params.spec,
    folder=snakemake.output.folder, index=snakemake.output.index, needs=needs,
)
