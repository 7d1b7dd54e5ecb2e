"""The fact_edit experiment kind's steps, one function per rule of rules/fact_edit.smk.
Measurements are in fact_edit.py.

facts: the candidate facts scored on the base, the ones it knows kept -> one job per penalty
setting: every (edited fact, seed) edit and its measures -> metrics per setting, the figure of
change by layer, and the summary with the sanity check (no penalty moves the weights more than
the largest penalty).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from alignlab import artifacts


def _data(facts_cfg: dict) -> dict[str, Any]:
    from alignlab.kinds.fact_edit import edit as fe

    data = fe.packaged()
    if facts_cfg.get("templates"):  # replaces the packaged templates
        data["templates"] = list(facts_cfg["templates"])
    return data


def filter_facts(*, model_dir: str, facts_cfg: dict, device: str, experiment: str, out: str) -> None:
    """Score every candidate fact under every template on the base; keep those answered
    correctly on at least facts_cfg['min_share'] of the templates."""
    from alignlab import timings
    from alignlab.kinds.fact_edit import edit as fe
    from alignlab.transformer import load_model

    data = _data(facts_cfg)
    tokenizer, model = load_model(model_dir, device)
    prompts = [fe.prompt(t, f) for f in data["facts"] for t in data["templates"]]
    with timings.timer("forward (score facts)", items=len(prompts)):
        got = fe.answers(model, tokenizer, prompts, data["options"])
    n_t = len(data["templates"])
    rows = []
    for i, f in enumerate(data["facts"]):
        correct = sum(a == f.answer for a in got[i * n_t:(i + 1) * n_t])
        rows.append({"experiment": experiment, "subject": f.subject, "answer": f.answer, "n_templates": n_t,
                     "n_correct": correct, "kept": correct >= facts_cfg["min_share"] * n_t})
    kept = sum(r["kept"] for r in rows)
    if kept < 2:
        raise ValueError(f"the base model knows only {kept} of {len(rows)} candidate facts (at least 2 are needed: "
                         "one to edit, one to check specificity); lower facts.min_share")
    artifacts.write_table(rows, out, "fe_facts", params=facts_cfg)


def spread(facts: list, n: int) -> list:
    """n of the facts, evenly spaced through the list (the packaged list is grouped by sport, so
    the edited facts come from different sports)."""
    if n >= len(facts):
        return list(facts)
    return [facts[i * len(facts) // n] for i in range(n)]


def run_setting(*, model_dir: str, facts_path: str, facts_cfg: dict, edit_cfg: dict, penalty: dict, setting: str,
                seed: int, experiment: str, device: str, runs_out: str, layers_out: str, overlap_out: str) -> None:
    """Every edit of one penalty setting: edit_cfg['n_facts'] kept facts (spread), each under
    edit_cfg['n_seeds'] seeds."""
    from alignlab.kinds.fact_edit import edit as fe
    from alignlab.seeds import derive_seed
    from alignlab.transformer import load_model

    data = _data(facts_cfg)
    kept_subjects = set(artifacts.read_table(facts_path, "fe_facts").filter(pl.col("kept"))["subject"].to_list())
    facts = [f for f in data["facts"] if f.subject in kept_subjects]
    edited = spread(facts, edit_cfg["n_facts"])
    seeds = [derive_seed(seed, experiment, "edit", i) for i in range(edit_cfg["n_seeds"])]
    tokenizer, model = load_model(model_dir, device)
    out = fe.study(model, tokenizer, facts, edited, data["templates"], data["options"],
                   n_train_templates=edit_cfg["n_train_templates"], layers=list(edit_cfg["layers"]),
                   penalties={setting: penalty}, seeds=seeds, steps=edit_cfg["steps"],
                   learning_rate=edit_cfg["learning_rate"], batch_size=edit_cfg["batch_size"],
                   top_k=edit_cfg["top_k"], bf16_autocast=edit_cfg["bf16_autocast"], progress=True)
    params = {"edit": edit_cfg, "penalty": penalty, "setting": setting}
    artifacts.write_table([{"experiment": experiment, **r} for r in out["runs"]], runs_out, "fe_runs", params=params)
    artifacts.write_table([{"experiment": experiment, **r} for r in out["layers"]], layers_out, "fe_layers",
                          params=params)
    artifacts.write_table([{"experiment": experiment, **r} for r in out["overlap"]], overlap_out, "fe_overlap",
                          params=params)


def metrics(runs: pl.DataFrame) -> pl.DataFrame:
    """Per penalty setting: means over its edits."""
    return (
        runs.group_by("experiment", "setting", "l1", "l2", maintain_order=True)
        .agg(
            pl.len().cast(pl.Int64).alias("n_edits"),
            pl.col("efficacy").mean(),
            pl.col("paraphrase_efficacy").mean(),
            pl.col("specificity").mean(),
            pl.col("weight_change").mean(),
        )
    )


def aggregate(*, runs: list[str], layers: list[str], overlaps: list[str], experiment: str, metrics_out: str,
              figure: str, summary_out: str) -> None:
    from alignlab.kinds.fact_edit import figures, summary

    r = pl.concat([artifacts.read_table(p, "fe_runs") for p in runs])
    lay = pl.concat([artifacts.read_table(p, "fe_layers") for p in layers])
    ov = pl.concat([artifacts.read_table(p, "fe_overlap") for p in overlaps])
    m = metrics(r).join(ov.select("setting", "top_k", "across_seeds", "across_facts"), on="setting", how="left")
    written = pl.from_arrow(artifacts.write_table(m, metrics_out, "fe_metrics"))
    figures.fact_edit_figure(lay, figure, title=f"{experiment}: where the edit landed")
    with artifacts.atomic_path(summary_out) as tmp:
        tmp.write_text(summary.fact_edit_markdown(experiment, written) + "\n")
