"""Lexical channels over enterprise profiles: BM25 (via bm25s) and character n-gram TF-IDF.

Both keep a document × term weight matrix (scipy CSR), so a query — possibly with weighted terms —
is scored against the whole pool with one sparse product. Rows are positions 0..n-1; the engine maps
them to document ids.
"""
from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from matching.text import char_ngrams, normalize, tokenize

# BM25 parameters measured on the ICKG dev benchmark: short, patent-title profiles prefer a low length
# penalty (b) and quick term-frequency saturation (k1); 0.9/0.4 is also the Anserini default.
BM25_K1 = 0.9
BM25_B = 0.4


def word_analyzer(text: str) -> list[str]:
    """jieba search-mode tokens."""
    return tokenize(text)


def char12_analyzer(text: str) -> list[str]:
    """Character unigrams and bigrams (dictionary-free; catches compounds jieba splits badly)."""
    return char_ngrams(text, 1, 2)


ANALYZERS: dict[str, Callable[[str], list[str]]] = {"word": word_analyzer, "char12": char12_analyzer}


class BM25Channel:
    """BM25 over the tokens of one analyzer; weights computed by bm25s, queried as a sparse product."""

    def __init__(self, analyzer: str = "word", k1: float = BM25_K1, b: float = BM25_B) -> None:
        self.analyzer = analyzer
        self.k1, self.b = k1, b
        self.vocab: dict[str, int] = {}
        self.matrix: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)

    def analyze(self, text: str) -> list[str]:
        return ANALYZERS[self.analyzer](text)

    def build(self, texts: Sequence[str], tokens: Sequence[list[str]] | None = None) -> None:
        """Index the texts (or their pre-computed tokens)."""
        import bm25s

        tokens = list(tokens) if tokens is not None else [self.analyze(t) for t in texts]
        if not tokens:
            self.vocab, self.matrix = {}, sp.csr_matrix((0, 0), dtype=np.float32)
            return
        # bm25s rejects an all-empty corpus; a placeholder token keeps the row count right.
        tokens = [t if t else ["\u0000"] for t in tokens]
        model = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        model.index(tokens, show_progress=False)
        s = model.scores
        n_terms = len(s["indptr"]) - 1
        self.matrix = sp.csc_matrix((s["data"], s["indices"], s["indptr"]),
                                    shape=(s["num_docs"], n_terms)).tocsr().astype(np.float32)
        self.vocab = {t: i for t, i in model.vocab_dict.items() if i < n_terms}

    def query_vector(self, terms: Sequence[str] | dict[str, float]) -> sp.csr_matrix:
        """A (1, vocab) row: each distinct known term with weight 1, or the given weights."""
        weights = terms if isinstance(terms, dict) else dict.fromkeys(terms, 1.0)
        cols = [self.vocab[t] for t in weights if t in self.vocab]
        vals = [float(weights[t]) for t in weights if t in self.vocab]
        return sp.csr_matrix((np.asarray(vals, np.float32), (np.zeros(len(cols), int), cols)),
                             shape=(1, max(len(self.vocab), 1)))

    def _columns(self) -> sp.csc_matrix:
        """A column-major copy of the matrix (built once): a query then reads only its own terms' columns
        instead of every non-zero of the pool, which is what makes large pools searchable."""
        csc = getattr(self, "_csc", None)
        if csc is None or csc[0] is not self.matrix:
            csc = (self.matrix, self.matrix.tocsc())
            self._csc = csc
        return csc[1]

    def scores(self, query: str, terms: Sequence[str] | None = None) -> np.ndarray:
        """BM25 score of every row for the query (float32, length = rows)."""
        if self.matrix.shape[0] == 0:
            return np.zeros(0, np.float32)
        terms = terms if terms is not None else self.analyze(query)
        weights = terms if isinstance(terms, dict) else dict.fromkeys(terms, 1.0)
        # Ascending column order sums each row's terms in the same order as the row-major product did.
        picked = sorted((self.vocab[t], float(w)) for t, w in weights.items() if t in self.vocab)
        if not picked:
            return np.zeros(self.matrix.shape[0], np.float32)
        cols = np.fromiter((c for c, _ in picked), np.int64, len(picked))
        vals = np.fromiter((w for _, w in picked), np.float32, len(picked))
        return np.asarray(self._columns()[:, cols] @ vals, dtype=np.float32).ravel()

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        sp.save_npz(folder / "bm25.npz", self.matrix)
        (folder / "bm25.json").write_text(json.dumps(
            {"analyzer": self.analyzer, "k1": self.k1, "b": self.b, "vocab": self.vocab}, ensure_ascii=False),
            encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "BM25Channel":
        folder = Path(folder)
        meta = json.loads((folder / "bm25.json").read_text(encoding="utf-8"))
        channel = cls(meta["analyzer"], meta["k1"], meta["b"])
        channel.vocab = meta["vocab"]
        channel.matrix = sp.load_npz(folder / "bm25.npz").tocsr()
        return channel


class CharTfidfChannel:
    """Cosine similarity of sublinear TF-IDF over character 1–3-grams (word-boundary aware)."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 3)) -> None:
        self.ngram_range = tuple(ngram_range)
        self.vectorizer = None
        self.matrix: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)

    def build(self, texts: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=self.ngram_range, sublinear_tf=True,
                                          dtype=np.float32, preprocessor=normalize)
        if not texts:
            self.matrix = sp.csr_matrix((0, 0), dtype=np.float32)
            self.vectorizer = None
            return
        self.matrix = self.vectorizer.fit_transform(list(texts)).tocsr()

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows (L2-normalised) for new texts, using the fitted vocabulary and idf."""
        return self.vectorizer.transform(list(texts)).tocsr()

    def append(self, texts: Sequence[str]) -> None:
        """Add rows with the already fitted vocabulary (new n-grams are ignored until the next build)."""
        if self.vectorizer is None:
            self.build(texts)
        else:
            self.matrix = sp.vstack([self.matrix, self.transform(texts)]).tocsr()

    def scores(self, query: str) -> np.ndarray:
        if self.vectorizer is None or self.matrix.shape[0] == 0:
            return np.zeros(self.matrix.shape[0], np.float32)
        q = self.transform([query])
        return np.asarray((self.matrix @ q.T).todense()).ravel().astype(np.float32)

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        sp.save_npz(folder / "tfidf.npz", self.matrix)
        with open(folder / "tfidf.pkl", "wb") as fh:  # our own file, written and read locally
            pickle.dump({"ngram_range": self.ngram_range, "vectorizer": self.vectorizer}, fh)

    @classmethod
    def load(cls, folder: Path) -> "CharTfidfChannel":
        folder = Path(folder)
        with open(folder / "tfidf.pkl", "rb") as fh:
            state = pickle.load(fh)
        channel = cls(state["ngram_range"])
        channel.vectorizer = state["vectorizer"]
        channel.matrix = sp.load_npz(folder / "tfidf.npz").tocsr()
        return channel
