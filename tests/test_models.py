import json

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


def partial_copy(model_dir, folder, leave_out=("tokenizer.json",)):
    """`folder` linking to every file of the model folder except `leave_out`."""
    folder.mkdir(parents=True)
    for item in model_dir.iterdir():
        if item.name not in leave_out:
            (folder / item.name).symlink_to(item)
    return folder


def test_folder_without_tokenizer_is_named(model_dir, tmp_path):
    # tokenizer_config.json stays: it is not a tokenizer (transformers fails without a vocabulary).
    broken = partial_copy(model_dir, tmp_path / "broken")
    assert (broken / "tokenizer_config.json").exists()
    with pytest.raises(models.ModelError) as err:
        models.build("b", {"source": "hf_folder", "path": str(broken)}, str(tmp_path / "out"), str(tmp_path / "i.parquet"))
    assert str(err.value) == (
        f"model folder {broken} (config key models.b.path) has no tokenizer: none of "
        "tokenizer.json, vocab.json, vocab.txt, tekken.json, *.model, *.tiktoken is there"
    )
    assert not (tmp_path / "out").exists() and not (tmp_path / "i.parquet").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_pipeline_folder_whose_tokenizer_link_broke_names_its_config_key(model_dir, tmp_path):
    """A materialized hf_folder model links to its source; if the source loses its tokenizer,
    steps that open the folder name the broken link, the config key and the way out."""
    source = partial_copy(model_dir, tmp_path / "source", leave_out=())
    folder, index = tmp_path / "results/models/mine/hf", tmp_path / "results/models/mine/model.parquet"
    models.build("mine", {"source": "hf_folder", "path": str(source)}, str(folder), str(index))
    models.check_hf_folder(folder)
    (source / "tokenizer.json").unlink()
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer.json").symlink_to(source / "tokenizer.json")  # as if linked before
    with pytest.raises(models.ModelError) as err:
        models.check_hf_folder(folder)
    assert str(err.value) == (
        f"model folder {folder} (config key models.mine.path) has no tokenizer: none of "
        "tokenizer.json, vocab.json, vocab.txt, tekken.json, *.model, *.tiktoken is there "
        f"(tokenizer.json links to {source / 'tokenizer.json'}, which is gone); delete the folder "
        "and rerun to have step 'materialize_model' rebuild it"
    )


def test_every_missing_part_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    assert models.folder_problems(tmp_path / "empty") == [
        "has no config.json",
        "has no tokenizer: none of tokenizer.json, vocab.json, vocab.txt, tekken.json, *.model, *.tiktoken is there",
        "has no weights (*.safetensors or *.bin)",
    ]
    assert models.folder_problems(tmp_path / "nowhere") == ["does not exist"]


def test_steps_that_open_a_model_folder_check_it_first(model_dir, tmp_path):
    from alignlab import finetune, sampling

    broken = partial_copy(model_dir, tmp_path / "broken")
    for opener in (finetune.load_tokenizer, lambda d: finetune.load_base(d, "cpu"), sampling.Engine,
                   lambda d: sampling.check_inputs(d, [], {"lora": "request", "max_lora_rank": 16})):
        with pytest.raises(models.ModelError, match=f"model folder {broken} has no tokenizer"):
            opener(str(broken))


def test_missing_package_is_named():
    with pytest.raises(models.ModelError, match="package 'no_such_model_pkg' is not installed"):
        models.package_folder("no_such_model_pkg")
