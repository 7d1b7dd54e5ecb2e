"""What a config asks of a model, checked against the model before any job uses it.

A model's shape (architecture, layer count, context length, chat template, module names) is
read from what is on disk without loading any weights: the GGUF file's metadata, or a Hugging
Face folder's config.json and tokenizer files (the source folder, or the pipeline's
materialized one, results/models/<key>/hf, when it was built from the same spec). A hub model
not yet downloaded cannot be read; it is checked at the end of materialization instead.

What a config asks (`Need`s: which layers, how long a context, which LoRA target modules, a
chat template) is listed by config.model_needs; `problems` says which the model cannot meet,
naming the config key, the value and what the model allows.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from alignlab.artifacts import atomic_path, sha256_text

PACKAGED_CHAT_TEMPLATES = ("plain",)


@dataclass(frozen=True)
class ModelInfo:
    architecture: str
    n_layers: int
    context_length: int | None
    chat_template: str | None  # the template the pipeline will use (the config's, else the model's)
    read_from: str  # where the facts came from, for messages: a folder, or a GGUF file's metadata
    config_folder: Path | None = None  # a folder with config.json (module names are read from it)
    gguf: Path | None = None


@dataclass(frozen=True)
class Need:
    """`key` (a config key) asks `what` of its model: "chat" (a chat template), "layers" (each
    of `value` exists), "context" (at least `value` tokens) or "modules" (LoRA target modules
    `value` exist)."""

    key: str
    what: str
    value: Any = None


# ---- chat templates -------------------------------------------------------------------------

def chat_template_text(value: str, base_dir: Path | str = ".") -> str:
    """The text of a `chat_template` setting: a packaged template name or a path to a Jinja file."""
    if value in PACKAGED_CHAT_TEMPLATES:
        return (resources.files("alignlab") / "templates" / "chat" / f"{value}.jinja").read_text()
    return (Path(base_dir) / value).read_text()


def folder_chat_template(folder: Path) -> str | None:
    """The chat template transformers (and so vLLM and PEFT) would load from a folder: the
    chat_template.jinja file wins over tokenizer_config.json's entry; of several named
    templates the default."""
    folder = Path(folder)
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text()
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return None
    template = json.loads(config.read_text()).get("chat_template")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template}
        template = named.get("default")
    return template or None


def chat_template_sha256(folder: Path | str) -> str:
    """sha256 of a model folder's chat template ("" when it has none)."""
    template = folder_chat_template(Path(folder))
    return sha256_text(template) if template else ""


# ---- reading a model's shape --------------------------------------------------------------

def _text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Multimodal configs (e.g. Gemma 3's) keep the language model's shape under text_config."""
    return {**(cfg.get("text_config") or {}), **cfg}


def from_folder(folder: Path) -> ModelInfo:
    folder = Path(folder)
    cfg = _text_config(json.loads((folder / "config.json").read_text()))
    return ModelInfo(
        architecture=",".join(cfg.get("architectures") or [cfg.get("model_type", "?")]),
        n_layers=int(cfg["num_hidden_layers"]),
        context_length=cfg.get("max_position_embeddings"),
        chat_template=folder_chat_template(folder),
        read_from=str(folder),
        config_folder=folder,
    )


def _cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alignlab" / "gguf-info"


@lru_cache(maxsize=16)
def _gguf_fields(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """The metadata fields read, cached on disk by the file's path, size and modification time:
    parsing a GGUF file's whole metadata (its vocabulary too) takes seconds, and every config
    check would pay it until the model is materialized."""
    cached = _cache_folder() / f"{sha256_text(json.dumps([path, mtime_ns, size]))}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    import gguf

    reader = gguf.GGUFReader(path)
    arch = reader.fields["general.architecture"].contents()
    wanted = {
        "architecture": "general.architecture", "n_layers": f"{arch}.block_count",
        "context_length": f"{arch}.context_length", "chat_template": "tokenizer.chat_template",
    }
    fields = {name: reader.fields[k].contents() if k in reader.fields else None for name, k in wanted.items()}
    try:
        with atomic_path(cached) as tmp:
            tmp.write_text(json.dumps(fields))
    except OSError:
        pass  # a read-only home only costs the next check the same seconds
    return fields


def from_gguf(path: Path) -> ModelInfo:
    """From the GGUF file's metadata."""
    stat = Path(path).stat()
    fields = _gguf_fields(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    return ModelInfo(
        architecture=fields["architecture"], n_layers=int(fields["n_layers"]),
        context_length=fields["context_length"], chat_template=fields["chat_template"] or None,
        read_from=f"the GGUF metadata of {path}", gguf=Path(path),
    )


def materialized(folder: Path, spec: dict[str, Any]) -> bool:
    """Whether `folder` (results/models/<key>/hf) was built from `spec` (its index says so)."""
    index = Path(folder).parent / "model.parquet"
    if not (Path(folder) / "config.json").is_file() or not index.is_file():
        return False
    import pyarrow.parquet as pq

    try:
        row = pq.read_table(index, columns=["spec"]).to_pylist()[0]
    except Exception:  # noqa: BLE001 - an unreadable index: read the source instead
        return False
    return row["spec"] == json.dumps(spec, sort_keys=True)


def for_spec(spec: dict[str, Any], base_dir: Path, built: Path) -> ModelInfo | None:
    """What can be read of the model `spec` names before its materialization runs (None: not
    yet, a hub model not downloaded). `built` is where materialization puts its folder."""
    from alignlab.models import gguf_location

    if materialized(built, spec):
        return from_folder(built)
    source = spec["source"]
    if source in ("packaged_gguf", "gguf"):
        location = gguf_location(spec)
        info = from_gguf(location if location.is_absolute() else base_dir / location)
    elif source == "hf_folder":
        info = from_folder(base_dir / spec["path"])
    else:
        return None
    if spec.get("chat_template"):
        info = replace(info, chat_template=chat_template_text(spec["chat_template"], base_dir))
    return info


def linear_modules(info: ModelInfo) -> list[str]:
    """The full names of the model's linear modules below the output layer (what a LoRA may
    target), from its architecture built on the meta device: no weight is read or allocated."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if info.config_folder is not None:
        config = AutoConfig.from_pretrained(info.config_folder)
    else:
        config = AutoConfig.from_pretrained(info.gguf.parent, gguf_file=info.gguf.name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    output = model.get_output_embeddings()
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not output]


# ---- checking what a config asks of it ----------------------------------------------------

def problems(model_key: str, info: ModelInfo, needs: list[Need]) -> list[str]:
    """One message per need of `needs` the model `info` cannot meet."""
    found = []
    linear: list[str] | None = None  # built only when a need lists modules
    for need in needs:
        if need.what == "chat" and not info.chat_template:
            found.append(
                f"models.{model_key}: the model has no chat template (none in {info.read_from}), and "
                f"{need.key} chats with it. Set models.{model_key}.chat_template: 'plain' (role-labelled "
                "turns, for a base model) or a path to a Jinja chat template file"
            )
        elif need.what == "layers":
            bad = [layer for layer in need.value if layer >= info.n_layers]
            if bad:
                found.append(
                    f"{need.key}: layer{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))} of "
                    f"{list(need.value)} not in model '{model_key}' ({info.architecture}, "
                    f"{info.n_layers} layers: 0 to {info.n_layers - 1})"
                )
        elif need.what == "context" and info.context_length and need.value > info.context_length:
            found.append(
                f"{need.key}: {need.value} tokens exceeds the context length of model '{model_key}' "
                f"({info.context_length} tokens, from {info.read_from})"
            )
        elif need.what == "modules":
            linear = linear_modules(info) if linear is None else linear
            # PEFT's rule for a list: a module matches a name equal to it or ending in "." + it.
            missing = [m for m in need.value if not any(n == m or n.endswith(f".{m}") for n in linear)]
            if missing:
                names = sorted({n.rsplit(".", 1)[-1] for n in linear})
                found.append(
                    f"{need.key}: no linear module named {', '.join(map(repr, missing))} in model "
                    f"'{model_key}' ({info.architecture}); its linear modules are {', '.join(names)} "
                    "(or use 'all-linear')"
                )
    return found
