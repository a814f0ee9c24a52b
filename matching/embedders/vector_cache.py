"""Embeddings kept on disk by text content: each distinct text is encoded once per embedder, and a long encoding
run that stops (crash, restart, cancel) resumes with what is missing.

A cache folder belongs to one embedder (its name is checked). It holds chunks, each a pair of files written to a
temporary name and renamed: `<id>.keys.npy` (uint64 text keys) and `<id>.vecs.npy` (float32 rows), recorded in
`manifest.json` (rewritten atomically, under a file lock, after both files exist). A crash therefore loses at most
the chunk being encoded. Several processes may add chunks at once; a text encoded twice is harmless (identical
rows). A text's key is the first 8 bytes of its BLAKE2b digest: at ten million texts the chance that any two
collide is about 3·10⁻⁶.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

if TYPE_CHECKING:
    from matching.embedders.base import Embedder

MANIFEST = "manifest.json"
LOCK_FILE = ".lock"
CHUNK_TEXTS = 512  # texts per chunk: ~10 s of transformer encoding lost at most when a run stops
ENCODE_BATCH = 64  # texts per encode call inside a chunk (progress is reported after each)
MAX_CHUNKS = 256  # more chunk files than this are merged into one on the next compaction

Progress = Callable[[int, int], None]
Encode = Callable[[Sequence[str]], np.ndarray]  # texts → one vector row per text


class EncodingStopped(Exception):
    """`should_stop` asked an encoding run to end; the chunks written so far are kept."""


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """uint64 content keys of the texts."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
            for t in texts
        ),
        np.uint64,
        len(texts),
    )


@dataclass
class EmbedResult:
    vectors: np.ndarray  # one row per input text, in input order
    encoded: int  # distinct texts encoded by this call
    reused: int  # distinct texts found in the cache
    seconds: float  # encoding time of this call

    @property
    def texts_per_s(self) -> float:
        return round(self.encoded / self.seconds, 1) if self.seconds else 0.0


class VectorCache:
    """The cache folder of one embedder (`name`, `dim`)."""

    def __init__(self, folder: Path, name: str, dim: int) -> None:
        self.folder = Path(folder)
        self.name, self.dim = name, int(dim)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None  # manifest (mtime, size) the index below was read from
        self._keys = np.zeros(0, np.uint64)  # sorted
        self._where = np.zeros((0, 2), np.int64)  # (chunk position, row) of each sorted key
        self._chunks: list[str] = []
        self._arrays: dict[str, np.ndarray] = {}
        with self._locked():
            manifest = self._read_manifest()
            if manifest.get("embedder") not in (None, name) or manifest.get("dim") not in (None, self.dim):
                raise ValueError(
                    f"vector cache {self.folder} belongs to {manifest.get('embedder')} "
                    f"(dim {manifest.get('dim')}), not {name} (dim {dim})"
                )
            if not manifest:
                self._write_manifest({"embedder": name, "dim": self.dim, "chunks": []})

    # ---- files
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        with open(self.folder / LOCK_FILE, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read_manifest(self) -> dict[str, Any]:
        try:
            manifest: dict[str, Any] = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
            return manifest
        except (OSError, ValueError):
            return {}

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.folder / f".{MANIFEST}.{uuid.uuid4().hex[:8]}"
        tmp.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.folder / MANIFEST)

    def _save_array(self, name: str, array: np.ndarray) -> None:
        tmp = self.folder / f".{name}.{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as fh:
            np.save(fh, array)
        os.replace(tmp, self.folder / name)

    def _array(self, name: str) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None:
            array = self._arrays[name] = np.load(self.folder / name, mmap_mode="r")
        return array

    def _refresh(self) -> None:
        """Re-read the chunk index when another writer (or this one) changed the manifest."""
        try:
            st = (self.folder / MANIFEST).stat()
        except OSError:
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        chunks = [c for c in self._read_manifest().get("chunks", []) if (self.folder / f"{c}.vecs.npy").exists()]
        keys = [np.asarray(self._array(f"{c}.keys.npy")) for c in chunks]
        where = [
            np.stack([np.full(len(k), i, np.int64), np.arange(len(k), dtype=np.int64)], axis=1)
            for i, k in enumerate(keys)
        ]
        all_keys = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
        order = np.argsort(all_keys, kind="stable")
        self._keys = all_keys[order]
        self._where = (np.concatenate(where) if where else np.zeros((0, 2), np.int64))[order]
        self._chunks = chunks
        self._stamp = stamp

    # ---- reading and writing
    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return len(np.unique(self._keys))

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows (len(keys), dim) float32, found mask); rows of keys not found are zero."""
        keys = np.asarray(keys, np.uint64)
        out = np.zeros((len(keys), self.dim), np.float32)
        with self._lock:
            self._refresh()
            if not len(self._keys) or not len(keys):
                return out, np.zeros(len(keys), bool)
            pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
            found = self._keys[pos] == keys
            where = self._where[pos[found]]
            targets = np.flatnonzero(found)
            for chunk in np.unique(where[:, 0]):
                sel = where[:, 0] == chunk
                vectors = self._array(f"{self._chunks[chunk]}.vecs.npy")
                out[targets[sel]] = vectors[where[sel, 1]]
        return out, found

    def put(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Store one chunk of rows (written whole, then recorded)."""
        keys = np.asarray(keys, np.uint64)
        vectors = np.ascontiguousarray(vectors, np.float32)
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"vectors {vectors.shape} do not fit {len(keys)} keys of dim {self.dim}")
        if not len(keys):
            return
        chunk = f"chunk-{time.time_ns():x}-{uuid.uuid4().hex[:6]}"
        self._save_array(f"{chunk}.keys.npy", keys)
        self._save_array(f"{chunk}.vecs.npy", vectors)
        with self._locked():
            manifest = self._read_manifest()
            manifest["chunks"] = [*manifest.get("chunks", []), chunk]
            self._write_manifest(manifest)

    def compact(self, keep: np.ndarray | None = None) -> int:
        """Merge every chunk into one, keeping only `keep` keys when given (texts no longer in the pool go);
        returns the number of distinct keys kept."""
        with self._locked(), self._lock:
            self._stamp = None
            self._refresh()
            keys, first = np.unique(self._keys, return_index=True)
            if keep is not None:
                wanted = np.isin(keys, np.asarray(keep, np.uint64))
                keys, first = keys[wanted], first[wanted]
            old = list(self._chunks)
            rows = np.zeros((len(keys), self.dim), np.float32)
            where = self._where[first]
            for chunk in np.unique(where[:, 0]):
                sel = where[:, 0] == chunk
                rows[np.flatnonzero(sel)] = self._array(f"{old[chunk]}.vecs.npy")[where[sel, 1]]
            chunk = f"chunk-{time.time_ns():x}-{uuid.uuid4().hex[:6]}"
            self._save_array(f"{chunk}.keys.npy", keys)
            self._save_array(f"{chunk}.vecs.npy", rows)
            manifest = self._read_manifest()
            manifest["chunks"] = [chunk] + [c for c in manifest.get("chunks", []) if c not in old]
            self._write_manifest(manifest)
            self._arrays.clear()
            for name in old:
                for suffix in (".keys.npy", ".vecs.npy"):
                    (self.folder / f"{name}{suffix}").unlink(missing_ok=True)
            self._stamp = None
            return len(keys)

    def chunk_count(self) -> int:
        with self._lock:
            self._refresh()
            return len(self._chunks)

    def embed(
        self,
        texts: Sequence[str],
        encode: Callable[[list[str]], np.ndarray],
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        chunk_texts: int = CHUNK_TEXTS,
    ) -> EmbedResult:
        """Vectors of `texts` (input order): cached rows, and the missing distinct texts encoded with `encode`
        chunk by chunk, each chunk stored before the next starts. `progress(done, total)` counts distinct texts;
        `should_stop()` is asked between batches (EncodingStopped is raised; finished chunks stay)."""
        texts = list(texts)
        keys = text_keys(texts)
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        rows, found = self.lookup(unique)
        missing = np.flatnonzero(~found)
        missing = missing[np.argsort(first[missing], kind="stable")]  # encoded in input order
        total, done = len(unique), int(found.sum())
        if progress:
            progress(done, total)
        began = time.perf_counter()
        for start in range(0, len(missing), chunk_texts):
            part = missing[start : start + chunk_texts]
            encoded = []
            for b in range(0, len(part), ENCODE_BATCH):
                if should_stop is not None and should_stop():
                    raise EncodingStopped(f"stopped after {done} of {total} texts")
                batch = part[b : b + ENCODE_BATCH]
                encoded.append(np.asarray(encode([texts[first[i]] for i in batch]), np.float32))
                done += len(batch)
                if progress:
                    progress(done, total)
            vectors = np.concatenate(encoded)
            self.put(unique[part], vectors)
            rows[part] = vectors
        if self.chunk_count() > MAX_CHUNKS:
            self.compact()
        return EmbedResult(
            rows[inverse.reshape(-1)], len(missing), int(found.sum()), round(time.perf_counter() - began, 3)
        )


def cache_folders(root: Path, embedder_name: str) -> tuple[Path, Path]:
    """(documents folder, queries folder) of an embedder's caches under `root`: a text's document and query vectors
    differ (prompts), so they are kept apart."""
    from matching.embedders.base import folder_name

    name = folder_name(embedder_name)
    return Path(root) / name, Path(root) / f"{name}-queries"


def cached_encoders(embedder: Embedder, root: Path | None, progress: Progress | None = None) -> tuple[Encode, Encode]:
    """(encode documents, encode queries) of `embedder` through its caches under `root` (plain encoders without)."""
    if root is None:
        return embedder.encode, embedder.encode_queries
    doc_folder, query_folder = cache_folders(root, embedder.name)
    documents = VectorCache(doc_folder, embedder.name, embedder.dim)
    queries = VectorCache(query_folder, embedder.name + "#queries", embedder.dim)
    return (
        lambda texts: documents.embed(texts, embedder.encode, progress=progress).vectors,
        lambda texts: queries.embed(texts, embedder.encode_queries).vectors,
    )
