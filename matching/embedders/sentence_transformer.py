"""A local sentence-transformers model as an embedder, run by torch or by ONNX Runtime (matching.embedders.onnx_runtime).

The model's own prompts (config_sentence_transformers.json, e.g. e5's "query: " / "passage: ") are applied here:
queries get the query prompt and firm profiles the document prompt, whichever backend runs the model.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from matching.embedders import onnx_export, onnx_runtime
from matching.embedders.base import (
    DEFAULT_BACKEND,
    DEFAULT_BATCH,
    EMBEDDER_FILE,
    TORCH,
    EmbedderUnavailableError,
    normalise_rows,
)
from matching.embedders.local_models import (
    ST_PREFIX,
    load_torch_sentence_transformer,
    model_folder,
    read_prompts,
    resolve_model_ref,
)

logger = logging.getLogger("matching.embedders")

MAX_SEQ_LENGTH = 256  # tokens; profiles are short and longer input only costs time (measured in docs/matching.md)
# Queries are encoded one by one: with int8 ONNX a text's vector depends a little on the batch it runs in (activations
# are quantised per batch; cosine ≥ 0.997), so a link scored in a batch (the hubness bank, a firm's fitting links)
# would score otherwise than the same link searched alone, and a firm's score would differ between pages. Short link
# texts gain nothing from batching on a CPU (551 demo links: 12.5 s one by one, 13.0 s in batches of 32).
QUERY_BATCH = 1
QUERY_CACHE_SIZE = 2048  # query vectors kept: a chain's link texts are searched again and again (pages, filters)


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder or the local cache (e.g. a copy of BAAI/bge-small-zh-v1.5).

    `backend`: "torch" runs the model with sentence-transformers; "onnx" / "onnx-int8" run its transformer exported
    to ONNX (fp32 / int8 dynamic quantisation) with onnxruntime, exported once into `cache_dir` and reused;
    "auto" is onnx-int8 when onnxruntime can be imported, else torch. A backend that cannot be used falls back to
    torch with a logged warning. `threads`: onnxruntime threads (0: one per available CPU).
    """

    cheap_to_encode = False

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        backend: str = DEFAULT_BACKEND,
        threads: int = 0,
        cache_dir: str | Path | None = None,
        max_seq_length: int = MAX_SEQ_LENGTH,
    ) -> None:
        self.model_ref = resolve_model_ref(model)
        self.requested_backend = check_backend(backend)
        self.threads = max(0, int(threads or 0))
        self.cache_dir = Path(cache_dir).expanduser().resolve() if cache_dir else None
        self.max_seq_length = int(max_seq_length)
        self.query_prompt, self.document_prompt = read_prompts(model_folder(self.model_ref))
        self._model: Any = None  # sentence-transformers model (torch backend; untyped)
        self._onnx: onnx_runtime.OnnxEncoder | None = None  # onnx backends
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()  # query text → vector (LRU)
        self._queries_lock = threading.Lock()
        backend_used, why_not = onnx_runtime.resolve_backend(self.model_ref, self.requested_backend)
        if why_not:
            logger.warning(
                "embedding backend %s is not usable for %s: %s; falling back to torch",
                self.requested_backend,
                self.model_ref,
                why_not,
            )
        self.backend = backend_used
        self.name = st_embedder_name(self.model_ref, backend_used)
        if backend_used == TORCH:
            st_model = self._model = load_torch_sentence_transformer(self.model_ref, device)
            dim = (getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension)()
            if getattr(st_model, "max_seq_length", None) and st_model.max_seq_length > self.max_seq_length:
                st_model.max_seq_length = self.max_seq_length
        else:
            self._onnx = _load_onnx(self.model_ref, backend_used, self.cache_dir, self.threads, self.max_seq_length)
            dim = self._onnx.dim
        if not dim:
            raise EmbedderUnavailableError(f"模型 {model} 未给出向量维度 (model reports no embedding dimension)")
        self.dim = int(dim)

    @property
    def tokenizer(self) -> Any:
        """The model's own tokenizer (whichever backend runs it)."""
        return self._onnx.tokenizer if self._onnx is not None else self._model.tokenizer

    def fit(self, texts: Sequence[str]) -> None:
        """Pretrained: nothing to learn from the pool."""

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Firm profile vectors (with the model's document prompt, if it has one)."""
        return self._encode([self.document_prompt + (t or "") for t in texts], batch_size)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Chain-link query vectors (with the model's query prompt, if it has one); recent ones come from a cache
        (one transformer pass costs ~20 ms, a candidates search a few)."""
        texts = [t or "" for t in texts]
        with self._queries_lock:
            known = {t: self._queries[t] for t in texts if t in self._queries}
            for t in known:
                self._queries.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = self._encode([self.query_prompt + t for t in missing], QUERY_BATCH)
            with self._queries_lock:
                for t, v in zip(missing, fresh):
                    known[t] = self._queries[t] = v
                while len(self._queries) > QUERY_CACHE_SIZE:
                    self._queries.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([known[t] for t in texts]).astype(np.float32, copy=False)

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
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
        spec = {
            "type": "sentence-transformers",
            "name": self.name,
            "model": self.model_ref,
            "dim": self.dim,
            "backend": self.backend,
            "requested_backend": self.requested_backend,
            "threads": self.threads,
            "onnx_cache": str(self.cache_dir) if self.cache_dir else None,
            "max_seq_length": self.max_seq_length,
        }
        (folder / EMBEDDER_FILE).write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "SentenceTransformerEmbedder":
        spec = json.loads((Path(folder) / EMBEDDER_FILE).read_text(encoding="utf-8"))
        # State saved before backends existed ran on torch.
        return cls(
            spec["model"],
            backend=spec.get("backend") or TORCH,
            threads=spec.get("threads") or 0,
            cache_dir=spec.get("onnx_cache"),
            max_seq_length=spec.get("max_seq_length") or MAX_SEQ_LENGTH,
        )


def check_backend(backend: str | None) -> str:
    """The backend name for a config value; an unknown one raises EmbedderUnavailableError (shown to the user)."""
    try:
        return onnx_runtime.check_backend(backend)
    except ValueError as exc:
        raise EmbedderUnavailableError(str(exc)) from exc


def st_embedder_name(model_ref: str, backend: str) -> str:
    """The embedder name: `st:<model>` on torch, `st:<model>#onnx` / `#onnx-int8` on ONNX Runtime.

    The backend is part of the name because its vectors differ slightly (int8 most), so an index built with one
    backend is not searched with queries encoded by another.
    """
    return ST_PREFIX + model_ref + ("" if backend == TORCH else "#" + backend)


def _load_onnx(
    model_ref: str, backend: str, cache_dir: Path | None, threads: int, max_seq_length: int
) -> onnx_runtime.OnnxEncoder:
    folder = model_folder(model_ref)
    cache = cache_dir or onnx_runtime.default_cache_dir()
    try:
        assert folder is not None  # resolve_backend chose ONNX: the model folder exists
        target, spec = onnx_export.ensure_export(model_ref, folder, cache, backend, max_seq_length)
        return onnx_runtime.OnnxEncoder(folder, target, spec, backend, threads, max_seq_length)
    except EmbedderUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - export or session failures all mean: use another backend
        raise EmbedderUnavailableError(
            f"无法以 {backend} 后端运行嵌入模型 {model_ref}，可将 CHAINMATCH_EMBEDDING_BACKEND 设为 torch。 "
            f"(cannot run embedding model {model_ref} with the {backend} backend; set "
            f"CHAINMATCH_EMBEDDING_BACKEND=torch to use torch) [{type(exc).__name__}: {exc}]"
        ) from exc
