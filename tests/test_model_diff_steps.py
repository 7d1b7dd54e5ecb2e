"""The model_diff experiment's steps (model_diff_steps.py) on tiny model folders: a random
2-layer Llama with a character-level tokenizer built here (no model files, seconds). The base
against itself, against a LoRA adapter merged in, and against two perturbed copies: tables with
their declared schemas, the identity control exact, and the ranking by how far each moved."""

from __future__ import annotations

import copy

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
       "tied": False}


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

    tuned = {"self": folders["base"], "lora": tmp_path / "merged", "small": folders["small"], "large": folders["large"]}
    pairs = {}
    for pair, folder in tuned.items():
        files = {t: str(tmp_path / pair / f"{t}.parquet") for t in ("weights", "activations", "sae")}
        steps.compare(texts_path=texts, base_dir=str(folders["base"]), tuned_dir=str(folder),
                      sae_path=str(tmp_path / "sae.pt"), texts_cfg=TEXTS, batch_size=4, experiment="d", pair=pair,
                      device="cpu", weights_out=files["weights"], activations_out=files["activations"],
                      sae_out=files["sae"], figure=str(tmp_path / pair / "layers.png"))
        assert (tmp_path / pair / "layers.png").stat().st_size > 0
        pairs[pair] = files

    sources = {p: str(f) for p, f in tuned.items()}
    sources["self"] = "model:base"
    model_info = tmp_path / "model.parquet"
    index = {name: None for name in artifacts.SCHEMAS["model"].names}
    artifacts.write_table([{**index, "model": "base", "n_parameters": 2_000_000}], model_info, "model")
    steps.aggregate(**{t: [pairs[p][t] for p in sources] for t in ("weights", "activations", "sae")},
                    model_info=str(model_info), sources=sources, experiment="d", base="base",
                    more_steps=["small", "large"], metrics_out=str(tmp_path / "metrics.parquet"),
                    replication_out=str(tmp_path / "replication.parquet"), summary_out=str(tmp_path / "summary.md"))
    m = {r["pair"]: r for r in artifacts.read_table(tmp_path / "metrics.parquet", "md_metrics").iter_rows(named=True)}
    assert m["self"]["global_mean_cosine"] == 1.0 and m["self"]["weight_relative_change"] == 0.0
    assert m["self"]["sae_ve_base"] == m["self"]["sae_ve_tuned"]
    assert m["large"]["rank"] == 1 and m["self"]["rank"] == 4
    assert m["large"]["weight_relative_change"] > m["small"]["weight_relative_change"] > 0
    assert 0 < m["lora"]["weight_relative_change"]
    # only the adapted matrices moved (bf16 rounding aside, the others are bit-identical)
    w = artifacts.read_table(tmp_path / "lora" / "weights.parquet", "md_weights")
    moved = set(w.filter(pl.col("delta_norm") > 0)["matrix"].to_list())
    assert moved and moved <= {"self_attn.q_proj.weight", "mlp.down_proj.weight"}
    summary = (tmp_path / "summary.md").read_text()
    assert "| 1 | `large` |" in summary and "Kutsyk" in summary
    assert "**Identity control (`self`) PASSED**" in summary
    card = artifacts.read_table(tmp_path / "replication.parquet", "replication")
    assert set(card["metric"]) == {f"{p}: global_mean_cosine" for p in ("lora", "small", "large")}  # not self
    assert set(card["published"]) == {0.6691, 0.9648} and not card["comparable"].any()
    assert "not comparable (Gemma-2b vs Gemma-2b-Python-codes (2B) vs base (2M))" in summary

    assert md_summary.model_diff_identity_passed(pl.read_parquet(tmp_path / "metrics.parquet"), "small") is False
    # "large" stands in for the fine-tune with more steps; swapped, the check fails
    assert "**More-steps check PASSED**: `large` (more steps)" in summary
    metrics = pl.read_parquet(tmp_path / "metrics.parquet")
    assert md_summary.model_diff_more_steps_passed(metrics, "large", "small") is False
    assert md_summary.model_diff_more_steps_passed(metrics, "small", "absent") is None
