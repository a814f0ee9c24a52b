"""What every embedder is: the protocol, its errors and the row normalisation they share.

An embedder turns texts into L2-normalised float32 rows. Documents (firm profiles) and queries (chain-link texts)
are encoded by two methods because some models encode them differently (e5 prefixes "passage: " / "query: ");
the prefixes stay inside the embedder, callers never add them.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

EMBEDDER_FILE = "embedder.json"  # which embedder class a saved folder holds
DEFAULT_BATCH = 256
# How a sentence-transformers model runs (CHAINMATCH_EMBEDDING_BACKEND); see matching.embedders.onnx_runtime.
AUTO, TORCH, ONNX, ONNX_INT8 = "auto", "torch", "onnx", "onnx-int8"
BACKENDS = (AUTO, TORCH, ONNX, ONNX_INT8)
DEFAULT_BACKEND = AUTO


@runtime_checkable
class Embedder(Protocol):
    name: str  # stable identity saved in index metadata: vectors of two names are never mixed
    dim: int
    cheap_to_encode: bool  # True when encoding costs about as much as tokenising (no transformer forward pass)

    def fit(self, texts: Sequence[str]) -> None: ...

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Document (firm profile) vectors, one unit row per text."""

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query (chain-link text) vectors, one unit row per text."""

    def save(self, folder: Path) -> None: ...

    @classmethod
    def load(cls, folder: Path) -> "Embedder": ...


class EmbedderUnavailableError(RuntimeError):
    """The configured embedding model cannot be loaded locally."""


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def folder_name(embedder_name: str) -> str:
    """A file-system-safe folder name for an embedder name (readable tail + short hash): where an embedder's index
    or vector cache lives."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", embedder_name).strip("-.")[-48:] or "embedder"
    digest = hashlib.sha1(embedder_name.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"
