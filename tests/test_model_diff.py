"""model_diff on tiny random Llama models (seconds, no model files): the sanity checks that can
fail. A model compared with itself has weight and activation cosine exactly 1 and no change; a
model perturbed more moves more; an SAE explains most of the variance of its training data; the
loss rise when its reconstruction replaces a layer is finite and not clearly negative."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from alignlab.kinds.model_diff import diff as md

VOCAB = 64


def tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=False)
    return LlamaForCausalLM(cfg).eval()


def perturbed(model, scale: float, seed: int = 1):
    """A copy with every weight moved by relative Gaussian noise of size `scale`."""
    other = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale * p.abs().mean())
    return other


def texts(n: int = 12, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, 20, (n,), generator=g)
    return [torch.randint(1, VOCAB, (int(k),), generator=g).tolist() for k in lengths]


@pytest.fixture(scope="module")
def base():
    return tiny_llama()


def test_parse_name():
    assert md.parse_name("model.layers.3.mlp.up_proj.weight") == (3, "mlp.up_proj.weight")
    assert md.parse_name("model.embed_tokens.weight") == (-1, "model.embed_tokens.weight")
    assert md.parse_name("transformer.h.11.attn.c_attn.weight") == (11, "attn.c_attn.weight")


def test_self_comparison_is_exact(base):
    rows = md.weight_stats(base.state_dict(), copy.deepcopy(base).state_dict())
    assert rows and all(r["cosine"] == 1.0 and r["relative_change"] == 0.0 for r in rows)
    assert md.total_relative_change(rows) == 0.0
    layers = md.weight_stats_by_layer(rows)
    assert [r["layer"] for r in layers] == [-1, 0, 1]
    acts = md.activation_cosine(base, copy.deepcopy(base), texts(), batch_size=5)
    assert len(acts) == 3  # embeddings + 2 layers
    assert all(r["mean_cosine"] == 1.0 and r["min_cosine"] == 1.0 for r in acts)
    assert md.global_mean_cosine(acts) == 1.0


def test_more_perturbation_moves_more(base):
    small, large = perturbed(base, 0.01), perturbed(base, 0.2)
    w_small = md.weight_stats(base.state_dict(), small.state_dict())
    w_large = md.weight_stats(base.state_dict(), large.state_dict())
    assert 0 < md.total_relative_change(w_small) < md.total_relative_change(w_large)
    by_name = {r["name"]: r for r in w_large}
    for r in w_small:
        assert r["cosine"] > by_name[r["name"]]["cosine"]
        assert r["cosine"] < 1.0
    ids = texts()
    a_small = md.global_mean_cosine(md.activation_cosine(base, small, ids))
    a_large = md.global_mean_cosine(md.activation_cosine(base, large, ids))
    assert 1.0 > a_small > a_large


def test_padding_does_not_count(base):
    """The same texts in batches of 1 (no padding) and of 5 (padded) give the same cosines."""
    other = perturbed(base, 0.1)
    ids = texts()
    one = md.activation_cosine(base, other, ids, batch_size=1)
    five = md.activation_cosine(base, other, ids, batch_size=5, pad_id=0)
    for a, b in zip(one, five):
        assert a["n_tokens"] == b["n_tokens"] == sum(len(x) for x in ids)
        assert a["mean_cosine"] == pytest.approx(b["mean_cosine"], abs=1e-5)


def test_weight_stats_from_folders(base, tmp_path):
    base.save_pretrained(tmp_path / "a")
    perturbed(base, 0.05).save_pretrained(tmp_path / "b")
    rows = md.weight_stats(md.load_state_dict(tmp_path / "a"), md.load_state_dict(tmp_path / "b"))
    mats = {(r["layer"], r["matrix"]) for r in rows}
    assert (0, "self_attn.q_proj.weight") in mats and (1, "mlp.down_proj.weight") in mats
    assert all(0 < r["relative_change"] < 1 for r in rows)
    with pytest.raises(FileNotFoundError):
        md.load_state_dict(tmp_path)


def test_layer_activations_match_hidden_states(base):
    ids = texts(4)
    acts = md.layer_activations(base, ids, layer=0, batch_size=3)
    assert acts.shape == (sum(len(x) for x in ids), 32)
    with torch.no_grad():
        hs = base(input_ids=torch.tensor([ids[0]]), output_hidden_states=True).hidden_states[1][0]
    torch.testing.assert_close(acts[:len(ids[0])], hs, rtol=1e-5, atol=1e-5)
    rest = md.layer_activations(base, ids, layer=0, batch_size=3, skip_first=True)
    assert rest.shape == (sum(len(x) - 1 for x in ids), 32)
    torch.testing.assert_close(rest[:len(ids[0]) - 1], hs[1:], rtol=1e-5, atol=1e-5)


def test_after_first_leaves_the_first_position_alone():
    h = torch.randn(2, 5, 3)
    out = md.after_first(torch.zeros_like)(h)
    assert torch.equal(out[:, 0], h[:, 0]) and not out[:, 1:].any()


@pytest.mark.parametrize("tied", [False, True])
def test_sae_reconstructs_base_and_loss_rise_is_sane(base, tied):
    ids = texts(24)
    acts = md.layer_activations(base, ids, layer=0)
    sae, log = md.train_sae(acts, d_hidden=128, l1=1e-3, steps=600, batch_size=128,
                            learning_rate=3e-3, tied=tied, seed=0)
    ve = md.variance_explained(sae, acts)
    assert ve["variance_explained"] > 0.9, (ve, log)
    assert 0 < ve["l0"] <= 128
    loss = md.loss_with_sae(base, sae, 0, ids)
    # (loss_recovered may be NaN here: in a random model zeroing a layer need not hurt)
    assert all(math.isfinite(loss[k]) for k in ("loss_clean", "loss_sae", "loss_zero", "loss_rise"))
    assert loss["loss_rise"] > -0.05
    # the hook is gone afterwards
    assert md.next_token_loss(base, ids) == pytest.approx(loss["loss_clean"])


def test_sae_is_seeded(base):
    acts = md.layer_activations(base, texts(8), layer=1)
    a, _ = md.train_sae(acts, 64, steps=50, seed=3)
    b, _ = md.train_sae(acts, 64, steps=50, seed=3)
    c, _ = md.train_sae(acts, 64, steps=50, seed=4)
    assert torch.equal(a.W_enc, b.W_enc) and not torch.equal(a.W_enc, c.W_enc)


def test_sae_transfers_worse_to_a_moved_model(base):
    """Trained on the base's layer-1 output, the SAE explains less of a heavily perturbed
    model's activations than of the base's own."""
    ids = texts(24)
    acts = md.layer_activations(base, ids, layer=1)
    sae, _ = md.train_sae(acts, 128, steps=600, batch_size=128, learning_rate=3e-3, seed=0)
    moved = perturbed(base, 0.5)
    on_base = md.variance_explained(sae, acts)["variance_explained"]
    on_moved = md.variance_explained(sae, md.layer_activations(moved, ids, layer=1))["variance_explained"]
    assert on_base > on_moved


def _finetune(model, steps: int, seed: int = 0):
    """A copy of `model` trained for `steps` Adam steps on fixed random sequences."""
    tuned = copy.deepcopy(model).train()
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(1, VOCAB, (8, 16), generator=g)
    opt = torch.optim.Adam(tuned.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = tuned(input_ids=data, labels=data).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return tuned.eval()


def test_more_steps_move_more(base):
    few, many = _finetune(base, 2), _finetune(base, 20)
    w_few = md.total_relative_change(md.weight_stats(base.state_dict(), few.state_dict()))
    w_many = md.total_relative_change(md.weight_stats(base.state_dict(), many.state_dict()))
    assert 0 < w_few < w_many
    ids = texts()
    assert md.global_mean_cosine(md.activation_cosine(base, few, ids)) > md.global_mean_cosine(
        md.activation_cosine(base, many, ids))


# ---- issue 19: controls that can fail ----------------------------------------------------------

def test_text_cosines_add_up_to_the_layer_means(base):
    other = perturbed(base, 0.1)
    ids = texts()
    per_text = md.text_cosines(base, other, ids, batch_size=5)
    assert per_text["sums"].shape == (len(ids), 3) and per_text["counts"].tolist() == [len(x) for x in ids]
    one = md.activation_cosine(base, other, ids, batch_size=1)
    for row, mean in zip(one, (per_text["sums"].sum(0) / per_text["counts"].sum()).tolist()):
        assert row["mean_cosine"] == pytest.approx(mean, abs=1e-6)
    # every resample of the full text set gives back the point estimate when all texts are drawn once
    idx = torch.arange(len(ids)).unsqueeze(0)
    assert float(md.resampled_global_means(per_text["sums"], per_text["counts"], idx)[0]) == pytest.approx(
        md.global_mean_cosine(one), abs=1e-9)


def test_bootstrap_interval_covers_the_estimate_and_is_seeded(base):
    other = perturbed(base, 0.1)
    pt = md.text_cosines(base, other, texts(16))
    est = md.global_mean_cosine(md.layer_rows(pt))
    idx = md.bootstrap_indices(16, 400, seed=5)
    assert torch.equal(idx, md.bootstrap_indices(16, 400, seed=5)) and not torch.equal(idx, md.bootstrap_indices(16, 400, 6))
    lo, hi = md.percentile_interval(md.resampled_global_means(pt["sums"], pt["counts"], idx), 0.95)
    assert lo < est < hi and hi - lo > 0
    # the base against itself: every text has cosine exactly 1, the interval is the point [1, 1]
    same = md.text_cosines(base, copy.deepcopy(base), texts(16))
    assert md.percentile_interval(md.resampled_global_means(same["sums"], same["counts"], idx), 0.95) == (1.0, 1.0)


def test_ranking_says_which_pairs_it_cannot_tell_apart(base):
    """The paired bootstrap of adjacent pairs' difference: two pairs that are the same fine-tune
    cannot be told apart (the control fails for them); a small and a large perturbation can."""
    ids = texts(16)
    small, large = perturbed(base, 0.02), perturbed(base, 0.3)
    pt = {"large": md.text_cosines(base, large, ids), "small": md.text_cosines(base, small, ids)}
    pt["small_again"] = md.text_cosines(base, copy.deepcopy(small), ids)
    idx = md.bootstrap_indices(len(ids), 500, seed=0)
    sums = {k: v["sums"] for k, v in pt.items()}
    diffs = md.adjacent_differences(["large", "small", "small_again"], sums, pt["large"]["counts"], idx, 0.95)
    assert [d["pair"] for d in diffs] == ["large", "small", "small_again"]
    assert diffs[0]["distinct"] is True and diffs[0]["lo"] > 0
    assert diffs[1]["distinct"] is False and diffs[1]["lo"] == diffs[1]["hi"] == 0.0
    assert diffs[2]["distinct"] is None


def test_feature_transfer_counts_dead_and_new_features():
    base_f = torch.tensor([0.5, 0.0, 0.2, 0.0])
    assert md.feature_transfer(base_f, base_f.clone()) == {
        "dead_on_tuned": 0, "new_on_tuned": 0, "dead_on_base": 2, "frequency_correlation": pytest.approx(1.0)}
    moved = md.feature_transfer(base_f, torch.tensor([0.0, 0.1, 0.2, 0.0]))
    assert moved["dead_on_tuned"] == 1 and moved["new_on_tuned"] == 1 and moved["frequency_correlation"] < 1
    with pytest.raises(ValueError, match="features"):
        md.feature_transfer(base_f, torch.zeros(3))


def test_feature_stats_match_l0(base):
    acts = md.layer_activations(base, texts(8), layer=1)
    sae, _ = md.train_sae(acts, 64, steps=100, seed=0)
    stats = md.feature_stats(sae, acts)
    assert stats["frequency"].shape == (64,) and bool((stats["frequency"] <= 1).all())
    # the frequencies add up to L0, the mean active features per token
    assert float(stats["frequency"].sum()) == pytest.approx(md.variance_explained(sae, acts)["l0"], rel=1e-5)
    assert bool((stats["mean_activation"] >= 0).all())


def test_l0_range_flags_a_dense_sae(base):
    """Without an L1 penalty the SAE is dense: its L0 falls outside a sparse target range (the
    control fails); with a strong penalty it is sparse and inside it."""
    acts = md.layer_activations(base, texts(24), layer=1)
    _, dense = md.train_sae(acts, 64, l1=0.0, steps=300, batch_size=128, learning_rate=3e-3, seed=0)
    _, sparse = md.train_sae(acts, 64, l1=1.0, steps=300, batch_size=128, learning_rate=3e-3, seed=0)
    assert md.l0_in_range(dense.final_l0, (1, 20)) is False, dense
    assert md.l0_in_range(sparse.final_l0, (1, 20)) is True, sparse
    assert md.l0_in_range(5.0, None) is None


def test_size_matched_reference(base):
    """A random perturbation with each tensor's change norm equal to a real fine-tune's: it
    matches that fine-tune (control passes), in bfloat16 too, leaves unchanged tensors
    bit-identical, and does not match another fine-tune (control fails)."""
    tuned = _finetune(base, 5)
    b, t = base.state_dict(), tuned.state_dict()
    t["model.norm.weight"] = b["model.norm.weight"].clone()  # a tensor the fine-tune left alone
    ref = md.size_matched_perturbation(b, t, seed=0)
    real_rows, ref_rows = md.weight_stats(b, t), md.weight_stats(b, ref)
    assert md.size_matched(real_rows, ref_rows, 0.01), md.size_match(real_rows, ref_rows)
    assert torch.equal(ref["model.norm.weight"], b["model.norm.weight"])
    assert not torch.equal(ref["model.layers.0.mlp.up_proj.weight"], t["model.layers.0.mlp.up_proj.weight"])
    assert torch.equal(md.size_matched_perturbation(b, t, seed=0)["lm_head.weight"], ref["lm_head.weight"])
    # the same in bfloat16, where rounding would lose most of a small change without the correction
    b16 = {k: v.to(torch.bfloat16) for k, v in b.items()}
    t16 = {k: (b[k] + (t[k] - b[k]) * 0.05).to(torch.bfloat16) for k in b}
    ref16 = md.size_matched_perturbation(b16, t16, seed=0)
    assert all(v.dtype == torch.bfloat16 for v in ref16.values())
    assert md.size_matched(md.weight_stats(b16, t16), md.weight_stats(b16, ref16), 0.05), md.size_match(
        md.weight_stats(b16, t16), md.weight_stats(b16, ref16))
    # built like another fine-tune, it does not match this one: the control fails
    other = md.size_matched_perturbation(b, _finetune(base, 20).state_dict(), seed=0)
    gap = md.size_match(real_rows, md.weight_stats(b, other))
    assert not md.size_matched(real_rows, md.weight_stats(b, other), 0.05) and gap["mismatched_tensors"] == 1
