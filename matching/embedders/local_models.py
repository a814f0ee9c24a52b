"""Finding and loading local sentence-transformers models, offline.

A model is a local folder or a name already in the local Hugging Face cache; nothing is ever downloaded: the hub
libraries are switched to offline mode before they are imported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from matching.embedders.base import BACKENDS, EmbedderUnavailableError

ST_PREFIX = "st:"
# sentence-transformers' prompt names, in the order its encode_query / encode_document look them up.
QUERY_PROMPTS = ("query",)
DOCUMENT_PROMPTS = ("document", "passage", "corpus")


def offline() -> None:
    """Forbid downloads: set before transformers / huggingface_hub are imported (they read these once)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def missing_message(model: str) -> str:
    return (
        f"找不到嵌入模型 {model}：请把模型下载到本地并将 CHAINMATCH_EMBEDDING_MODEL 设为其路径，"
        f"或留空以使用内置的 multilingual-e5-small。系统不会自动下载模型。 "
        f"(embedding model not found locally: {model}; set CHAINMATCH_EMBEDDING_MODEL to a local folder, or leave it "
        f"empty for the bundled multilingual-e5-small; nothing is downloaded)"
    )


def resolve_model_ref(model: str) -> str:
    """Absolute path for a local folder; a cache name is kept as given."""
    model = (model or "").strip()
    if model.startswith(ST_PREFIX):
        model = model[len(ST_PREFIX) :]
    head, _, suffix = model.rpartition("#")
    if head and suffix in BACKENDS and not Path(model).expanduser().exists():
        model = head  # an embedder name such as st:/models/bge#onnx-int8
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve())
    looks_like_path = path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1
    if not model or looks_like_path:
        raise EmbedderUnavailableError(missing_message(model))
    return model  # a cache name such as "BAAI/bge-small-zh-v1.5"


def model_folder(model_ref: str) -> Path | None:
    """The local folder of a model: the path itself, or its snapshot in the local Hugging Face cache."""
    path = Path(model_ref)
    if path.is_dir():
        return path
    if path.is_absolute() or model_ref.startswith((".", "~")):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model_ref, "modules.json")
    except Exception:  # noqa: BLE001 - an invalid repo name simply is not in the cache
        return None
    return Path(found).parent if isinstance(found, str) else None


def read_prompts(folder: Path | None) -> tuple[str, str]:
    """(query prompt, document prompt) the model's config_sentence_transformers.json declares ('' when none)."""
    if folder is None:
        return "", ""
    try:
        config = json.loads((Path(folder) / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "", ""
    prompts = config.get("prompts") or {}

    def first(names: tuple[str, ...]) -> str:
        return next((str(prompts[n]) for n in names if prompts.get(n)), "")

    return first(QUERY_PROMPTS), first(DOCUMENT_PROMPTS)


def load_torch_sentence_transformer(model_ref: str, device: str = "cpu") -> Any:
    """The sentence-transformers model (torch), from local files only."""
    offline()
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # A "Loading weights" bar on every load: noise in the CLI and the logs.
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        return SentenceTransformer(model_ref, device=device, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any load failure means the same thing to the user
        raise EmbedderUnavailableError(missing_message(model_ref) + f" [{type(exc).__name__}: {exc}]") from exc
