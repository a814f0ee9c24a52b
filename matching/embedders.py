"""Text embedders: the protocol, a local sentence-transformers embedder, and the factory.

Nothing is ever downloaded: a pretrained model is loaded from a local path or the local Hugging Face cache only.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

ST_PREFIX = "st:"
EMBEDDER_FILE = "embedder.json"  # which embedder class a saved folder holds
DEFAULT_BATCH = 256
MAX_SEQ_LENGTH = 256  # profiles are short; longer input only costs time


@runtime_checkable
class Embedder(Protocol):
    name: str  # stable identity saved in index metadata
    dim: int

    def fit(self, texts: Sequence[str]) -> None: ...

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...

    @classmethod
    def load(cls, folder: Path) -> "Embedder": ...


class EmbedderUnavailableError(RuntimeError):
    """The configured embedding model cannot be loaded locally."""


def _offline() -> None:
    # Set before transformers / huggingface_hub are imported: they read these once at import time.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder or the local cache (e.g. a copy of BAAI/bge-small-zh-v1.5)."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        self.model_ref = _resolve(model)
        self.name = ST_PREFIX + self.model_ref
        self._model = _load_sentence_transformer(self.model_ref, device)
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = getter()
        if not dim:
            raise EmbedderUnavailableError(f"模型 {model} 未给出向量维度 (model reports no embedding dimension)")
        self.dim = int(dim)
        if getattr(self._model, "max_seq_length", None) and self._model.max_seq_length > MAX_SEQ_LENGTH:
            self._model.max_seq_length = MAX_SEQ_LENGTH

    def fit(self, texts: Sequence[str]) -> None:
        """Pretrained: nothing to learn from the pool."""

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        texts = [t or "" for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return normalise_rows(vectors)

    def save(self, folder: Path) -> None:
        """Record which model to reload; the model files themselves stay where they are."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / EMBEDDER_FILE).write_text(
            json.dumps({"type": "sentence-transformers", "name": self.name, "model": self.model_ref, "dim": self.dim},
                       ensure_ascii=False),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, folder: Path) -> "SentenceTransformerEmbedder":
        spec = json.loads((Path(folder) / EMBEDDER_FILE).read_text(encoding="utf-8"))
        return cls(spec["model"])


def _resolve(model: str) -> str:
    """Absolute path for a local folder; a cache name is kept as given."""
    model = (model or "").strip()
    if model.startswith(ST_PREFIX):
        model = model[len(ST_PREFIX):]
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve())
    looks_like_path = path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1
    if not model or looks_like_path:
        raise EmbedderUnavailableError(_missing_message(model))
    return model  # a cache name such as "BAAI/bge-small-zh-v1.5"


def _missing_message(model: str) -> str:
    return (
        f"找不到嵌入模型 {model}：请把模型下载到本地并将 CHAINMATCH_EMBEDDING_MODEL 设为其路径，"
        f"或留空以使用内置嵌入器。系统不会自动下载模型。 "
        f"(embedding model not found locally: {model}; set CHAINMATCH_EMBEDDING_MODEL to a local folder or leave it "
        f"empty for the built-in embedder; nothing is downloaded)"
    )


def _load_sentence_transformer(model_ref: str, device: str):
    _offline()
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(model_ref, device=device, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any load failure means the same thing to the user
        raise EmbedderUnavailableError(_missing_message(model_ref) + f" [{type(exc).__name__}: {exc}]") from exc


def make_embedder(model: str = "") -> Embedder:
    """The embedder for config value `model`: empty → the built-in embedder, else a local sentence-transformers model."""
    if not (model or "").strip():
        from matching.builtin_embedder import BuiltinEmbedder

        return BuiltinEmbedder()
    return SentenceTransformerEmbedder(model)


def save_embedder(embedder: Embedder, folder: Path) -> None:
    """Save an embedder's state plus a marker naming its class, for `load_embedder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    embedder.save(folder)
    marker = folder / EMBEDDER_FILE
    spec = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}
    spec.setdefault("type", "sentence-transformers" if isinstance(embedder, SentenceTransformerEmbedder) else "builtin")
    spec.update(name=embedder.name, dim=int(embedder.dim))
    marker.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")


def load_embedder(folder: Path) -> Embedder:
    """Load the embedder saved in `folder` by `save_embedder`."""
    folder = Path(folder)
    try:
        spec = json.loads((folder / EMBEDDER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EmbedderUnavailableError(f"嵌入器文件缺失或损坏 (embedder state missing or damaged): {folder}") from exc
    if spec.get("type") == "sentence-transformers":
        return SentenceTransformerEmbedder.load(folder)
    from matching.builtin_embedder import BuiltinEmbedder

    return BuiltinEmbedder.load(folder)


def embedder_name_for(model: str) -> str:
    """The `name` the embedder for config value `model` will have, without loading it (for status displays)."""
    if not (model or "").strip():
        from matching import builtin_embedder

        return getattr(builtin_embedder, "BUILTIN_NAME", None) or builtin_embedder.BuiltinEmbedder().name
    return ST_PREFIX + _resolve(model)
