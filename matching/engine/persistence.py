"""Saving and loading an engine folder; nothing is tokenised or encoded again on load.

Layout of a saved engine (FORMAT_VERSION 5: count matrices, BM25 best-segment ratios, column-major weights):
- `engine.json`: weights, exact_max, count, embedder name, build times, format, vector backend;
- `documents.jsonl`: one document a line, in row order (its "fields" only when it has any);
- `bm25_word/`, `bm25_char/`, `bm25_name/`, `tfidf/`: the lexical channels (matching.lexical; loadable
  memory-mapped);
- `embedder/` and `vectors.faiss` + `vectors.faiss.json`: the embedder and its vector index (the name is kept for
  saved engines; each backend decides what it writes there, its metadata file names the backend);
- `learned.pkl`: the adopted learned model, if any (our own file, written and read locally).
An engine saved in another format is refused (ValueError): it is rebuilt, not converted.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matching.embedders.base import Embedder
from matching.engine.channels import LexicalChannels
from matching.engine.dense import DenseChannel
from matching.engine.features import LearnedReranker
from matching.engine.pool import Document, Pool
from matching.fusion import FusionWeights
from matching.lexical import BM25Channel, CharTfidfChannel
from matching.vectors import load_vector_index, meta_path

# 2: count matrices + column-major weights, no token lists; 3: dense moments, dense re-ranker features; 4: BM25
# best-segment ratios and the segment share (matching.segments); 5: the name channel
FORMAT_VERSION = 5
ENGINE_FILE = "engine.json"
VECTORS_FILE = "vectors.faiss"
LEARNED_FILE = "learned.pkl"


@dataclass
class Settings:
    """What engine.json records besides the pool (the engine's constructor arguments and build times)."""

    weights: FusionWeights
    exact_max: int
    vector_backend: str
    built_at: float
    build_seconds: float


def save_folder(
    folder: Path,
    pool: Pool,
    lexical: LexicalChannels,
    dense: DenseChannel,
    learned: LearnedReranker | None,
    settings: Settings,
) -> None:
    """Write the pool, lexical channels, vectors, embedder and learned model into `folder` (pending changes
    already applied)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "documents.jsonl", "w", encoding="utf-8") as fh:
        for d in pool.docs.values():
            row = {"id": d.id, "name": d.name, "text": d.text, "products": d.products}
            if d.fields is not None:  # only then: documents without fields are written as before
                row["fields"] = d.fields
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    lexical.bm25.save(folder / "bm25_word")
    lexical.char.save(folder / "bm25_char")
    lexical.name.save(folder / "bm25_name")
    lexical.tfidf.save(folder / "tfidf")
    if dense.embedder is not None:
        from matching.embedders import save_embedder

        save_embedder(dense.embedder, folder / "embedder")
        if dense.index is not None:
            dense.index.save(folder / VECTORS_FILE)
            dense.save_moments(folder)
    path = folder / LEARNED_FILE
    if learned is not None:
        with open(path, "wb") as fh:  # our own file, written and read locally
            pickle.dump(learned, fh)
    elif path.exists():
        path.unlink()
    meta = {
        "weights": settings.weights.as_dict(),
        "exact_max": settings.exact_max,
        "count": len(pool.docs),
        "embedder": getattr(dense.embedder, "name", None),
        "built_at": settings.built_at,
        "build_seconds": settings.build_seconds,
        "format": FORMAT_VERSION,
        "vector_backend": settings.vector_backend,
    }
    (folder / ENGINE_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def read_settings(folder: Path) -> tuple[Settings, Embedder | None]:
    """(the saved settings, the saved embedder or None); ValueError when saved in another format."""
    folder = Path(folder)
    meta = json.loads((folder / ENGINE_FILE).read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"engine format {meta.get('format')} is not {FORMAT_VERSION}; rebuild the index")
    embedder: Embedder | None = None
    if meta.get("embedder"):
        from matching.embedders import load_embedder

        embedder = load_embedder(folder / "embedder")
    settings = Settings(
        FusionWeights.from_dict(meta["weights"]),
        meta.get("exact_max", 200_000),
        meta.get("vector_backend", "faiss"),
        meta.get("built_at", 0.0),
        meta.get("build_seconds", 0.0),
    )
    return settings, embedder


def load_pool(folder: Path, pool: Pool, lexical: LexicalChannels, dense: DenseChannel, mmap: bool) -> None:
    """Fill an engine's empty pool, channels and vector index from `folder`. With `mmap`, the lexical matrices
    stay in their files (read-only pages the OS shares between processes, e.g. several web workers)."""
    folder = Path(folder)
    with open(folder / "documents.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            doc = Document(int(row["id"]), row["name"], row["text"], row.get("products", ""), row.get("fields"))
            pool.docs[doc.id] = doc
    pool.set_rows(np.fromiter(pool.docs.keys(), dtype=np.int64, count=len(pool.docs)))
    lexical.bm25 = BM25Channel.load(folder / "bm25_word", mmap=mmap)
    lexical.char = BM25Channel.load(folder / "bm25_char", mmap=mmap)
    lexical.name = BM25Channel.load(folder / "bm25_name", mmap=mmap)
    lexical.tfidf = CharTfidfChannel.load(folder / "tfidf", mmap=mmap)
    # The metadata file, not the index file: another backend may keep its data elsewhere (or in a service).
    if dense.embedder is not None and meta_path(folder / VECTORS_FILE).exists():
        dense.index = load_vector_index(folder / VECTORS_FILE)
        dense.load_moments(folder)


def load_learned(folder: Path) -> LearnedReranker | None:
    """The saved learned model, or None."""
    path = Path(folder) / LEARNED_FILE
    if not path.exists():
        return None
    with open(path, "rb") as fh:
        model: LearnedReranker = pickle.load(fh)
    return model
