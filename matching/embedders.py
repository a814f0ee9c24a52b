"""Text embedders: the protocol, a local sentence-transformers embedder, and the factory.

Nothing is ever downloaded: a pretrained model is loaded from a local path or the local Hugging Face cache only.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from matching import onnx_backend
from matching.onnx_backend import BACKENDS, DEFAULT_BACKEND  # noqa: F401  (re-exported for callers)

logger = logging.getLogger(__name__)

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
    """A sentence-transformers model from a local folder or the local cache (e.g. a copy of BAAI/bge-small-zh-v1.5).

    `backend`: "torch" runs the model with sentence-transformers; "onnx" / "onnx-int8" run its transformer exported
    to ONNX (fp32 / int8 dynamic quantisation) with onnxruntime, exported once into `cache_dir` and reused;
    "auto" is onnx-int8 when onnxruntime can be imported, else torch. A backend that cannot be used falls back to
    torch with a logged warning. `threads`: onnxruntime threads (0: one per available CPU).
    """

    def __init__(self, model: str, device: str = "cpu", backend: str = DEFAULT_BACKEND, threads: int = 0,
                 cache_dir: str | Path | None = None) -> None:
        self.model_ref = _resolve(model)
        self.requested_backend = _check_backend(backend)
        self.threads = max(0, int(threads or 0))
        self.cache_dir = Path(cache_dir).expanduser().resolve() if cache_dir else None
        self._model = None  # sentence-transformers model (torch backend)
        self._onnx = None  # OnnxEncoder (onnx backends)
        backend_used, why_not = onnx_backend.resolve_backend(self.model_ref, self.requested_backend)
        if why_not:
            logger.warning("embedding backend %s is not usable for %s: %s; falling back to torch",
                           self.requested_backend, self.model_ref, why_not)
        self.backend = backend_used
        self.name = st_embedder_name(self.model_ref, backend_used)
        if backend_used == onnx_backend.TORCH:
            st_model = self._model = load_torch_sentence_transformer(self.model_ref, device)
            dim = (getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension)()
            if getattr(st_model, "max_seq_length", None) and st_model.max_seq_length > MAX_SEQ_LENGTH:
                st_model.max_seq_length = MAX_SEQ_LENGTH
        else:
            self._onnx = _load_onnx(self.model_ref, backend_used, self.cache_dir, self.threads)
            dim = self._onnx.dim
        if not dim:
            raise EmbedderUnavailableError(f"模型 {model} 未给出向量维度 (model reports no embedding dimension)")
        self.dim = int(dim)

    @property
    def tokenizer(self):
        """The model's own tokenizer (whichever backend runs it)."""
        return self._onnx.tokenizer if self._onnx is not None else self._model.tokenizer

    def fit(self, texts: Sequence[str]) -> None:
        """Pretrained: nothing to learn from the pool."""

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        texts = [t or "" for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._onnx is not None:
            return normalise_rows(self._onnx.encode(texts, batch_size))
        vectors = self._model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return normalise_rows(vectors)

    def save(self, folder: Path) -> None:
        """Record which model and backend to reload; the model files themselves stay where they are."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"type": "sentence-transformers", "name": self.name, "model": self.model_ref, "dim": self.dim,
                "backend": self.backend, "requested_backend": self.requested_backend, "threads": self.threads,
                "onnx_cache": str(self.cache_dir) if self.cache_dir else None}
        (folder / EMBEDDER_FILE).write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "SentenceTransformerEmbedder":
        spec = json.loads((Path(folder) / EMBEDDER_FILE).read_text(encoding="utf-8"))
        # State saved before backends existed ran on torch.
        return cls(spec["model"], backend=spec.get("backend") or onnx_backend.TORCH, threads=spec.get("threads") or 0,
                   cache_dir=spec.get("onnx_cache"))


def _check_backend(backend: str | None) -> str:
    try:
        return onnx_backend.check_backend(backend)
    except ValueError as exc:
        raise EmbedderUnavailableError(str(exc)) from exc


def st_embedder_name(model_ref: str, backend: str) -> str:
    """The embedder name: `st:<model>` on torch, `st:<model>#onnx` / `#onnx-int8` on ONNX Runtime.

    The backend is part of the name because its vectors differ slightly (int8 most), so an index built with one
    backend is not searched with queries encoded by another.
    """
    return ST_PREFIX + model_ref + ("" if backend == onnx_backend.TORCH else "#" + backend)


def _load_onnx(model_ref: str, backend: str, cache_dir: Path | None, threads: int):
    folder = onnx_backend.model_folder(model_ref)
    cache = cache_dir or onnx_backend.default_cache_dir()
    try:
        target, spec = onnx_backend.ensure_export(model_ref, folder, cache, backend, MAX_SEQ_LENGTH)
        return onnx_backend.OnnxEncoder(folder, target, spec, backend, threads)
    except EmbedderUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - export or session failures all mean: use another backend
        raise EmbedderUnavailableError(
            f"无法以 {backend} 后端运行嵌入模型 {model_ref}，可将 CHAINMATCH_EMBEDDING_BACKEND 设为 torch。 "
            f"(cannot run embedding model {model_ref} with the {backend} backend; set "
            f"CHAINMATCH_EMBEDDING_BACKEND=torch to use torch) [{type(exc).__name__}: {exc}]"
        ) from exc


def _resolve(model: str) -> str:
    """Absolute path for a local folder; a cache name is kept as given."""
    model = (model or "").strip()
    if model.startswith(ST_PREFIX):
        model = model[len(ST_PREFIX):]
    head, _, suffix = model.rpartition("#")
    if head and suffix in BACKENDS and not Path(model).expanduser().exists():
        model = head  # an embedder name such as st:/models/bge#onnx-int8
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


def load_torch_sentence_transformer(model_ref: str, device: str = "cpu"):
    """The sentence-transformers model (torch), from local files only."""
    _offline()
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(model_ref, device=device, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any load failure means the same thing to the user
        raise EmbedderUnavailableError(_missing_message(model_ref) + f" [{type(exc).__name__}: {exc}]") from exc


def make_embedder(model: str = "", backend: str = DEFAULT_BACKEND, threads: int = 0,
                  cache_dir: str | Path | None = None) -> Embedder:
    """The embedder for config value `model`: empty → the built-in embedder, else a local sentence-transformers model
    run by `backend` (see SentenceTransformerEmbedder; ONNX exports cached in `cache_dir`)."""
    if not (model or "").strip():
        from matching.builtin_embedder import BuiltinEmbedder

        return BuiltinEmbedder()
    return SentenceTransformerEmbedder(model, backend=backend, threads=threads, cache_dir=cache_dir)


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


def embedder_name_for(model: str, backend: str = DEFAULT_BACKEND) -> str:
    """The `name` the embedder for config values `model` and `backend` will have, without loading it."""
    if not (model or "").strip():
        from matching import builtin_embedder

        return getattr(builtin_embedder, "BUILTIN_NAME", None) or builtin_embedder.BuiltinEmbedder().name
    model_ref = _resolve(model)
    return st_embedder_name(model_ref, onnx_backend.resolve_backend(model_ref, _check_backend(backend))[0])
