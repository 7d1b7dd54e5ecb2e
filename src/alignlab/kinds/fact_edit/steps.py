"""The fact_edit experiment kind's steps, one function per rule of rules/fact_edit.smk.
Measurements are in fact_edit.py.

facts: the candidate facts scored on the base, the ones it knows kept, some of those held out ->
one job per penalty setting: every (edited fact, seed) edit, per seed the null edit, and their
measures, and every probe asked -> metrics per setting, the figure of the fact change by layer,
and the summary with its four controls (penalty per norm, specificity on held-out facts and
unrelated text, the edited athlete's second fact, localization beyond chance once the null edit
is taken away); the probes as Inspect logs.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from alignlab import artifacts


def _data(facts_cfg: dict) -> dict[str, Any]:
    from alignlab.kinds.fact_edit import edit as fe

    data = fe.packaged()
    for key in ("templates", "second_templates"):
        if facts_cfg.get(key):  # replaces the packaged templates
            data[key] = list(facts_cfg[key])
    return data


def held_out_subjects(kept: list[str], n: int, seed: int, experiment: str) -> set[str]:
    """The n kept subjects never trained on, chosen by seed (an order by derived seed, not by
    position in the list, so they come from every sport)."""
    from alignlab.seeds import derive_seed

    return set(sorted(kept, key=lambda s: derive_seed(seed, experiment, "held_out", s))[:n])


def filter_facts(*, model_dir: str, facts_cfg: dict, device: str, seed: int, experiment: str, out: str) -> None:
    """Score every candidate fact under every template on the base; keep those answered
    correctly on at least facts_cfg['min_share'] of the templates, and hold out
    facts_cfg['n_held_out'] of them (never trained on). Also per fact its fame (edit.fame: the
    mean probability of the right sport among the options) and whether the base knows the
    athlete's second fact (the country: correct on at least min_share of its templates)."""
    from alignlab import timings
    from alignlab.kinds.fact_edit import edit as fe
    from alignlab.transformer import load_model

    data = _data(facts_cfg)
    tokenizer, model = load_model(model_dir, device)
    prompts = [fe.prompt(t, f) for f in data["facts"] for t in data["templates"]]
    second = [fe.prompt(t, f) for f in data["second"] for t in data["second_templates"]]
    with timings.timer("forward (score facts)", items=len(prompts) + len(second)):
        lp = fe.option_logprobs(model, tokenizer, prompts, data["options"])
        got_second = fe.answers(model, tokenizer, second, data["second_options"])
    n_t, n_s = len(data["templates"]), len(data["second_templates"])
    rows = []
    for i, (f, f2) in enumerate(zip(data["facts"], data["second"])):
        mine = lp[i * n_t:(i + 1) * n_t]
        right = data["options"].index(f.answer)
        correct = int((mine.argmax(-1) == right).sum())
        correct2 = sum(a == f2.answer for a in got_second[i * n_s:(i + 1) * n_s])
        rows.append({"experiment": experiment, "subject": f.subject, "answer": f.answer, "n_templates": n_t,
                     "n_correct": correct, "kept": correct >= facts_cfg["min_share"] * n_t,
                     "fame": fe.fame(mine, right), "second_answer": f2.answer, "n_second_templates": n_s,
                     "n_second_correct": correct2, "second_known": correct2 >= facts_cfg["min_share"] * n_s})
    kept = [r["subject"] for r in rows if r["kept"]]
    n_held = facts_cfg["n_held_out"]
    if len(kept) < n_held + 2:
        raise ValueError(f"the base model knows only {len(kept)} of {len(rows)} candidate facts; with "
                         f"facts.n_held_out {n_held} at least {n_held + 2} are needed (held out, one to edit, one "
                         "more to train on): lower facts.min_share or facts.n_held_out")
    held = held_out_subjects(kept, n_held, seed, experiment)
    for r in rows:
        r["held_out"] = r["subject"] in held
    artifacts.write_table(rows, out, "fe_facts", params=facts_cfg)


def spread(facts: list, n: int) -> list:
    """n of the facts, evenly spaced through the list (the packaged list is grouped by sport, so
    the edited facts come from different sports)."""
    if n >= len(facts):
        return list(facts)
    return [facts[i * len(facts) // n] for i in range(n)]


def run_setting(*, model_dir: str, facts_path: str, facts_cfg: dict, edit_cfg: dict, penalty: dict, setting: str,
                seed: int, experiment: str, device: str, runs_out: str, layers_out: str, overlap_out: str,
                probes_out: str) -> None:
    """Every edit of one penalty setting: edit_cfg['n_facts'] kept, trained facts (spread), each
    under edit_cfg['n_seeds'] seeds, and per seed the null edit; the held-out facts and the
    packaged unrelated passages are scored before and after, and so is each edited athlete's second
    fact where the base knows it. edit_cfg['copies'] sets how often each trained fact is in the
    training set (edit.copies, from its fame)."""
    from alignlab.kinds.fact_edit import edit as fe
    from alignlab.seeds import derive_seed
    from alignlab.transformer import load_model

    data = _data(facts_cfg)
    table = artifacts.read_table(facts_path, "fe_facts").filter(pl.col("kept"))
    held_subjects = set(table.filter(pl.col("held_out"))["subject"].to_list())
    trained_subjects = set(table.filter(~pl.col("held_out"))["subject"].to_list())
    facts = [f for f in data["facts"] if f.subject in trained_subjects]
    held_out = [f for f in data["facts"] if f.subject in held_subjects]
    edited = spread(facts, edit_cfg["n_facts"])
    copies_cfg = edit_cfg.get("copies") or {"by": "none", "max": 1}
    n_copies = {r["subject"]: fe.copies(r["fame"], copies_cfg["by"], copies_cfg["max"])
                for r in table.iter_rows(named=True)}
    second_known = set(table.filter(pl.col("second_known"))["subject"].to_list())
    second = [f for f in data["second"] if f.subject in second_known]
    seeds = [derive_seed(seed, experiment, "edit", i) for i in range(edit_cfg["n_seeds"])]
    tokenizer, model = load_model(model_dir, device)
    out = fe.study(model, tokenizer, facts, edited, data["templates"], data["options"],
                   n_train_templates=edit_cfg["n_train_templates"], layers=list(edit_cfg["layers"]),
                   penalties={setting: penalty}, seeds=seeds, steps=edit_cfg["steps"],
                   learning_rate=edit_cfg["learning_rate"], batch_size=edit_cfg["batch_size"],
                   top_k=edit_cfg["top_k"], held_out=held_out, passages=fe.packaged_passages(),
                   stop_when_correct=edit_cfg["stop_when_correct"], bf16_autocast=edit_cfg["bf16_autocast"],
                   n_copies=n_copies, second=second, second_templates=data["second_templates"],
                   second_options=data["second_options"], progress=True)
    params = {"edit": edit_cfg, "penalty": penalty, "setting": setting}
    artifacts.write_table([{"experiment": experiment, **r} for r in out["runs"]], runs_out, "fe_runs", params=params)
    artifacts.write_table([{"experiment": experiment, **r} for r in out["layers"]], layers_out, "fe_layers",
                          params=params)
    artifacts.write_table([{"experiment": experiment, **r} for r in out["overlap"]], overlap_out, "fe_overlap",
                          params=params)
    artifacts.write_table([{"experiment": experiment, **r} for r in out["probes"]], probes_out, "fe_probes",
                          params=params)


def write_inspect(*, probes: list[str], facts_cfg: dict, model_name: str, experiment: str, out_dir: str) -> None:
    """One Inspect eval log per penalty setting and edit kind (`<setting>.edit`: every probe after
    each edit; `<setting>.null`: the held-out and second-fact probes after the null edit compared
    with it), and the index of the logs, in `out_dir`."""
    from alignlab import inspect_logs
    from alignlab.kinds.fact_edit import transcripts

    data = _data(facts_cfg)
    logs = []
    for path in probes:
        table = artifacts.read_table(path, "fe_probes")
        for (setting, kind), rows in table.group_by("setting", "edit", maintain_order=True):
            name = f"{setting}.{kind}"
            logs.append(inspect_logs.Log(
                name=name, experiment=experiment, arm=name, replicate=0, task=f"{experiment}/{name}",
                model=f"{model_name} ({'edited' if kind == 'edit' else 'null edit'}, penalty {setting})",
                transcripts=transcripts.transcripts(rows, data), metadata={"setting": setting, "edit": kind},
                group_by="probe", outcome="as_expected",
            ))
    inspect_logs.write_logs(logs, out_dir, params={"facts": facts_cfg})


def intervals(runs: pl.DataFrame, n_resamples: int, confidence: float, seed: int) -> dict[str, float]:
    """Per measure of schemas.INTERVALS, over one setting's edits: the lo and hi of a percentile
    bootstrap of the mean that resamples the edited facts and, within them, the seeds
    (stats.hierarchical_bootstrap on a [seeds, facts] matrix). A fact whose value is nan under
    some seed (e.g. the same-subject measure where the base does not know the second fact) is left
    out; fewer than 2 facts leave no interval (nan)."""
    import numpy as np

    from alignlab.kinds.fact_edit.schemas import INTERVALS
    from alignlab.stats import hierarchical_bootstrap

    out = {}
    for name, column in INTERVALS.items():
        wide = (runs.select("seed", "subject", pl.col(column).cast(pl.Float64).fill_null(float("nan")))
                .pivot("subject", index="seed", values=column).sort("seed").drop("seed"))
        matrix = wide.to_numpy() if wide.width else np.zeros((0, 0))
        matrix = matrix[:, ~np.isnan(matrix).any(axis=0)] if matrix.size else matrix
        if matrix.shape[1] < 2:
            out[f"{name}_lo"] = out[f"{name}_hi"] = float("nan")
            continue
        result = hierarchical_bootstrap([matrix], [1.0], n_resamples, seed, confidence)
        out[f"{name}_lo"], out[f"{name}_hi"] = result["lo"], result["hi"]
    return out


def metrics(runs: pl.DataFrame, controls: dict, aggregate: dict | None = None, seed: int = 0) -> pl.DataFrame:
    """Per penalty setting: means over its edits, the share of edits that pass the specificity
    control (edit.is_specific with the `controls` thresholds), the number of edits whose athlete's
    second fact the base knows and the share of those that keep it (controls'
    min_same_subject_specificity), and bootstrap intervals over edits (`intervals`; `aggregate`:
    n_resamples, confidence; each setting's resamples seeded by derive_seed(seed, experiment,
    "bootstrap", setting))."""
    from alignlab.kinds.fact_edit import edit as fe
    from alignlab.seeds import derive_seed

    aggregate = aggregate or {"n_resamples": 10000, "confidence": 0.95}
    spec = {k: controls[k] for k in ("min_held_out_specificity", "max_text_loss_increase")}
    specific = [fe.is_specific(h, t, **spec) for h, t in zip(runs["held_out_specificity"], runs["text_loss_change"])]
    min_same = controls.get("min_same_subject_specificity", 0.9)
    same = pl.col("same_subject_specificity").cast(pl.Float64).fill_nan(None)
    runs = runs.with_columns(pl.Series("specific", specific, dtype=pl.Float64),
                             (same >= min_same).cast(pl.Float64).alias("same_kept"))
    means = ["steps_taken", "reached", "efficacy", "paraphrase_efficacy", "specificity", "held_out_correct_before",
             "held_out_correct_after", "held_out_specificity", "text_loss_change", "specific", "weight_change",
             "moved_weights", "moved_neurons", "null_weight_change", "fact_change", "null_held_out_specificity",
             "null_text_loss_change", "fact_top_share"]
    skip_nan = ["same_subject_specificity", "null_same_subject_specificity"]  # nan: the base does not know it
    m = (
        runs.group_by("experiment", "setting", "l1", "l2", maintain_order=True)
        .agg(pl.len().cast(pl.Int64).alias("n_edits"), pl.col("steps_taken").max().alias("max_steps_taken"),
             same.is_not_null().sum().cast(pl.Int64).alias("n_same_subject"),
             pl.col("same_kept").mean().alias("share_same_subject_kept"),
             *[pl.col(c).cast(pl.Float64).mean() for c in means],
             *[pl.col(c).cast(pl.Float64).fill_nan(None).mean() for c in skip_nan],
             pl.col("train_copies").cast(pl.Float64).mean().alias("mean_train_copies"))
        .rename({"reached": "share_reached", "specific": "share_specific", "steps_taken": "mean_steps_taken"})
    )
    rows = []
    for row in m.iter_rows(named=True):
        mine = runs.filter(pl.col("setting") == row["setting"])
        b_seed = derive_seed(seed, row["experiment"], "bootstrap", row["setting"])
        rows.append({**row, **intervals(mine, aggregate["n_resamples"], aggregate["confidence"], b_seed)})
    return pl.DataFrame(rows, infer_schema_length=None) if rows else m


def aggregate(*, runs: list[str], layers: list[str], overlaps: list[str], controls: dict, experiment: str,
              metrics_out: str, figure: str, summary_out: str, aggregate_cfg: dict | None = None, seed: int = 0) -> None:
    from alignlab.kinds.fact_edit import figures, summary

    r = pl.concat([artifacts.read_table(p, "fe_runs") for p in runs])
    lay = pl.concat([artifacts.read_table(p, "fe_layers") for p in layers])
    ov = pl.concat([artifacts.read_table(p, "fe_overlap") for p in overlaps])
    m = metrics(r, controls, aggregate_cfg, seed).join(ov.drop("experiment"), on="setting", how="left")
    written = pl.from_arrow(artifacts.write_table(m, metrics_out, "fe_metrics",
                                                  params={"controls": controls, "aggregate": aggregate_cfg, "seed": seed}))
    figures.fact_edit_figure(lay, figure, title=f"{experiment}: where the edit landed (fact change: edit minus null edit)")
    with artifacts.atomic_path(summary_out) as tmp:
        tmp.write_text(summary.fact_edit_markdown(experiment, written, controls) + "\n")
