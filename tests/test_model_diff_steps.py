"""The model_diff experiment's steps (model_diff_steps.py) on tiny model folders: a random
2-layer Llama with a character-level tokenizer built here (no model files, seconds). The base
against itself, against a LoRA adapter merged in, and against two perturbed copies: tables with
their declared schemas, the identity control exact, and the ranking by how far each moved."""

from __future__ import annotations

import copy
import math

import polars as pl
import pytest
import torch

from alignlab import artifacts
from alignlab.kinds.model_diff import steps
from alignlab.kinds.model_diff import summary as md_summary

CHARS = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?'\"-+*/=()[]_#\n")


def char_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for c in CHARS:
        vocab.setdefault(c, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def tiny_model(vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(cfg).eval()


def perturbed(model, scale: float):
    other = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale * p.abs().mean())
    return other


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("md")
    tok = char_tokenizer()
    base = tiny_model(len(tok))
    out = {}
    for name, model in {"base": base, "small": perturbed(base, 0.02), "large": perturbed(base, 0.3)}.items():
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
        out[name] = root / name
    lora = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "down_proj"]))
    with torch.no_grad():
        for n, p in lora.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(2))
    lora.save_pretrained(root / "adapter")
    out["adapter"] = root / "adapter"
    out["root"] = root
    return out


TEXTS = {"source": "packaged", "path": None, "column": "text", "n": 12, "max_length": 48, "sae_train_share": 0.5}
SAE = {"layer": None, "d_hidden": 64, "l1": 1e-3, "steps": 200, "batch_size": 128, "learning_rate": 3e-3,
       "tied": False, "l0_range": [1, 64], "l0_action": "flag"}
BOOT = {"n_resamples": 200, "confidence": 0.95}
TABLES = ("weights", "activations", "text_cosines", "sae", "features")


def test_texts_split(tmp_path):
    steps.make_texts(texts=TEXTS, experiment="d", out=str(tmp_path / "t.parquet"))
    t = artifacts.read_table(tmp_path / "t.parquet", "md_texts")
    assert t.height == 12 and t["split"].to_list() == ["sae_train"] * 6 + ["eval"] * 6
    file = tmp_path / "mine.csv"
    pl.DataFrame({"body": [f"line number {i} of my own texts" for i in range(5)]}).write_csv(file)
    steps.make_texts(texts={**TEXTS, "source": "file", "path": str(file), "column": "body"}, experiment="d",
                     out=str(tmp_path / "f.parquet"))
    assert artifacts.read_table(tmp_path / "f.parquet", "md_texts").height == 5
    with pytest.raises(ValueError, match="texts.column"):
        steps.make_texts(texts={**TEXTS, "source": "file", "path": str(file), "column": "nope"}, experiment="d",
                         out=str(tmp_path / "g.parquet"))


def test_steps_end_to_end(folders, tmp_path):
    texts = str(tmp_path / "texts.parquet")
    steps.make_texts(texts=TEXTS, experiment="d", out=texts)
    steps.merge(model_dir=str(folders["base"]), adapter_dir=str(folders["adapter"]), out_dir=str(tmp_path / "merged"))
    steps.train_sae(texts_path=texts, model_dir=str(folders["base"]), sae_cfg=SAE, texts_cfg=TEXTS, batch_size=4,
                    seed=0, experiment="d", device="cpu", out=str(tmp_path / "sae.pt"),
                    log_path=str(tmp_path / "sae_log.parquet"))
    log = artifacts.read_table(tmp_path / "sae_log.parquet", "md_sae_log")
    assert log["layer"][0] == 1  # the middle of 2 layers

    # a size-matched random reference of the merged LoRA, and one built like "large" but
    # checked against "small" (the control fails for it)
    steps.make_reference(model_dir=str(folders["base"]), tuned_dir=str(tmp_path / "merged"), seed=0, experiment="d",
                         reference="lora_random", out_dir=str(tmp_path / "ref_lora"))
    steps.make_reference(model_dir=str(folders["base"]), tuned_dir=str(folders["large"]), seed=0, experiment="d",
                         reference="wrong", out_dir=str(tmp_path / "ref_wrong"))
    assert (tmp_path / "ref_lora" / "config.json").is_file() and (tmp_path / "ref_lora" / "tokenizer.json").is_file()

    tuned = {"self": folders["base"], "lora": tmp_path / "merged", "small": folders["small"], "large": folders["large"],
             "lora_random": tmp_path / "ref_lora", "wrong": tmp_path / "ref_wrong", "small_copy": folders["small"]}
    pairs = {}
    for pair, folder in tuned.items():
        files = {t: str(tmp_path / pair / f"{t}.parquet") for t in TABLES}
        steps.compare(texts_path=texts, base_dir=str(folders["base"]), tuned_dir=str(folder),
                      sae_path=str(tmp_path / "sae.pt"), texts_cfg=TEXTS, batch_size=4, experiment="d", pair=pair,
                      device="cpu", weights_out=files["weights"], activations_out=files["activations"],
                      sae_out=files["sae"], figure=str(tmp_path / pair / "layers.png"), seed=0, bootstrap=BOOT,
                      text_cosines_out=files["text_cosines"], features_out=files["features"])
        assert (tmp_path / pair / "layers.png").stat().st_size > 0
        pairs[pair] = files

    sources = {p: str(f) for p, f in tuned.items()}
    sources["self"] = "model:base"
    references = {"lora_random": {"like": "lora", "tolerance": 0.05}, "wrong": {"like": "small", "tolerance": 0.05}}
    model_info = tmp_path / "model.parquet"
    index = {name: None for name in artifacts.SCHEMAS["model"].names}
    artifacts.write_table([{**index, "model": "base", "n_parameters": 2_000_000}], model_info, "model")
    steps.aggregate(**{t: [pairs[p][t] for p in sources] for t in TABLES},
                    model_info=str(model_info), sources=sources, experiment="d", base="base",
                    more_steps=["small", "large"], metrics_out=str(tmp_path / "metrics.parquet"),
                    replication_out=str(tmp_path / "replication.parquet"), summary_out=str(tmp_path / "summary.md"),
                    sae_log=str(tmp_path / "sae_log.parquet"), references=references, seed=0, bootstrap=BOOT)
    m = {r["pair"]: r for r in artifacts.read_table(tmp_path / "metrics.parquet", "md_metrics").iter_rows(named=True)}
    assert m["self"]["global_mean_cosine"] == 1.0 and m["self"]["weight_relative_change"] == 0.0
    assert m["self"]["sae_ve_base"] == m["self"]["sae_ve_tuned"]
    assert m["large"]["rank"] in (1, 2) and m["self"]["rank"] == 7
    assert m["large"]["weight_relative_change"] > m["small"]["weight_relative_change"] > 0
    assert 0 < m["lora"]["weight_relative_change"]
    # only the adapted matrices moved (bf16 rounding aside, the others are bit-identical)
    w = artifacts.read_table(tmp_path / "lora" / "weights.parquet", "md_weights")
    moved = set(w.filter(pl.col("delta_norm") > 0)["matrix"].to_list())
    assert moved and moved <= {"self_attn.q_proj.weight", "mlp.down_proj.weight"}
    summary = (tmp_path / "summary.md").read_text()
    assert "`large` |" in summary and "Kutsyk" in summary
    assert "**Identity control (`self`) PASSED**" in summary
    card = artifacts.read_table(tmp_path / "replication.parquet", "replication")
    assert set(card["metric"]) == {f"{p}: global_mean_cosine" for p in ("lora", "small", "large", "small_copy")}  # not self, refs
    assert set(card["published"]) == {0.6691, 0.9648} and not card["comparable"].any()
    assert "not comparable (Gemma-2b vs Gemma-2b-Python-codes (2B) vs base (2M))" in summary

    assert md_summary.model_diff_identity_passed(pl.read_parquet(tmp_path / "metrics.parquet"), "small") is False
    # "large" stands in for the fine-tune with more steps; swapped, the check fails
    assert "**More-steps check PASSED**: `large` (more steps)" in summary
    metrics = pl.read_parquet(tmp_path / "metrics.parquet")
    assert md_summary.model_diff_more_steps_passed(metrics, "large", "small") is False
    assert md_summary.model_diff_more_steps_passed(metrics, "small", "absent") is None

    # intervals over texts: each pair's global mean cosine inside its interval; the identity
    # pair's interval is the point 1; per layer too
    for r in m.values():
        assert r["global_mean_cosine_lo"] <= r["global_mean_cosine"] <= r["global_mean_cosine_hi"]
        assert r["n_texts"] == 12
    assert m["self"]["global_mean_cosine_lo"] == m["self"]["global_mean_cosine_hi"] == 1.0
    acts = artifacts.read_table(tmp_path / "large" / "activations.parquet", "md_activations")
    assert (acts["ci_lo"] <= acts["mean_cosine"]).all() and (acts["mean_cosine"] <= acts["ci_hi"]).all()
    # the ranking: every pair but the last says whether it is told apart from the next
    ranked = sorted(m.values(), key=lambda r: r["rank"])
    assert [r["next_pair"] for r in ranked[:-1]] == [r["pair"] for r in ranked[1:]]
    assert ranked[-1]["distinct_from_next"] is None
    assert all(r["distinct_from_next"] is not None for r in ranked[:-1])
    # "small" and "small_copy" are the same fine-tune: the ranking cannot tell them apart (the
    # control fails for them, as it should), and the summary says so
    first, second = sorted(["small", "small_copy"], key=lambda p: m[p]["rank"])
    assert m[first]["next_pair"] == second and m[first]["distinct_from_next"] is False
    assert m[first]["diff_next_lo"] == m[first]["diff_next_hi"] == 0.0
    assert f"The ranking cannot tell apart: `{first}` and `{second}`" in summary
    assert [r["pair"] for r in md_summary.indistinct_pairs(metrics)] == [first]
    # "large" moved far more than "self" and "small": told apart from whatever follows it
    assert m["large"]["distinct_from_next"] is True
    # the references: the LoRA's matches it (PASSED); "wrong" was built like "large" but is
    # checked against "small" (FAILED); neither is in the replication card
    assert m["lora_random"]["reference_of"] == "lora" and m["lora_random"]["size_matched"] is True
    assert m["wrong"]["size_matched"] is False and m["wrong"]["size_gap"] > 1
    assert m["lora"]["reference_of"] is None and m["lora"]["size_matched"] is None
    assert "**Size-matched reference `lora_random` PASSED**" in summary
    assert "**Size-matched reference `wrong` FAILED**" in summary
    assert "## Beside a random change of the same size" in summary
    ratio = md_summary.drop_ratio(m["lora"], m["lora_random"])
    assert ratio > 0 and f"| {ratio:.1f}x |" in summary
    assert math.isnan(md_summary.drop_ratio(m["lora"], m["self"]))  # a "reference" that did not move
    # the random reference moves more than the LoRA's (low-rank) change? at least it moved
    assert m["lora_random"]["global_mean_cosine"] < 1.0
    # the SAE: L0 in its range (flag PASSED); features: none dead or new on the base itself
    assert "**SAE sparsity check PASSED**" in summary
    assert m["self"]["features_dead_tuned"] == m["self"]["features_new_tuned"] == 0
    assert m["self"]["feature_frequency_corr"] == pytest.approx(1.0)
    feats = artifacts.read_table(tmp_path / "large" / "features.parquet", "md_features")
    assert feats.height == 64 and feats["frequency_base"].sum() == pytest.approx(m["large"]["sae_l0_base"], rel=1e-5)


def test_sae_l0_outside_its_range_flags_or_fails(folders, tmp_path):
    """An SAE whose L0 is outside sae.l0_range: flagged in its log (l0_action: flag), or the step
    fails naming the key (l0_action: fail)."""
    texts = str(tmp_path / "texts.parquet")
    steps.make_texts(texts=TEXTS, experiment="d", out=texts)
    run = dict(texts_path=texts, model_dir=str(folders["base"]), texts_cfg=TEXTS, batch_size=4, seed=0,
               experiment="d", device="cpu", out=str(tmp_path / "sae.pt"), log_path=str(tmp_path / "log.parquet"))
    dense = {**SAE, "l1": 0.0, "steps": 50, "l0_range": [1, 4]}
    steps.train_sae(sae_cfg=dense, **run)
    log = artifacts.read_table(tmp_path / "log.parquet", "md_sae_log").row(0, named=True)
    assert log["l0_in_range"] is False and log["l0"] > 4 and log["l0_hi"] == 4
    assert md_summary.model_diff_sae_sparsity_passed(log) is False
    with pytest.raises(ValueError, match=r"sae.l0_range: .* outside \[1, 4\]"):
        steps.train_sae(sae_cfg={**dense, "l0_action": "fail"}, **{**run, "out": str(tmp_path / "x.pt")})
    assert not (tmp_path / "x.pt").exists()
    steps.train_sae(sae_cfg={**dense, "l0_range": None}, **run)
    log = artifacts.read_table(tmp_path / "log.parquet", "md_sae_log").row(0, named=True)
    assert log["l0_in_range"] is None and md_summary.model_diff_sae_sparsity_passed(log) is None


def _config_problems(mutate) -> str:
    """The error the default config gives after `mutate` (its model_diff experiment is `diff`)."""
    import yaml

    from alignlab import config
    from workflow import REPO

    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    mutate(raw["experiments"]["diff"])
    with pytest.raises(config.ConfigError) as err:
        config.load(raw, REPO)
    return str(err.value)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.update(references={"r": {"like": "nope"}}),
         "experiments.diff: Value error, references.r.like: 'nope' is not among the pairs"),
        (lambda d: d.update(references={"sdf": {"like": "sdf"}}), "references.sdf: the name is already a pair's"),
        (lambda d: d.update(references={"r": {"like": "sdf", "tolerance": 2}}), "experiments.diff.references.r.tolerance"),
        (lambda d: d.update(references={"r": {"of": "sdf"}}), "experiments.diff.references.r.of"),
        (lambda d: d["sae"].update(l0_range=[50, 10]), "experiments.diff.sae: Value error, l0_range: expected [lo, hi]"),
        (lambda d: d["sae"].update(l0_range=[5000, 6000]), "l0_range: lo 5000.0 is above d_hidden"),
        (lambda d: d["sae"].update(l0_action="warn"), "experiments.diff.sae.l0_action"),
        (lambda d: d.update(bootstrap={"n_resamples": 10}), "experiments.diff.bootstrap.n_resamples"),
        (lambda d: d.update(bootstrap={"confidence": 1.5}), "experiments.diff.bootstrap.confidence"),
        (lambda d: d["texts"].update(exclude=[{"path": "nowhere.csv"}]),
         "experiments.diff.texts.exclude.0.path: file 'nowhere.csv' does not exist"),
        (lambda d: d["texts"].update(exclude=[{"path": "train.txt"}]), "experiments.diff.texts.exclude.0.path: expected a .csv"),
    ],
)
def test_bad_issue19_config_names_the_key(mutate, expected):
    assert expected in _config_problems(mutate)


def test_texts_held_out_drops_excluded_documents(tmp_path):
    """texts.exclude: texts found in another table (a fine-tune's training set) are left out, so
    the pairs are measured on held-out documents; too few left fails naming the key."""
    import yaml

    packaged = yaml.safe_load(steps.TEXTS_FILE.read_text())["texts"]
    assert len(packaged) >= 200 and len(set(packaged)) == len(packaged)
    seen = tmp_path / "train.jsonl"
    pl.DataFrame({"doc": packaged[:5]}).write_ndjson(seen)
    steps.make_texts(texts={**TEXTS, "exclude": [{"path": str(seen), "column": "doc"}]}, experiment="d",
                     out=str(tmp_path / "t.parquet"))
    got = artifacts.read_table(tmp_path / "t.parquet", "md_texts")["text"].to_list()
    assert got == packaged[5:17] and not set(got) & set(packaged[:5])
    with pytest.raises(ValueError, match="texts.exclude.0.column"):
        steps.make_texts(texts={**TEXTS, "exclude": [{"path": str(seen), "column": "text"}]}, experiment="d",
                         out=str(tmp_path / "u.parquet"))
    everything = tmp_path / "all.csv"
    pl.DataFrame({"text": packaged}).write_csv(everything)
    with pytest.raises(ValueError, match="after dropping 228 found in texts.exclude"):
        steps.make_texts(texts={**TEXTS, "exclude": [{"path": str(everything), "column": "text"}]}, experiment="d",
                         out=str(tmp_path / "v.parquet"))


def test_issue19_config_defaults_and_pipeline_exclude():
    """The default config's references and SAE target load; an exclude table another experiment
    writes is accepted before it exists (Snakemake builds it first)."""
    import yaml

    from alignlab import config
    from alignlab.kinds.model_diff import pairs as md_pairs
    from workflow import REPO

    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    raw["experiments"]["diff"]["texts"]["exclude"] = [{"path": "results/af/documents/setting.parquet"}]
    exp = config.load(raw, REPO).experiments["diff"]
    assert exp.references["random_sdf"].like == "sdf" and exp.all_pairs()[-2:] == ["random_sdf", "random_positive_control"]
    assert md_pairs.sources(exp)["random_sdf"] == "random like sdf"
    assert md_pairs.tuned_folder("diff", exp, "random_sdf").endswith("diff/references/random_sdf")
    assert "results/af/documents/setting.parquet" in md_pairs.texts_inputs(exp)["code"]
    assert exp.sae.l0_range == [4, 128] and exp.sae.l0_action == "flag"
