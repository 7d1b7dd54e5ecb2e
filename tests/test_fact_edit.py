"""fact_edit's library on a tiny random Llama with a character tokenizer (seconds): only the
configured MLP layers move; a penalty of 0 moves the weights more than a large one; the edit
takes on the edited fact; neuron change and overlap measures behave. The controls, each shown
failing on an input built to fail it and passing where it should: specificity on held-out facts
and unrelated text, the null edit's localization, the proximal L1 that leaves weights exactly in
place, training to a criterion, the penalty check per norm."""

from __future__ import annotations

import copy

import polars as pl
import pytest
import torch
from test_model_diff_steps import char_tokenizer, tiny_model

from alignlab.kinds.fact_edit import edit as fe
from alignlab.kinds.model_diff import diff as md

FACTS = [fe.Fact("Ann", "golf"), fe.Fact("Bob", "chess"), fe.Fact("Cy", "polo"), fe.Fact("Di", "golf")]
TEMPLATES = ["{name} plays", "the game of {name} is"]
OPTIONS = ["golf", "chess", "polo"]
HELD_OUT = [fe.Fact("Ed", "polo"), fe.Fact("Flo", "chess"), fe.Fact("Gus", "golf")]
PASSAGES = ["the rain falls on the hills and the river runs to the sea.", "bake the bread in a hot oven."]
CONTROLS = {"min_held_out_specificity": 0.9, "max_text_loss_increase": 0.05}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a tiny model several threads only wait for each other (10x slower
    when the 2 cores are shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


@pytest.fixture(scope="module")
def base(tok):
    # A random model's lm_head (std 0.02) caps its logits near uniform, and the edit never
    # trains it: scaled up, the frozen head can express a confident answer, as a real one can.
    model = tiny_model(len(tok))
    with torch.no_grad():
        model.lm_head.weight.mul_(50)
    return model


@pytest.fixture(scope="module")
def knowing(base, tok):
    """The base after learning every fact, the held-out ones included (both layers' MLPs): a
    model that knows the facts before any edit, as a real one does."""
    model = copy.deepcopy(base)
    ex = fe.edit_examples(FACTS + HELD_OUT, TEMPLATES, fe.Fact("", ""), "")
    fe.edit(model, tok, ex, layers=[0, 1], steps=120, learning_rate=1e-2, seed=11)
    assert fe.known_facts(model, tok, FACTS + HELD_OUT, TEMPLATES, OPTIONS) == FACTS + HELD_OUT
    return model


def test_packaged_data_is_consistent():
    data = fe.packaged()
    assert len(data["facts"]) >= 20 and len(data["templates"]) >= 3
    assert all(f.answer in data["options"] for f in data["facts"])
    assert all("{name}" in t for t in data["templates"])


def test_option_logprobs_shape_and_answers(base, tok):
    lp = fe.option_logprobs(base, tok, ["Ann plays", "Bob plays"], OPTIONS, batch_size=4)
    assert lp.shape == (2, 3) and torch.isfinite(lp).all() and (lp < 0).all()
    assert fe.answers(base, tok, ["Ann plays"], OPTIONS)[0] in OPTIONS


def test_one_token_options_score_as_their_sequences(base, tok):
    # The fast path (one forward per prompt) against the general one (one per prompt and option),
    # on prompts of different lengths so that padding is exercised.
    prompts = ["Ann plays", "the game of Bobby is", "Cy"]
    option_ids = [[tok.convert_tokens_to_ids(c)] for c in "gcp"]
    pad = tok.pad_token_id
    fast = fe._next_token_logprobs(base, tok, prompts, 2, pad)[:, [i[0] for i in option_ids]]
    slow = fe._continuation_logprobs(base, tok, prompts, option_ids, 2, pad)
    assert torch.allclose(fast, slow, atol=1e-5)


def _edited(base, tok, l1=0.0, l2=0.0, seed=0, steps=60):
    model = copy.deepcopy(base)
    ex = fe.edit_examples(FACTS, TEMPLATES, FACTS[0], "chess")
    log = fe.edit(model, tok, ex, layers=[1], steps=steps, learning_rate=1e-2, l1=l1, l2=l2, seed=seed)
    return model, log


def test_only_the_configured_mlp_layers_move(base, tok):
    model, log = _edited(base, tok)
    rows = md.weight_stats(base.state_dict(), model.state_dict())
    moved = {r["name"] for r in rows if r["delta_norm"] > 0}
    assert moved and all(n.startswith("model.layers.1.mlp.") for n in moved)
    assert all(p.requires_grad for p in model.parameters())  # restored afterwards
    # the tiny model learns the training set, the edited fact included
    r = fe.efficacy_specificity(model, tok, FACTS, TEMPLATES, OPTIONS, FACTS[0], "chess")
    assert r["efficacy"] == 1.0 and r["specificity"] == 1.0, (r, log)


def test_a_large_penalty_moves_less(base, tok):
    free, _ = _edited(base, tok)
    held, _ = _edited(base, tok, l2=10.0)
    l1_held, _ = _edited(base, tok, l1=1.0)
    change = {}
    for name, m in {"free": free, "l2": held, "l1": l1_held}.items():
        change[name] = md.total_relative_change(md.weight_stats(base.state_dict(), m.state_dict()))
    assert change["free"] > change["l2"] > 0
    assert change["free"] > change["l1"]


def test_neuron_change_and_overlap(base, tok):
    a, _ = _edited(base, tok, seed=0)
    b, _ = _edited(base, tok, seed=1)
    ca = fe.neuron_change(base.state_dict(), a.state_dict())
    assert set(ca) == {0, 1} and float(ca[0].abs().sum()) == 0.0 and float(ca[1].sum()) > 0
    assert ca[1].shape == (64,)
    top_a = fe.top_neurons(ca, 8)
    assert len(top_a) == 8 and all(layer == 1 for layer, _ in top_a)
    top_b = fe.top_neurons(fe.neuron_change(base.state_dict(), b.state_dict()), 8)
    assert fe.mean_jaccard([top_a, top_a]) == 1.0
    assert 0.0 <= fe.mean_jaccard([top_a, top_b]) <= 1.0
    assert fe.mean_jaccard([{1}, {2}]) == 0.0
    assert fe.mean_jaccard([set(), set()]) != fe.mean_jaccard([set(), set()])  # nan: nothing moved, nothing to compare


def test_study_tables(knowing, tok):
    templates = TEMPLATES + ["{name} is good at"]
    out = fe.study(copy.deepcopy(knowing), tok, FACTS, FACTS[:2], templates, OPTIONS, n_train_templates=2, layers=[1],
                   penalties={"none": {}, "l2": {"l2": 10.0}}, seeds=[0, 1], steps=20, learning_rate=1e-2, top_k=8,
                   held_out=HELD_OUT, passages=PASSAGES)
    runs = out["runs"]
    assert len(runs) == 2 * 2 * 2  # settings x facts x seeds
    assert all(r["new_answer"] != r["answer"] for r in runs)
    assert all(0 <= r["steps_taken"] <= 20 and r["reached"] == (r["efficacy"] == 1.0) for r in runs)
    assert all(0 <= r["held_out_specificity"] <= 1 and r["text_loss_before"] > 0 for r in runs)
    # the edit differs from the null edit at the same step count (not before any step)
    assert all(r["fact_change"] > 0 for r in runs if r["steps_taken"] > 0)
    assert all(r["fact_change"] == 0 for r in runs if r["steps_taken"] == 0)
    assert all(0 < o["chance_overlap"] < 8 / 64 and o["n_neurons"] == 64 for o in out["overlap"])
    # the same fact edited under two seeds changes the same neurons more than chance would
    assert all(o["across_seeds"] > o["chance_overlap"] for o in out["overlap"])
    change = {s: sum(r["weight_change"] for r in runs if r["setting"] == s) for s in ("none", "l2")}
    assert change["none"] > change["l2"]
    assert {r["layer"] for r in out["layers"]} == {1}
    assert [o["setting"] for o in out["overlap"]] == ["none", "l2"]
    assert all(0 <= o["across_seeds"] <= 1 and 0 <= o["across_facts"] <= 1 for o in out["overlap"])
    # the probes are the answers the measures were computed from
    probes = pl.DataFrame(out["probes"])
    for r in runs:
        mine = probes.filter((pl.col("setting") == r["setting"]) & (pl.col("subject") == r["subject"])
                             & (pl.col("seed") == r["seed"]))
        hit = lambda edit, probe: mine.filter((pl.col("edit") == edit) & (pl.col("probe") == probe)).select(  # noqa: E731
            (pl.col("answer") == pl.col("expected")).mean()).item()
        assert hit("edit", "trained") == r["efficacy"] and hit("edit", "paraphrase") == r["paraphrase_efficacy"]
        assert hit("edit", "other_fact") == r["specificity"]
        assert hit("edit", "held_out") == r["held_out_specificity"]
        assert hit("null", "held_out") == r["null_held_out_specificity"]
        assert mine.filter(pl.col("edit") == "null")["probe"].unique().to_list() == ["held_out"]  # no second facts here
    assert probes.filter(pl.col("probe") == "trained")["expected"].to_list() == [
        r["new_answer"] for r in runs for _ in range(2)]
    assert probes.filter(pl.col("probe") == "held_out")["before"].is_not_null().all()
    assert probes.filter(pl.col("probe") == "trained")["before"].is_null().all()


def test_steps_on_a_tiny_model_folder(base, tok, tmp_path):
    """fact_edit_steps end to end on a tiny folder (min_share 0: a random model knows no fact)."""
    from alignlab import artifacts
    from alignlab.kinds.fact_edit import steps

    folder = tmp_path / "base"
    base.save_pretrained(folder)
    tok.save_pretrained(folder)
    # short templates keep it quick: every option is several characters, so scored a sequence each
    facts_cfg = {"min_share": 0.0, "templates": ["{name} plays", "{name} is good at", "{name}:"], "n_held_out": 3,
                 "second_templates": ["{name} is from"]}
    steps.filter_facts(model_dir=str(folder), facts_cfg=facts_cfg, device="cpu", seed=0, experiment="fe",
                       out=str(tmp_path / "facts.parquet"))
    facts = artifacts.read_table(tmp_path / "facts.parquet", "fe_facts")
    assert facts.height == len(fe.packaged()["facts"]) and facts["kept"].all() and facts["held_out"].sum() == 3
    assert facts["second_known"].all() and facts["n_second_templates"].to_list() == [1] * facts.height
    assert all(0 < x < 1 for x in facts["fame"].to_list()) and facts["fame"].n_unique() > 1
    with pytest.raises(ValueError, match="knows only"):
        steps.filter_facts(model_dir=str(folder), facts_cfg={**facts_cfg, "min_share": 1.1}, device="cpu", seed=0,
                           experiment="fe", out=str(tmp_path / "none.parquet"))
    with pytest.raises(ValueError, match="facts.n_held_out 32 at least 34 are needed"):
        steps.filter_facts(model_dir=str(folder), facts_cfg={**facts_cfg, "n_held_out": 32}, device="cpu", seed=0,
                           experiment="fe", out=str(tmp_path / "none.parquet"))
    edit_cfg = {"n_facts": 2, "n_seeds": 2, "n_train_templates": 2, "layers": [1], "steps": 5, "bf16_autocast": False,
                "learning_rate": 1e-2, "batch_size": 16, "top_k": 8, "stop_when_correct": True,
                "copies": {"by": "fame", "max": 40}}
    outs = {}
    for setting, penalty in {"none": {}, "l2": {"l2": 10.0}}.items():
        outs[setting] = {k: str(tmp_path / setting / f"{k}.parquet") for k in ("runs", "layers", "overlap", "probes")}
        steps.run_setting(model_dir=str(folder), facts_path=str(tmp_path / "facts.parquet"), facts_cfg=facts_cfg,
                          edit_cfg=edit_cfg, penalty=penalty, setting=setting, seed=0, experiment="fe", device="cpu",
                          runs_out=outs[setting]["runs"], layers_out=outs[setting]["layers"],
                          overlap_out=outs[setting]["overlap"], probes_out=outs[setting]["probes"])
    runs = artifacts.read_table(outs["none"]["runs"], "fe_runs")
    held = set(facts.filter(facts["held_out"])["subject"].to_list())
    assert not held & set(runs["subject"].to_list())  # a held-out fact is never edited
    fame = dict(zip(facts["subject"].to_list(), facts["fame"].to_list()))
    assert runs["train_copies"].to_list() == [fe.copies(fame[s], "fame", 40) for s in runs["subject"].to_list()]
    assert runs["second_known"].all() and runs["same_subject_specificity"].is_between(0, 1).all()
    steps.aggregate(runs=[o["runs"] for o in outs.values()], layers=[o["layers"] for o in outs.values()],
                    overlaps=[o["overlap"] for o in outs.values()], experiment="fe",
                    controls={"min_held_out_specificity": 0.0, "max_text_loss_increase": 100.0,
                              "min_same_subject_specificity": 0.0}, aggregate_cfg={"n_resamples": 200, "confidence": 0.95},
                    metrics_out=str(tmp_path / "metrics.parquet"), figure=str(tmp_path / "layers.png"),
                    summary_out=str(tmp_path / "summary.md"))
    m = artifacts.read_table(tmp_path / "metrics.parquet", "fe_metrics")
    assert m["setting"].to_list() == ["none", "l2"] and m["n_edits"].to_list() == [4, 4]
    # the probes as Inspect logs: one per setting and edit kind, every probe a sample
    from alignlab import inspect_logs

    steps.write_inspect(probes=[o["probes"] for o in outs.values()], facts_cfg=facts_cfg, model_name="tiny",
                        experiment="fe", out_dir=str(tmp_path / "inspect"))
    index = artifacts.read_table(tmp_path / "inspect/index.parquet", "inspect_logs")
    assert index["log"].to_list() == ["none.edit.eval", "none.null.eval", "l2.edit.eval", "l2.null.eval"]
    probes = artifacts.read_table(outs["l2"]["probes"], "fe_probes")
    samples = inspect_logs.read_samples(str(tmp_path / "inspect/l2.edit.eval"))
    edit_rows = probes.filter(pl.col("edit") == "edit")
    assert len(samples) == edit_rows.height and {s.metadata["probe"] for s in samples} == {
        "trained", "paraphrase", "other_fact", "held_out", "same_subject"}
    row = edit_rows.row(0, named=True)
    first = next(s for s in samples if s.metadata["subject"] == row["subject"] and s.metadata["seed"] == row["seed"]
                 and s.metadata["probe"] == row["probe"] and s.metadata["fact"] == row["fact"]
                 and s.metadata["template"] == row["template"])
    assert first.messages[0].text == row["prompt"] and first.output.completion == row["answer"]
    assert first.scores["as_expected"].value == (row["answer"] == row["expected"])
    assert f"wanted '{row['expected']}'" in first.scores["as_expected"].explanation
    # a prompt that is not the one the fact and template give now is refused, not logged
    bad = probes.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("Ann plays")).otherwise(pl.col("prompt"))
                              .alias("prompt"))
    artifacts.write_table(bad, tmp_path / "bad.parquet", "fe_probes")
    with pytest.raises(ValueError, match=r"probe row .*\.t\d: the prompt built now .* is not the one the model was asked"):
        steps.write_inspect(probes=[str(tmp_path / "bad.parquet")], facts_cfg=facts_cfg, model_name="tiny",
                            experiment="fe", out_dir=str(tmp_path / "bad_inspect"))
    assert not (tmp_path / "bad_inspect").exists()
    assert (tmp_path / "layers.png").stat().st_size > 0
    text = (tmp_path / "summary.md").read_text()
    assert "**Penalty check PASSED** (L2 PASSED)" in text and "**Specificity check PASSED**" in text
    assert "**Same-subject check PASSED**: every edit whose athlete's country the base knows (8 of 8 edits)" in text
    for r in m.iter_rows(named=True):  # two facts: an interval around every per-edit mean
        assert r["efficacy_lo"] <= r["efficacy"] <= r["efficacy_hi"]
        assert r["weight_change_lo"] <= r["weight_change"] <= r["weight_change_hi"]


def test_a_layer_the_model_does_not_have_is_named(base):
    with pytest.raises(ValueError, match=r"edit.layers: no MLP parameters in layer\(s\) \[5\] \(the model has 2"):
        fe.mlp_parameters(base, [1, 5])
    assert all(".layers.1.mlp." in n for n in fe.mlp_parameters(base, [1]))


# ---- the controls --------------------------------------------------------------------------

def _side_effects(base, model, tok):
    before = fe.answered(base, tok, HELD_OUT, TEMPLATES, OPTIONS)
    after = fe.answered(model, tok, HELD_OUT, TEMPLATES, OPTIONS)
    spec = fe.held_out_specificity(before, after)
    loss_change = fe.text_loss(model, tok, PASSAGES) - fe.text_loss(base, tok, PASSAGES)
    return spec, loss_change, fe.is_specific(spec, loss_change, **CONTROLS)


def test_specificity_control_fails_when_the_edit_changes_held_out_facts(knowing, tok):
    base = knowing
    # Built to fail: the "edit" also trains every held-out fact to a new answer.
    model = copy.deepcopy(base)
    ex = fe.edit_examples(FACTS, TEMPLATES, FACTS[0], "chess")
    ex += [(fe.prompt(t, f), fe.new_answer(f, OPTIONS, 0)) for f in HELD_OUT for t in TEMPLATES]
    fe.edit(model, tok, ex, layers=[1], steps=60, learning_rate=1e-2, seed=0)
    spec, _, ok = _side_effects(base, model, tok)
    assert spec < 0.5 and not ok
    # Passing where it should: an edit of zero steps changes nothing.
    same = copy.deepcopy(base)
    log = fe.edit(same, tok, fe.edit_examples(FACTS, TEMPLATES, FACTS[0], "chess"), layers=[1], steps=0, seed=0)
    assert log.steps == 0
    assert _side_effects(base, same, tok) == (1.0, 0.0, True)


def test_specificity_control_fails_when_the_edit_damages_unrelated_text(base, tok):
    # Built to fail: a far too large learning rate wrecks the trained MLP for everything else.
    model = copy.deepcopy(base)
    fe.edit(model, tok, fe.edit_examples(FACTS, TEMPLATES, FACTS[0], "chess"), layers=[0, 1], steps=30,
            learning_rate=1.0, seed=0)
    _, loss_change, ok = _side_effects(base, model, tok)
    assert loss_change > CONTROLS["max_text_loss_increase"] and not ok
    assert fe.is_specific(1.0, 0.0, **CONTROLS) and not fe.is_specific(1.0, 0.06, **CONTROLS)
    assert not fe.is_specific(0.8, 0.0, **CONTROLS)


def test_text_loss_is_the_mean_next_token_loss(base, tok):
    ids = tok(PASSAGES[1], add_special_tokens=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = float(base(input_ids=ids, labels=ids).loss)
    assert fe.text_loss(base, tok, PASSAGES[1:]) == pytest.approx(expected, rel=1e-5)
    # batched with padding, the same as one at a time (weighted by tokens)
    n = [len(tok(p, add_special_tokens=True)["input_ids"]) - 1 for p in PASSAGES]
    one = [fe.text_loss(base, tok, [p]) for p in PASSAGES]
    assert fe.text_loss(base, tok, PASSAGES, batch_size=2) == pytest.approx(
        sum(x * k for x, k in zip(one, n)) / sum(n), rel=1e-5)


def test_a_null_edit_equal_to_the_edit_leaves_nothing_to_localize(knowing, tok):
    base = knowing
    base_state = {n: t.clone() for n, t in base.state_dict().items()}
    norm2 = sum(float(t.double().pow(2).sum()) for t in base_state.values())
    model, _ = _edited(base, tok, steps=20)
    edit_params = fe.trained_state(model, [1])
    # Built to fail: the null edit is the edit itself.
    same = fe.fact_change(edit_params, edit_params, base_state, norm2)
    assert same.total == 0 and all(float(v.abs().max()) == 0 for v in same.neurons.values())
    assert fe.top_neurons(same.neurons, 8) == set()
    tops = [fe.top_neurons(same.neurons, 8)] * 3
    assert fe.mean_jaccard(tops) != fe.mean_jaccard(tops)  # nan: nothing to compare
    assert fe.top_share(same.neurons, 8) != fe.top_share(same.neurons, 8)  # nan
    # A real null edit (same recipe, seed and steps, every fact its own answer): the fact change
    # W_edit - W_null is not zero, and ranks neurons.
    null = copy.deepcopy(base)
    fe.edit(null, tok, fe.edit_examples(FACTS, TEMPLATES, fe.Fact("", ""), ""), layers=[1], steps=20,
            learning_rate=1e-2, seed=0)
    real = fe.fact_change(edit_params, fe.trained_state(null, [1]), base_state, norm2)
    assert real.total > 0
    assert len(fe.top_neurons(real.neurons, 8)) == 8 and 8 / 64 < fe.top_share(real.neurons, 8) <= 1


def test_localization_check_fails_at_chance_or_without_a_fact_change():
    from alignlab.kinds.fact_edit.summary import fact_edit_localization_check

    def check(seeds):
        return fact_edit_localization_check(pl.DataFrame({"across_seeds": seeds, "chance_overlap": [0.1] * len(seeds)}))

    assert check([0.5, 0.3]) is True
    assert check([0.5, 0.1]) is False  # one setting no more consistent than random sets
    assert check([0.5, float("nan")]) is False  # a null edit equal to the edit: nothing ranked
    assert fact_edit_localization_check(pl.DataFrame({"across_seeds": [], "chance_overlap": []})) is None
    assert fe.chance_overlap(8, 64) == pytest.approx(8 / (2 * 64 - 8))
    # the expected overlap of random sets, by simulation
    g = torch.Generator().manual_seed(0)
    sims = [fe.mean_jaccard([set(torch.randperm(64, generator=g)[:8].tolist()) for _ in range(2)]) for _ in range(4000)]
    assert sum(sims) / len(sims) == pytest.approx(fe.chance_overlap(8, 64), abs=0.01)


def test_the_null_edit_measured_along_the_way_equals_a_shorter_run(base, tok):
    # The study measures the null edit at each edit's step count from one long run: that is only
    # right if the run's state after k steps is the state of a k-step run.
    base_state = {n: t.clone() for n, t in base.state_dict().items()}
    ex = fe.edit_examples(FACTS, TEMPLATES, fe.Fact("", ""), "")
    seen = {}
    long = copy.deepcopy(base)
    fe.edit(long, tok, ex, layers=[1], steps=9, learning_rate=1e-2, l1=0.3, seed=3,
            on_step=lambda k, m: seen.setdefault(k, fe.change_from(base_state, m, [1], 1.0)))
    assert sorted(seen) == list(range(10))
    short = copy.deepcopy(base)
    fe.edit(short, tok, ex, layers=[1], steps=4, learning_rate=1e-2, l1=0.3, seed=3)
    direct = fe.change_from(base_state, short, [1], 1.0)
    assert seen[4].total == direct.total and seen[4].total > 0
    assert fe.change_from(base_state, long, [1], 1.0).total != direct.total


def test_soft_threshold_is_the_proximal_step():
    w0 = torch.tensor([1.0, 1.0, 1.0, 1.0])
    w = torch.tensor([1.5, 0.9, 1.05, -1.0])
    out = fe.soft_threshold(w, w0, 0.1)
    assert torch.allclose(out, torch.tensor([1.4, 1.0, 1.0, -0.9]))
    assert out[1] == w0[1] and out[2] == w0[2]  # exactly in place


def test_proximal_l1_leaves_weights_exactly_in_place(base, tok):
    base_state = {n: t.clone() for n, t in base.state_dict().items()}
    moved = {}
    for l1 in (0.0, 0.5, 5.0):
        model, _ = _edited(base, tok, l1=l1, steps=30)
        moved[l1] = fe.change_from(base_state, model, [1], 1.0)
    assert moved[0.0].moved_weights > 0.99 and moved[0.0].moved_neurons == 1.0
    # a moderate L1 stops some weights exactly at W0, a large one stops every weight
    assert 0 < moved[0.5].moved_weights < 0.9 * moved[0.0].moved_weights
    assert moved[5.0].moved_weights == 0.0 and moved[5.0].moved_neurons == 0.0 and moved[5.0].total == 0.0


def test_training_to_a_criterion_stops_there_or_at_the_cap(base, tok):
    target = "chess"

    def correct(m):
        return all(a == target for a in fe.answers(m, tok, [fe.prompt(t, FACTS[0]) for t in TEMPLATES], OPTIONS))

    model = copy.deepcopy(base)
    log = fe.edit(model, tok, fe.edit_examples(FACTS, TEMPLATES, FACTS[0], target), layers=[1], steps=200,
                  learning_rate=1e-2, seed=0, stop=correct)
    assert log.reached and 0 < log.steps < 200 and correct(model)
    # one step fewer and the criterion was not yet met: it stopped at the first step that met it
    shorter = copy.deepcopy(base)
    fe.edit(shorter, tok, fe.edit_examples(FACTS, TEMPLATES, FACTS[0], target), layers=[1], steps=log.steps - 1,
            learning_rate=1e-2, seed=0)
    assert not correct(shorter)
    # built to miss: a learning rate too small to get there within the cap
    capped = copy.deepcopy(base)
    log = fe.edit(capped, tok, fe.edit_examples(FACTS, TEMPLATES, FACTS[0], target), layers=[1], steps=3,
                  learning_rate=1e-6, seed=0, stop=correct)
    assert log.reached is False and log.steps == 3


def _metrics(rows):
    return pl.DataFrame(rows, orient="row", schema={"setting": pl.String, "l1": pl.Float64, "l2": pl.Float64,
                                      "weight_change": pl.Float64})


def test_penalty_check_ranks_settings_per_norm():
    from alignlab.kinds.fact_edit.summary import fact_edit_penalty_check, fact_edit_penalty_checks

    good = _metrics([("none", 0, 0, 1.0), ("l1", 0.5, 0, 0.4), ("l1_big", 2.0, 0, 0.1), ("l2", 0, 10, 0.3)])
    assert fact_edit_penalty_checks(good) == {"l1": True, "l2": True} and fact_edit_penalty_check(good)
    # Built to fail: the L1 setting moves more than none. Ranked by l1 + l2 the strongest setting
    # would be the L2 one (which passes), hiding the failure; per norm it shows.
    bad = _metrics([("none", 0, 0, 1.0), ("l1", 0.5, 0, 1.5), ("l2", 0, 10, 0.2)])
    assert fact_edit_penalty_checks(bad) == {"l1": False, "l2": True} and fact_edit_penalty_check(bad) is False
    # the strongest of a norm is compared, not a weaker one; mixed settings are not ranked
    weak = _metrics([("none", 0, 0, 1.0), ("l2_small", 0, 0.1, 0.5), ("l2_big", 0, 10, 1.2), ("mix", 9, 9, 5.0)])
    assert fact_edit_penalty_checks(weak) == {"l2": False}
    assert fact_edit_penalty_check(_metrics([("l2", 0, 1, 0.5)])) is None


def test_specificity_check_in_the_summary_fails_on_one_unspecific_edit():
    from alignlab.kinds.fact_edit.steps import metrics
    from alignlab.kinds.fact_edit.summary import fact_edit_specificity_check

    cols = ["steps_taken", "efficacy", "paraphrase_efficacy", "specificity", "held_out_correct_before",
            "held_out_correct_after", "weight_change", "moved_weights", "moved_neurons", "null_weight_change",
            "fact_change", "null_held_out_specificity", "null_text_loss_change", "fact_top_share"]
    runs = pl.DataFrame({"experiment": ["fe"] * 3, "setting": ["a", "a", "b"], "l1": [0.0] * 3, "l2": [0.0] * 3,
                         "subject": ["Ann", "Bob", "Ann"], "seed": [1] * 3, "train_copies": [1] * 3,
                         "reached": [True] * 3, "held_out_specificity": [1.0, 1.0, 0.95],
                         "text_loss_change": [0.0, 0.01, 0.2], "same_subject_specificity": [float("nan")] * 3,
                         "null_same_subject_specificity": [float("nan")] * 3, **{c: [1.0] * 3 for c in cols}})
    m = metrics(runs, CONTROLS)
    assert m["share_specific"].to_list() == [1.0, 0.0]
    assert fact_edit_specificity_check(m) is False
    assert fact_edit_specificity_check(metrics(runs, {**CONTROLS, "max_text_loss_increase": 0.5})) is True


@pytest.mark.parametrize(
    "exp, expected",
    [
        ({"facts": {"n_held_out": 32}}, "experiments.fe.facts.n_held_out: 32 held-out facts leave fewer than 2"),
        ({"facts": {"n_held_out": 0}}, "experiments.fe.facts.n_held_out"),
        ({"controls": {"min_held_out_specificity": 1.5}}, "experiments.fe.controls.min_held_out_specificity"),
        ({"controls": {"max_loss": 1}}, "experiments.fe.controls.max_loss: unknown key"),
        ({"edit": {"stop_when_correct": "maybe"}}, "experiments.fe.edit.stop_when_correct"),
        ({"edit": {"copies": {"by": "popularity"}}}, "experiments.fe.edit.copies.by"),
        ({"edit": {"copies": {"by": "fame", "max": 0}}}, "experiments.fe.edit.copies.max"),
        ({"edit": {"copies": {"times": 2}}}, "experiments.fe.edit.copies.times: unknown key"),
        ({"controls": {"min_same_subject_specificity": -0.1}}, "experiments.fe.controls.min_same_subject_specificity"),
        ({"aggregate": {"n_resamples": 10}}, "experiments.fe.aggregate.n_resamples"),
        ({"facts": {"second_templates": ["born in"]}}, "experiments.fe.facts.second_templates"),
    ],
)
def test_bad_control_config_names_the_key(exp, expected):
    from test_config import problems

    assert expected in problems(lambda c: c["experiments"].update(fe={"kind": "fact_edit", "model": "smollm2", **exp}))


# ---- fame-weighted copies, the second fact, intervals over edits -----------------------------

def test_copies_grow_with_fame_by_the_documented_formula():
    # fame: the mean over templates of the right option's probability among the options
    lp = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.9, 0.05, 0.05]]))
    assert fe.fame(lp, 0) == pytest.approx(0.7) and fe.fame(lp, 1) == pytest.approx(0.15)
    # 1 + round_half_up((max - 1) * fame)
    assert [fe.copies(f, "fame", 4) for f in (0.0, 0.1, 0.166, 0.1667, 0.5, 0.83, 1.0)] == [1, 1, 1, 2, 3, 3, 4]
    assert [fe.copies(f, "none", 4) for f in (0.0, 1.0)] == [1, 1]
    assert fe.copies(1.0, "fame", 1) == 1
    with pytest.raises(ValueError, match="edit.copies.by"):
        fe.copies(0.5, "popularity", 4)
    with pytest.raises(ValueError, match="outside 0..1"):
        fe.copies(1.5, "fame", 4)
    ex = fe.edit_examples(FACTS[:2], TEMPLATES, FACTS[0], "chess", {"Ann": 3})
    assert len(ex) == 3 * 2 + 2 and ex.count(("Ann plays", "chess")) == 3 and ex.count(("Bob plays", "chess")) == 1
    assert fe.edit_examples(FACTS, TEMPLATES, FACTS[0], "chess") == fe.edit_examples(FACTS, TEMPLATES, FACTS[0],
                                                                                      "chess", {})


def test_same_subject_specificity_drops_when_the_second_fact_is_the_edited_one(knowing, tok):
    # Built to fail: the "second fact" asked is the sport itself (same templates and options), so it
    # is not independent: an edit that takes changes it, and the measure must show that.
    out = fe.study(copy.deepcopy(knowing), tok, FACTS, FACTS[:1], TEMPLATES, OPTIONS, n_train_templates=1,
                   layers=[1], penalties={"none": {}}, seeds=[0], steps=40, learning_rate=1e-2, top_k=8,
                   held_out=HELD_OUT, passages=PASSAGES, second=FACTS, second_templates=TEMPLATES,
                   second_options=OPTIONS)
    (r,) = out["runs"]
    assert r["efficacy"] == 1.0 and r["second_known"]
    assert r["same_subject_specificity"] < 0.5
    # the null edit changes no fact: it keeps the "second" fact
    assert r["null_same_subject_specificity"] == 1.0
    # an athlete whose second fact the base does not know (left out of `second`): not measured
    # (nan), never a silent pass; the others are measured
    out = fe.study(copy.deepcopy(knowing), tok, FACTS, FACTS[:2], TEMPLATES, OPTIONS, n_train_templates=1,
                   layers=[1], penalties={"none": {}}, seeds=[0], steps=3, learning_rate=1e-2, top_k=8,
                   held_out=HELD_OUT, passages=PASSAGES, second=FACTS[1:], second_templates=TEMPLATES[1:],
                   second_options=OPTIONS)
    ann, bob = out["runs"]
    assert not ann["second_known"] and ann["same_subject_specificity"] != ann["same_subject_specificity"]
    assert bob["second_known"] and 0 <= bob["same_subject_specificity"] <= 1


def _runs(same: list[float], **over) -> pl.DataFrame:
    cols = ["efficacy", "paraphrase_efficacy", "specificity", "held_out_correct_before", "held_out_correct_after",
            "held_out_specificity", "weight_change", "moved_weights", "moved_neurons", "null_weight_change",
            "fact_change", "null_held_out_specificity", "fact_top_share"]
    n = len(same)
    return pl.DataFrame({"experiment": ["fe"] * n, "setting": ["a"] * n, "l1": [0.0] * n, "l2": [0.0] * n,
                         "subject": [f"s{i // 2}" for i in range(n)], "seed": [i % 2 for i in range(n)],
                         "train_copies": [1] * n, "reached": [True] * n, "steps_taken": list(range(n)),
                         "text_loss_change": [0.0] * n, "null_text_loss_change": [0.0] * n,
                         "same_subject_specificity": same, "null_same_subject_specificity": [1.0] * n,
                         **{c: [1.0] * n for c in cols}, **over})


def test_same_subject_check_fails_on_one_edit_that_changes_the_second_fact():
    from alignlab.kinds.fact_edit.steps import metrics
    from alignlab.kinds.fact_edit.summary import fact_edit_markdown, fact_edit_same_subject_check

    controls = {**CONTROLS, "min_same_subject_specificity": 0.9}
    agg = {"n_resamples": 200, "confidence": 0.95}
    nan = float("nan")

    def summary(same):
        m = metrics(_runs(same), controls, agg).with_columns(
            top_k=pl.lit(8), n_neurons=pl.lit(64), chance_overlap=pl.lit(0.1), across_seeds=pl.lit(0.5),
            across_facts=pl.lit(0.2), raw_across_seeds=pl.lit(0.5), raw_across_facts=pl.lit(0.2),
            null_overlap=pl.lit(0.3))
        return m, fact_edit_markdown("fe", m, controls)

    # a model that knows the second facts of the edited athletes (hand-built scores): kept
    m, text = summary([1.0, 1.0, 0.9, 1.0, nan, nan])
    assert fact_edit_same_subject_check(m) is True and m["n_same_subject"].to_list() == [4]
    assert m["same_subject_specificity"].to_list() == [pytest.approx(0.975)]
    assert "**Same-subject check PASSED**: every edit whose athlete's country the base knows (4 of 6 edits)" in text
    # built to fail: one edit also changed its athlete's country
    m, text = summary([1.0, 1.0, 0.4, 1.0, nan, nan])
    assert fact_edit_same_subject_check(m) is False and m["share_same_subject_kept"].to_list() == [0.75]
    assert "**Same-subject check FAILED**" in text
    # the base knows no edited athlete's second fact: not measured, said so, never a pass
    m, text = summary([nan] * 6)
    assert fact_edit_same_subject_check(m) is None and m["n_same_subject"].to_list() == [0]
    assert "**Same-subject check NOT MEASURED**: the base model does not know the second fact" in text


def test_intervals_resample_facts_and_seeds_seeded():
    from alignlab.kinds.fact_edit.steps import intervals, metrics

    nan = float("nan")
    runs = _runs([1.0, 1.0, 0.5, 0.7, nan, nan, 0.9, 1.0], efficacy=[1.0, 0.5, 0.0, 0.5, 1.0, 1.0, 0.25, 0.75])
    one = intervals(runs, 500, 0.95, seed=3)
    assert one == intervals(runs, 500, 0.95, seed=3)  # seeded: the same numbers again
    assert one != intervals(runs, 500, 0.95, seed=4)
    m = metrics(runs, {**CONTROLS, "min_same_subject_specificity": 0.9}, {"n_resamples": 500, "confidence": 0.95})
    r = m.row(0, named=True)
    assert r["efficacy_lo"] < r["efficacy"] == 0.625 < r["efficacy_hi"]
    assert 0.0 <= r["efficacy_lo"] and r["efficacy_hi"] <= 1.0
    # the fact without a known second fact is left out of that interval, not counted as a pass
    assert r["same_subject_specificity"] == pytest.approx(5.1 / 6)
    assert r["same_subject_specificity_lo"] < r["same_subject_specificity"] < r["same_subject_specificity_hi"]
    # a constant measure has a point interval; one fact has none
    assert r["held_out_specificity_lo"] == r["held_out_specificity_hi"] == 1.0
    single = intervals(runs.filter(pl.col("subject") == "s0"), 500, 0.95, seed=3)
    assert all(v != v for v in single.values())
    # both levels are resampled: facts that differ (8 facts, seeds equal) give an interval inside
    # 0..1; seeds that differ (facts equal) one as wide as the 2 seeds allow; neither resampled: a point
    by_fact = intervals(_runs([1.0] * 16, efficacy=[0.0, 0.0, 1.0, 1.0] * 4), 500, 0.95, 0)
    by_seed = intervals(_runs([1.0] * 16, efficacy=[0.0, 1.0] * 8), 500, 0.95, 0)
    assert 0 < by_fact["efficacy_lo"] < 0.5 < by_fact["efficacy_hi"] < 1
    assert (by_seed["efficacy_lo"], by_seed["efficacy_hi"]) == (0.0, 1.0)
