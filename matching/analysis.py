"""Turning profile texts into term-count matrices for the lexical channels, in batches and in parallel.

A pool of a million profiles cannot hold its token lists as Python objects (≈ 24 kB per firm); instead each batch
of texts is analysed (jieba words, character 1–2-grams, character 1–3-grams within word boundaries), mapped to
integer term ids at once and kept only as a sparse count matrix. Large pools are analysed in worker processes
(each batch comes back as its own small vocabulary plus int32 ids, so the parent only re-maps arrays).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from matching.text import char_ngrams, normalize, tokenize

BATCH_SIZE = 2_000  # texts analysed per task
PARALLEL_MIN_TEXTS = 40_000  # below this, worker start-up (jieba loads its dictionary in each) costs more than it saves
TFIDF_NGRAMS = (1, 3)
_WHITE_SPACES = re.compile(r"\s\s+")

Progress = Callable[[int, int], None]


def char_wb_ngrams(text: str, n_min: int = TFIDF_NGRAMS[0], n_max: int = TFIDF_NGRAMS[1]) -> list[str]:
    """Character n-grams inside space-padded words of the normalised text (scikit-learn's "char_wb" analyzer)."""
    out: list[str] = []
    append = out.append
    for word in _WHITE_SPACES.sub(" ", normalize(text)).split():
        word = f" {word} "
        size = len(word)
        for n in range(n_min, n_max + 1):
            offset = 0
            append(word[offset : offset + n])
            while offset + n < size:
                offset += 1
                append(word[offset : offset + n])
            if offset == 0:  # a word shorter than n: counted once
                break
    return out


def word_terms(text: str) -> list[str]:
    return tokenize(text)


def char12_terms(text: str) -> list[str]:
    return char_ngrams(text, 1, 2)


ANALYZERS: dict[str, Callable[[str], list[str]]] = {
    "word": word_terms,
    "char12": char12_terms,
    "char_wb13": char_wb_ngrams,
}


@dataclass
class Vocabulary:
    """Term ↔ id, growing as new terms appear (ids are never reused)."""

    terms: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.terms)

    def get(self, term: str) -> int | None:
        return self.ids.get(term)

    def add_all(self, terms: Sequence[str]) -> np.ndarray:
        """Ids of `terms`, adding unknown ones."""
        ids, vocab = self.ids, self.terms
        out = np.empty(len(terms), np.int64)
        for i, term in enumerate(terms):
            j = ids.get(term)
            if j is None:
                j = ids[term] = len(vocab)
                vocab.append(term)
            out[i] = j
        return out

    def lookup(self, terms: Sequence[str]) -> np.ndarray:
        """Ids of the known terms among `terms` (unknown ones dropped), in order."""
        ids = self.ids
        return np.asarray([ids[t] for t in terms if t in ids], np.int64)

    @classmethod
    def from_terms(cls, terms: Sequence[str]) -> "Vocabulary":
        terms = list(terms)
        return cls(terms, {t: i for i, t in enumerate(terms)})


@dataclass
class _LocalBatch:
    """One analysed batch for one analyzer: its own vocabulary, flat local ids and per-text token counts."""

    terms: list[str]
    ids: np.ndarray  # int32, all tokens of the batch in order
    lengths: np.ndarray  # int32, tokens per text


def _analyze_batch(texts: Sequence[str], analyzers: Sequence[str]) -> dict[str, _LocalBatch]:
    out = {}
    for name in analyzers:
        fn = ANALYZERS[name]
        local: dict[str, int] = {}
        flat: list[int] = []
        lengths = np.empty(len(texts), np.int32)
        for i, text in enumerate(texts):
            toks = fn(text)
            lengths[i] = len(toks)
            for t in toks:
                j = local.get(t)
                if j is None:
                    j = local[t] = len(local)
                flat.append(j)
        out[name] = _LocalBatch(list(local), np.asarray(flat, np.int32), lengths)
    return out


def _worker_init(words: list[str]) -> None:
    from matching.text import add_words

    add_words(words)  # the parent's taught words, so workers tokenise exactly as the parent would


def _worker(args: tuple[list[str], tuple[str, ...]]) -> dict[str, _LocalBatch]:
    return _analyze_batch(*args)


def _batches(texts: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(texts), size):
        yield list(texts[start : start + size])


def _analyzed(texts: Sequence[str], analyzers: tuple[str, ...], workers: int) -> Iterator[dict[str, _LocalBatch]]:
    if workers <= 1 or len(texts) < PARALLEL_MIN_TEXTS:
        for batch in _batches(texts, BATCH_SIZE):
            yield _analyze_batch(batch, analyzers)
        return
    import multiprocessing

    from matching import text as _text

    # forkserver, not fork: builds run in background threads of the web server, and forking a threaded process can
    # copy a held lock into the child.
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(workers, initializer=_worker_init, initargs=(sorted(_text._jieba_words),)) as pool:
        yield from pool.imap(_worker, ((b, analyzers) for b in _batches(texts, BATCH_SIZE)), chunksize=1)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def count_matrices(
    texts: Sequence[str],
    analyzers: Sequence[str],
    vocabularies: dict[str, Vocabulary],
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, sp.csr_matrix]:
    """Per analyzer, the (len(texts), len(vocabulary)) term-count matrix (int32 counts) of the texts.

    New terms are added to `vocabularies[name]`; the matrices' widths are the vocabularies' sizes afterwards."""
    analyzers = tuple(analyzers)
    parts: dict[str, list[sp.csr_matrix]] = {a: [] for a in analyzers}
    done, total = 0, len(texts)
    for result in _analyzed(texts, analyzers, default_workers() if workers is None else workers):
        rows = 0
        for name in analyzers:
            batch = result[name]
            remap = vocabularies[name].add_all(batch.terms)
            rows = len(batch.lengths)
            cols = remap[batch.ids] if len(batch.ids) else np.zeros(0, np.int64)
            indptr = np.zeros(rows + 1, np.int64)
            np.cumsum(batch.lengths, out=indptr[1:])
            m = sp.csr_matrix(
                (np.ones(len(cols), np.int32), cols, indptr), shape=(rows, max(int(cols.max(initial=-1)) + 1, 1))
            )
            m.sum_duplicates()
            parts[name].append(m)
        done += rows
        if progress:
            progress(done, total)
    out = {}
    for name in analyzers:
        width = len(vocabularies[name])
        mats = [_widen(m, width) for m in parts[name]]
        out[name] = sp.vstack(mats, format="csr") if mats else sp.csr_matrix((0, width), dtype=np.int32)
        out[name].indices = out[name].indices.astype(np.int32, copy=False)
    return out


def _widen(matrix: sp.csr_matrix, width: int) -> sp.csr_matrix:
    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], width))
