"""fact_edit's library on a tiny random Llama with a character tokenizer (seconds): only the
configured MLP layers move; a penalty of 0 moves the weights more than a large one; the edit
takes on the edited fact; neuron change and overlap measures behave."""

from __future__ import annotations

import copy

import pytest
import torch
from test_model_diff_steps import char_tokenizer, tiny_model

from alignlab.kinds.fact_edit import edit as fe
from alignlab.kinds.model_diff import diff as md

FACTS = [fe.Fact("Ann", "golf"), fe.Fact("Bob", "chess"), fe.Fact("Cy", "polo"), fe.Fact("Di", "golf")]
TEMPLATES = ["{name} plays", "the game of {name} is"]
OPTIONS = ["golf", "chess", "polo"]


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


def test_study_tables(base, tok):
    templates = TEMPLATES + ["{name} is good at"]
    out = fe.study(copy.deepcopy(base), tok, FACTS, FACTS[:2], templates, OPTIONS, n_train_templates=2, layers=[1],
                   penalties={"none": {}, "l2": {"l2": 10.0}}, seeds=[0, 1], steps=20, learning_rate=1e-2, top_k=8)
    runs = out["runs"]
    assert len(runs) == 2 * 2 * 2  # settings x facts x seeds
    assert all(r["new_answer"] != r["answer"] for r in runs)
    change = {s: sum(r["weight_change"] for r in runs if r["setting"] == s) for s in ("none", "l2")}
    assert change["none"] > change["l2"]
    assert {r["layer"] for r in out["layers"]} == {1}
    assert [o["setting"] for o in out["overlap"]] == ["none", "l2"]
    assert all(0 <= o["across_seeds"] <= 1 and 0 <= o["across_facts"] <= 1 for o in out["overlap"])


def test_steps_on_a_tiny_model_folder(base, tok, tmp_path):
    """fact_edit_steps end to end on a tiny folder (min_share 0: a random model knows no fact)."""
    from alignlab import artifacts
    from alignlab.kinds.fact_edit import steps

    folder = tmp_path / "base"
    base.save_pretrained(folder)
    tok.save_pretrained(folder)
    facts_cfg = {"min_share": 0.0, "templates": None}
    steps.filter_facts(model_dir=str(folder), facts_cfg=facts_cfg, device="cpu", experiment="fe",
                       out=str(tmp_path / "facts.parquet"))
    facts = artifacts.read_table(tmp_path / "facts.parquet", "fe_facts")
    assert facts.height == len(fe.packaged()["facts"]) and facts["kept"].all()
    with pytest.raises(ValueError, match="knows only"):
        steps.filter_facts(model_dir=str(folder), facts_cfg={**facts_cfg, "min_share": 1.1}, device="cpu",
                           experiment="fe", out=str(tmp_path / "none.parquet"))
    edit_cfg = {"n_facts": 2, "n_seeds": 2, "n_train_templates": 3, "layers": [1], "steps": 5, "bf16_autocast": False,
                "learning_rate": 1e-2, "batch_size": 16, "top_k": 8}
    outs = {}
    for setting, penalty in {"none": {}, "l2": {"l2": 10.0}}.items():
        outs[setting] = {k: str(tmp_path / setting / f"{k}.parquet") for k in ("runs", "layers", "overlap")}
        steps.run_setting(model_dir=str(folder), facts_path=str(tmp_path / "facts.parquet"), facts_cfg=facts_cfg,
                          edit_cfg=edit_cfg, penalty=penalty, setting=setting, seed=0, experiment="fe", device="cpu",
                          runs_out=outs[setting]["runs"], layers_out=outs[setting]["layers"],
                          overlap_out=outs[setting]["overlap"])
    steps.aggregate(runs=[o["runs"] for o in outs.values()], layers=[o["layers"] for o in outs.values()],
                    overlaps=[o["overlap"] for o in outs.values()], experiment="fe",
                    metrics_out=str(tmp_path / "metrics.parquet"), figure=str(tmp_path / "layers.png"),
                    summary_out=str(tmp_path / "summary.md"))
    m = artifacts.read_table(tmp_path / "metrics.parquet", "fe_metrics")
    assert m["setting"].to_list() == ["none", "l2"] and m["n_edits"].to_list() == [4, 4]
    assert (tmp_path / "layers.png").stat().st_size > 0
    assert "**Penalty check PASSED**" in (tmp_path / "summary.md").read_text()


def test_a_layer_the_model_does_not_have_is_named(base):
    with pytest.raises(ValueError, match=r"edit.layers: no MLP parameters in layer\(s\) \[5\] \(the model has 2"):
        fe.mlp_parameters(base, [1, 5])
    assert all(".layers.1.mlp." in n for n in fe.mlp_parameters(base, [1]))
