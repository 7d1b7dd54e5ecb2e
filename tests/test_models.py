import json

import polars as pl
import pytest

from alignlab import artifacts, models


def test_packaged_gguf_becomes_a_hugging_face_folder(model_dir):
    models.check_hf_folder(model_dir)
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["num_hidden_layers"] == 30
    assert cfg.get("quantization_config") is None
    assert (model_dir / "chat_template.jinja").is_file()


def test_local_folder_is_linked_and_indexed(model_dir, tmp_path):
    spec = {"source": "hf_folder", "path": str(model_dir)}
    models.build("copy", spec, str(tmp_path / "hf"), str(tmp_path / "model.parquet"))
    assert (tmp_path / "hf/model.safetensors").is_symlink()
    row = artifacts.read_table(tmp_path / "model.parquet").row(0, named=True)
    assert row["n_parameters"] == 134_515_008 and row["hidden_size"] == 576
    assert row["weights_sha256"] == models.weights_digest(model_dir)


def test_folder_without_tokenizer_is_named(model_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "model.safetensors"):
        (broken / name).symlink_to(model_dir / name)
    with pytest.raises(models.ModelError, match=f"model folder {broken} has no tokenizer"):
        models.build("b", {"source": "hf_folder", "path": str(broken)}, str(tmp_path / "out"), str(tmp_path / "i.parquet"))
    assert not (tmp_path / "out").exists() and not (tmp_path / "i.parquet").exists()


def test_missing_package_is_named():
    with pytest.raises(models.ModelError, match="package 'no_such_model_pkg' is not installed"):
        models.package_folder("no_such_model_pkg")
