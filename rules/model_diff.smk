# The model_diff experiment kind (src/alignlab/kinds/model_diff/; measurements in diff.py): the
# text set -> each adapter pair merged into the base -> an SAE trained on the base's activations
# at one layer -> per pair: weight change, residual-stream cosine per layer, the SAE on base and
# fine-tune, a per-layer figure -> the pairs ranked, and a summary.
# Wildcards: {md} an experiment of this kind, {md_pair} one of its pairs. A pair's adapter is
# usually another experiment's output (results/af/adapters/sdf): Snakemake builds it first.
from alignlab.kinds.model_diff import pairs as md_pairs

MD = "kinds.model_diff.steps"
MD_EXPERIMENTS = experiments_of("model_diff")


wildcard_constraints:
    md=one_of(MD_EXPERIMENTS),
    md_pair=one_of(sorted({p for e in MD_EXPERIMENTS.values() for p in e.all_pairs()})),
    md_ref=one_of(sorted({r for e in MD_EXPERIMENTS.values() for r in e.references})),


md_exp = lambda w: MD_EXPERIMENTS[w.md]


rule md_texts:
    input:
        unpack(lambda w: md_pairs.texts_inputs(md_exp(w))),
    output:
        out=f"{RESULTS}/{{md}}/texts.parquet",
    params:
        step=f"{MD}.make_texts",
        texts=lambda w: as_dict(md_exp(w).texts),
        experiment=lambda w: w.md,
    log:
        "logs/{md}/texts.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule md_merge:
    input:
        model_dir=lambda w: model_folder(md_exp(w).model),
        adapter_dir=lambda w: md_exp(w).pairs[w.md_pair].adapter,
        code=code(f"{MD}.merge"),
    output:
        out_dir=directory(f"{RESULTS}/{{md}}/merged/{{md_pair}}"),
    params:
        step=f"{MD}.merge",
    log:
        "logs/{md}/merge_{md_pair}.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule md_reference:
    input:
        model_dir=lambda w: model_folder(md_exp(w).model),
        tuned_dir=lambda w: md_pairs.tuned_folder(w.md, md_exp(w), md_exp(w).references[w.md_ref].like),
        code=code(f"{MD}.make_reference"),
    output:
        out_dir=directory(f"{RESULTS}/{{md}}/references/{{md_ref}}"),
    params:
        step=f"{MD}.make_reference",
        seed=CFG.seed,
        experiment=lambda w: w.md,
        reference=lambda w: w.md_ref,
    log:
        "logs/{md}/reference_{md_ref}.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule md_sae:
    input:
        texts_path=f"{RESULTS}/{{md}}/texts.parquet",
        model_dir=lambda w: model_folder(md_exp(w).model),
        code=code(f"{MD}.train_sae"),
    output:
        out=f"{RESULTS}/{{md}}/sae/sae.pt",
        log_path=f"{RESULTS}/{{md}}/sae/train_log.parquet",
    params:
        step=f"{MD}.train_sae",
        sae_cfg=lambda w: as_dict(md_exp(w).sae),
        texts_cfg=lambda w: as_dict(md_exp(w).texts),
        batch_size=lambda w: md_exp(w).batch_size,
        device=CFG.engine.device,
        seed=CFG.seed,
        experiment=lambda w: w.md,
    log:
        "logs/{md}/sae.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule md_compare:
    input:
        texts_path=f"{RESULTS}/{{md}}/texts.parquet",
        base_dir=lambda w: model_folder(md_exp(w).model),
        tuned_dir=lambda w: md_pairs.tuned_folder(w.md, md_exp(w), w.md_pair),
        sae_path=f"{RESULTS}/{{md}}/sae/sae.pt",
        code=code(f"{MD}.compare"),
    output:
        weights_out=f"{RESULTS}/{{md}}/pairs/{{md_pair}}/weights.parquet",
        activations_out=f"{RESULTS}/{{md}}/pairs/{{md_pair}}/activations.parquet",
        text_cosines_out=f"{RESULTS}/{{md}}/pairs/{{md_pair}}/text_cosines.parquet",
        sae_out=f"{RESULTS}/{{md}}/pairs/{{md_pair}}/sae.parquet",
        features_out=f"{RESULTS}/{{md}}/pairs/{{md_pair}}/features.parquet",
        figure=figure_report("model_diff", "md", "pairs/{md_pair}/layers.png", "layers.rst", "{md_pair}: per layer"),
    params:
        step=f"{MD}.compare",
        texts_cfg=lambda w: as_dict(md_exp(w).texts),
        batch_size=lambda w: md_exp(w).batch_size,
        device=CFG.engine.device,
        experiment=lambda w: w.md,
        pair=lambda w: w.md_pair,
        seed=CFG.seed,
        bootstrap=lambda w: as_dict(md_exp(w).bootstrap),
    log:
        "logs/{md}/compare_{md_pair}.log",
    threads: HEAVY_THREADS
    resources:
        **model_job(TRAIN_GPUS),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT


rule md_aggregate:
    input:
        **{t: (lambda w, t=t: [md_pairs.table(w.md, p, t) for p in md_exp(w).all_pairs()]) for t in md_pairs.TABLES},
        sae_log=f"{RESULTS}/{{md}}/sae/train_log.parquet",
        model_info=lambda w: f"{RESULTS}/models/{md_exp(w).model}/model.parquet",
        code=code(f"{MD}.aggregate"),
    output:
        metrics_out=metrics_report("md"),
        replication_out=f"{RESULTS}/{{md}}/replication.parquet",
        summary_out=summary_report("md"),
    params:
        step=f"{MD}.aggregate",
        sources=lambda w: md_pairs.sources(md_exp(w)),
        base=lambda w: md_exp(w).model,
        more_steps=lambda w: md_exp(w).more_steps,
        references=lambda w: {r: as_dict(s) for r, s in md_exp(w).references.items()},
        bootstrap=lambda w: as_dict(md_exp(w).bootstrap),
        seed=CFG.seed,
        experiment=lambda w: w.md,
    log:
        "logs/{md}/aggregate.log",
    resources:
        **small_job(),
    conda:
        CONDA_ENV
    script:
        STEP_SCRIPT
