"""Which embedder a configuration value means, and saving / loading an embedder beside an index.

Config values (CHAINMATCH_EMBEDDING_MODEL): empty → the bundled multilingual-e5-small, converted once into the
models folder (matching.embedders.e5_bundle); "builtin" → the built-in LSA embedder (no model; tests and fallback);
anything else → a local sentence-transformers model folder or a name already in the local Hugging Face cache.
Nothing is ever downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

from matching.embedders import e5_bundle, onnx_runtime
from matching.embedders.base import DEFAULT_BACKEND, EMBEDDER_FILE, Embedder, EmbedderUnavailableError
from matching.embedders.builtin import BUILTIN_NAME, BuiltinEmbedder
from matching.embedders.local_models import model_folder, resolve_model_ref
from matching.embedders.sentence_transformer import (
    MAX_SEQ_LENGTH,
    SentenceTransformerEmbedder,
    check_backend,
    st_embedder_name,
)

BUILTIN_MODEL = "builtin"
DEFAULT_MODEL = ""  # the bundled multilingual-e5-small


def is_builtin(model: str) -> bool:
    return (model or "").strip().lower() == BUILTIN_MODEL


def is_default(model: str) -> bool:
    return not (model or "").strip()


def _default_folder(models_dir: str | Path | None) -> Path:
    return e5_bundle.default_model_folder(Path(models_dir) if models_dir else e5_bundle.models_dir_default()).resolve()


def make_embedder(
    model: str = DEFAULT_MODEL,
    backend: str = DEFAULT_BACKEND,
    threads: int = 0,
    cache_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    max_seq_length: int = MAX_SEQ_LENGTH,
) -> Embedder:
    """The embedder for config value `model` (see the module docstring), run by `backend` (ONNX exports cached in
    `cache_dir`; the default model converted into `models_dir`)."""
    if is_builtin(model):
        return BuiltinEmbedder()
    if is_default(model):
        try:
            folder = e5_bundle.ensure_default_model(Path(models_dir) if models_dir else e5_bundle.models_dir_default())
        except (OSError, ValueError) as exc:
            raise EmbedderUnavailableError(f"内置嵌入模型不可用：{exc} (bundled embedding model unavailable)") from exc
        model = str(folder)
    return SentenceTransformerEmbedder(
        model, backend=backend, threads=threads, cache_dir=cache_dir, max_seq_length=max_seq_length
    )


def embedder_name_for(
    model: str = DEFAULT_MODEL, backend: str = DEFAULT_BACKEND, models_dir: str | Path | None = None
) -> str:
    """The `name` the embedder for config values `model` and `backend` will have, without loading or converting it."""
    if is_builtin(model):
        return BUILTIN_NAME
    requested = check_backend(backend)
    if is_default(model):
        folder = _default_folder(models_dir)
        if model_folder(str(folder)) is None:  # not converted yet: the converted pipeline is one ONNX runs
            backend = (
                requested
                if requested != "auto"
                else ("onnx-int8" if onnx_runtime.runtime_missing() is None else "torch")
            )
            return st_embedder_name(str(folder), backend)
        model = str(folder)
    model_ref = resolve_model_ref(model)
    return st_embedder_name(model_ref, onnx_runtime.resolve_backend(model_ref, requested)[0])


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
    if spec.get("type") == "static":
        from matching.embedders.static import StaticEmbedder

        try:
            return StaticEmbedder.load(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise EmbedderUnavailableError(
                f"静态嵌入器文件缺失或损坏 (static embedder files missing or damaged): {spec.get('path')}"
            ) from exc
    return BuiltinEmbedder.load(folder)
