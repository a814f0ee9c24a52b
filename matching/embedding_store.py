"""Resumable, batched embedding of a large pool: chunked .npy files plus a manifest.

Each chunk of `chunk_size` texts is encoded, written as `chunk-<start>.npy` (atomically) and recorded in
`manifest.json`; a crash loses at most the chunk in progress, and the next run with the same pool and embedder
resumes after the last recorded chunk. The fitted embedder state is saved beside the chunks, so a resumed run
encodes with exactly the same model (the built-in embedder is fitted on the pool; refitting would change vectors).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matching.vectors.meta import atomic_write_bytes

if TYPE_CHECKING:
    from matching.embedders.base import Embedder

MANIFEST = "manifest.json"
EMBEDDER_DIR = "embedder"
DEFAULT_CHUNK = 50_000
FINGERPRINT_SAMPLE = 64  # texts hashed (spread over the pool) to tell one pool from another cheaply

Progress = Callable[[int, int], None]


def pool_fingerprint(texts: Sequence[str]) -> str:
    """A cheap identity of a text pool: its size and a hash of texts spread evenly over it."""
    n = len(texts)
    digest = hashlib.sha1(str(n).encode())
    step = max(1, n // FINGERPRINT_SAMPLE)
    for i in range(0, n, step):
        digest.update(texts[i].encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


@dataclass
class EmbedResult:
    folder: Path
    count: int
    dim: int
    chunks: int
    chunks_reused: int
    seconds: float  # encoding time of this run
    texts_per_s: float  # over the chunks encoded in this run


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return manifest
    except (OSError, ValueError):
        return {}


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    atomic_write_bytes(folder / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))


def embed_pool(
    texts: Sequence[str],
    embedder: Embedder,
    folder: Path,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
    stop_after_chunks: int | None = None,
) -> EmbedResult:
    """Encode `texts` into `folder` chunk by chunk, resuming a previous run of the same pool and embedder.

    `embedder` must already be fitted. `stop_after_chunks` ends this run early (as a crash would), for testing
    and benchmarking the resume.
    """
    from matching.embedders import load_embedder, save_embedder

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    identity = {
        "embedder": embedder.name,
        "count": len(texts),
        "chunk_size": int(chunk_size),
        "fingerprint": pool_fingerprint(texts),
    }
    manifest = _read_manifest(folder)
    if manifest and all(manifest.get(k) == v for k, v in identity.items()) and (folder / EMBEDDER_DIR).exists():
        embedder = load_embedder(folder / EMBEDDER_DIR)  # the state the earlier chunks were encoded with
    else:
        for old in folder.glob("chunk-*.npy"):
            old.unlink()
        save_embedder(embedder, folder / EMBEDDER_DIR)
        manifest = {**identity, "dim": int(embedder.dim), "chunks": []}
        _write_manifest(folder, manifest)
    manifest["chunks"] = [c for c in manifest["chunks"] if (folder / c["file"]).exists()]
    done = {c["start"] for c in manifest["chunks"]}
    reused = len(done)
    encoded, seconds = 0, 0.0
    n = len(texts)
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        if start in done:
            if progress:
                progress(stop, n)
            continue
        if stop_after_chunks is not None and len(manifest["chunks"]) - reused >= stop_after_chunks:
            break  # a deliberate early stop stands in for a crash
        began = time.perf_counter()
        vectors = np.ascontiguousarray(embedder.encode(list(texts[start:stop])), dtype=np.float32)
        name = f"chunk-{start:010d}.npy"
        tmp = folder / (name + ".part")
        with open(tmp, "wb") as fh:
            np.save(fh, vectors)
        tmp.replace(folder / name)
        took = time.perf_counter() - began
        seconds += took
        encoded += stop - start
        manifest["chunks"].append({"file": name, "start": start, "stop": stop, "seconds": round(took, 3)})
        manifest["dim"] = int(vectors.shape[1])
        _write_manifest(folder, manifest)
        if progress:
            progress(stop, n)
    return EmbedResult(
        folder,
        n,
        int(manifest.get("dim", embedder.dim)),
        len(manifest["chunks"]),
        reused,
        round(seconds, 3),
        round(encoded / seconds, 1) if seconds else 0.0,
    )


def is_complete(folder: Path) -> bool:
    """Whether every chunk of the pool recorded in `folder` is written."""
    manifest = _read_manifest(Path(folder))
    covered = sum(c["stop"] - c["start"] for c in manifest.get("chunks", ()))
    return bool(manifest) and covered == manifest.get("count")


def load_vectors(folder: Path, mmap: bool = True) -> np.ndarray:
    """All stored vectors in pool order, (count, dim) float32 (chunks read memory-mapped, then joined)."""
    folder = Path(folder)
    manifest = _read_manifest(folder)
    if not is_complete(folder):
        raise ValueError(f"embedding store is incomplete: {folder}")
    chunks = sorted(manifest["chunks"], key=lambda c: c["start"])
    out = np.empty((manifest["count"], manifest["dim"]), np.float32)
    for c in chunks:
        out[c["start"] : c["stop"]] = np.load(folder / c["file"], mmap_mode="r" if mmap else None)
    return out


def stored_embedder(folder: Path) -> Embedder:
    """The fitted embedder the store was encoded with (to encode queries the same way)."""
    from matching.embedders import load_embedder

    return load_embedder(Path(folder) / EMBEDDER_DIR)
