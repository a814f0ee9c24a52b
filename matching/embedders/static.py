"""A static embedder: a vector per token, looked up and summed — thousands of profiles per second, no transformer.

It is trained from the pretrained transformer (matching.embedders.static_training) on the pool's own profiles. The
vocabulary is the pool's frequent jieba words and character bigrams; a text's tokens are every window of it that is
a vocabulary entry, found for a whole batch at once by hashing windows with numpy (`Vocabulary.spot`: no per-text
tokeniser, which is what keeps it fast). Each token's vector starts as the transformer's vector of the token and is
then fitted so that the weighted sum over a profile's tokens points where the transformer's vector of the whole
profile points. Documents and queries have a table each, as the transformer encodes them with different prompts
("passage: " / "query: "): profiles are fitted to its passage vectors, short phrases cut from profiles to its query
vectors.

A trained model lives in `<models dir>/static/<digest>/` (`tables.safetensors`: float16 vectors and float32 weights
of both tables; `vocab.json`; `provenance.json`: teacher, training texts, epochs, loss, seconds). Its name carries the
digest, so an index of one trained model is never searched with another's vectors. `<models dir>/static/current-
<teacher folder>.json` names the model the product uses for that teacher.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matching.embedders.base import EMBEDDER_FILE, folder_name
from matching.text import char_ngrams, normalize, tokenize

STATIC_PREFIX = "static:"
TABLES_FILE = "tables.safetensors"
VOCAB_FILE = "vocab.json"
PROVENANCE_FILE = "provenance.json"
STATIC_DIR = "static"


MAX_TOKEN_CHARS = 8  # longest vocabulary token (jieba words longer than this are rare and get no vector)
ENCODE_BATCH = 2048  # texts spotted at once (bounds the memory of the occurrence arrays)
_HASH_BASE = np.uint64(0x9E3779B97F4A7C15)


def static_tokens(text: str) -> list[str]:
    """The candidate tokens a vocabulary is chosen from: jieba search-mode words and character bigrams."""
    return tokenize(text) + char_ngrams(text, 2, 2)


def _hash_windows(codes: np.ndarray, n: int) -> np.ndarray:
    """64-bit polynomial hashes of every window of `n` code points (wrapping arithmetic), the length mixed in."""
    size = len(codes) - n + 1
    h = codes[:size].copy()
    for k in range(1, n):
        h = h * _HASH_BASE + codes[k : k + size]
    return h * _HASH_BASE + np.uint64(n)


def _code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code points + 1 of the normalised texts joined by separators, separator mask, owning text of each)."""
    pieces = [normalize(t or "") for t in texts]
    joined = "\n".join(pieces)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    owners = np.repeat(np.arange(len(pieces)), [len(p) + 1 for p in pieces])[: len(codes)]
    return codes.astype(np.uint64) + np.uint64(1), codes <= 32, owners


class Vocabulary:
    """Token → row look-up by hashing: every window of a text that is a vocabulary token counts, found with numpy
    over a whole batch at once (no per-text tokeniser: this is what makes the embedder fast)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        hashes = np.asarray([self.token_hash(t) for t in self.tokens], np.uint64)
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._rows = hashes[order], order.astype(np.int64)
        self._lengths = sorted({len(t) for t in self.tokens})

    @staticmethod
    def token_hash(token: str) -> np.uint64:
        codes = np.frombuffer(token.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64) + np.uint64(1)
        digest: np.uint64 = _hash_windows(codes, len(token))[0]
        return digest

    def __len__(self) -> int:
        return len(self.tokens)

    def spot(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary rows, owning text index) of every token occurrence in the texts, grouped by text."""
        codes, separators, owners = _code_points(texts)
        if not len(self._hashes) or not len(codes):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        crossed = np.concatenate([[0], np.cumsum(separators)])  # separators before each position
        rows, found_owners = [], []
        for n in self._lengths:
            if n > len(codes):
                break
            h = _hash_windows(codes, n)
            size = len(h)
            at = np.minimum(np.searchsorted(self._hashes, h), len(self._hashes) - 1)
            hit = (self._hashes[at] == h) & (crossed[n : n + size] == crossed[:size])  # no window spans a separator
            rows.append(self._rows[at[hit]])
            found_owners.append(owners[:size][hit])
        rows_all, owners_all = np.concatenate(rows), np.concatenate(found_owners)
        order = np.argsort(owners_all, kind="stable")
        return rows_all[order], owners_all[order]


@dataclass
class Tables:
    """Document and query vectors (rows of the vocabulary) and per-token weights."""

    doc: np.ndarray
    doc_weights: np.ndarray
    query: np.ndarray
    query_weights: np.ndarray

    def digest(self, vocab: Sequence[str]) -> str:
        h = hashlib.sha256()
        h.update("\n".join(vocab).encode("utf-8"))
        for array in (self.doc, self.doc_weights, self.query, self.query_weights):
            h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()


class StaticEmbedder:
    """Sums of per-token vectors (documents and queries each with their table), rows L2-normalised."""

    cheap_to_encode = True

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file

        self.folder = Path(folder)
        arrays = load_file(str(self.folder / TABLES_FILE))
        self.vocab: list[str] = json.loads((self.folder / VOCAB_FILE).read_text(encoding="utf-8"))
        self.provenance: dict[str, Any] = json.loads((self.folder / PROVENANCE_FILE).read_text(encoding="utf-8"))
        self._vocabulary = Vocabulary(self.vocab)
        # Weighted rows once: a profile's vector is then a plain sum of rows.
        self._doc = (arrays["doc"].astype(np.float32) * arrays["doc_weights"][:, None]).astype(np.float32)
        self._query = (arrays["query"].astype(np.float32) * arrays["query_weights"][:, None]).astype(np.float32)
        self.dim = int(self._doc.shape[1])
        self.name = static_model_name(self.folder)

    def fit(self, texts: Sequence[str]) -> None:
        """Trained ahead (static_training): nothing to learn from the pool here."""

    def encode(self, texts: Sequence[str], batch_size: int = 0) -> np.ndarray:
        """Profile vectors."""
        return self._sum(texts, self._doc)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Link-query vectors."""
        return self._sum(texts, self._query)

    def _sum(self, texts: Sequence[str], table: np.ndarray) -> np.ndarray:
        import scipy.sparse as sp

        out = np.zeros((len(texts), self.dim), np.float32)
        for start in range(0, len(texts), ENCODE_BATCH):
            batch = texts[start : start + ENCODE_BATCH]
            rows, owners = self._vocabulary.spot(batch)
            counts = sp.csr_matrix((np.ones(len(rows), np.float32), (owners, rows)), shape=(len(batch), len(table)))
            out[start : start + len(batch)] = counts @ table  # sum of the tokens' weighted rows
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        unit: np.ndarray = out / np.maximum(norms, 1e-12)
        return unit

    def save(self, folder: Path) -> None:
        """Record which trained model to reload (the tables stay in the models folder)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"type": "static", "name": self.name, "dim": self.dim, "path": str(self.folder)}
        (folder / EMBEDDER_FILE).write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "StaticEmbedder":
        spec = json.loads((Path(folder) / EMBEDDER_FILE).read_text(encoding="utf-8"))
        return cls(Path(spec["path"]))


def static_model_name(folder: Path) -> str:
    """The embedder name of a trained model folder (teacher and digest), read without loading its tables."""
    provenance = json.loads((Path(folder) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    return f"{STATIC_PREFIX}{provenance['teacher']}@{Path(folder).name[:12]}"


def write_model(models_dir: Path, teacher: str, vocab: list[str], tables: Tables, provenance: dict[str, Any]) -> Path:
    """Save a trained model under `<models_dir>/static/<digest>/` (written aside, then renamed) and return it."""
    from safetensors.numpy import save_file

    root = Path(models_dir) / STATIC_DIR
    root.mkdir(parents=True, exist_ok=True)
    digest = tables.digest(vocab)
    target = root / digest[:32]
    if (target / PROVENANCE_FILE).exists():
        return target
    staging = root / f".{digest[:32]}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    save_file(
        {
            "doc": tables.doc.astype(np.float16),
            "doc_weights": tables.doc_weights.astype(np.float32),
            "query": tables.query.astype(np.float16),
            "query_weights": tables.query_weights.astype(np.float32),
        },
        str(staging / TABLES_FILE),
    )
    (staging / VOCAB_FILE).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (staging / PROVENANCE_FILE).write_text(
        json.dumps({**provenance, "teacher": teacher, "digest": digest}, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    os.replace(staging, target)
    return target


def _current_file(models_dir: Path, teacher_name: str) -> Path:
    return Path(models_dir) / STATIC_DIR / f"current-{folder_name(teacher_name)}.json"


def set_current(models_dir: Path, teacher_name: str, folder: Path) -> None:
    """Make `folder` the static model the product uses for this teacher."""
    path = _current_file(models_dir, teacher_name)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps({"folder": Path(folder).name}), encoding="utf-8")
    os.replace(tmp, path)


def current_model(models_dir: Path, teacher_name: str) -> Path | None:
    """The folder of the static model in use for this teacher (None when none was trained)."""
    try:
        spec = json.loads(_current_file(models_dir, teacher_name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    folder = Path(models_dir) / STATIC_DIR / spec["folder"]
    return folder if (folder / PROVENANCE_FILE).exists() else None
