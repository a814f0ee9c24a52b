"""Hits and their explanations: which query words a ranked firm's profile contains (Hit.matched_terms).

Matched terms are read from the firm's row of the word channel (its distinct words), never from its text: a
query's words are tokenised once per query (LexicalChannels.query_words) and looked up per row. Shown are the
matched words worth showing, in query order (`explaining_terms`), spelled as the query spells them (`as_written`:
the channel's words are lower-cased, and users read "KrF", not "krf").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from matching.engine.channels import LexicalChannels
from matching.engine.pool import Pool

MAX_MATCHED_TERMS = 8


@dataclass
class Hit:
    id: int
    score: float
    channels: dict[str, float] = field(default_factory=dict)
    matched_terms: list[str] = field(default_factory=list)


def explaining_terms(found: list[str]) -> list[str]:
    """The matched query words worth showing, in query order, at most MAX_MATCHED_TERMS."""
    longer = [t for t in found if len(t) > 1]
    # A single shared character explains little when word matches exist.
    found = longer or found
    # Drop a term contained in a longer matched term (jieba search mode yields both): one substring search per
    # term in the longer terms joined ("\x00" never occurs in a term), stopping at MAX_MATCHED_TERMS kept.
    joined: dict[int, str] = {}
    kept: list[str] = []
    for t in found:
        size = len(t)
        if size not in joined:
            joined[size] = "\x00".join(o for o in found if len(o) > size)
        if t not in joined[size]:
            kept.append(t)
            if len(kept) == MAX_MATCHED_TERMS:
                break
    return kept


def as_written(terms: list[str], query: str) -> list[str]:
    """Each term as `query` writes it (half-width), where the query holds it up to case; else as it is."""
    if not query or not any(ch.isascii() and ch.isalpha() for t in terms for ch in t):  # only these have case
        return terms
    written = unicodedata.normalize("NFKC", query)
    folded = written.lower()
    if len(folded) != len(written):  # a rare letter whose lower case is longer: positions would not line up
        return terms
    out = []
    for t in terms:
        i = folded.find(t)
        out.append(written[i : i + len(t)] if i >= 0 else t)
    return out


class Explainer:
    """Turns ranked pool rows into Hits with their matched terms."""

    def __init__(self, pool: Pool, lexical: LexicalChannels) -> None:
        self._pool = pool
        self._lexical = lexical

    def matched_terms(
        self, query: str, doc_id: int, terms: Sequence[str] | None = None, row: int | None = None
    ) -> list[str]:
        """The query's words (or the given `terms`) that the pooled document contains, as shown on its Hit."""
        row = self._pool.row_of.get(int(doc_id)) if row is None else row
        if row is None:
            return []
        present = set(self._lexical.bm25.row_terms(row).tolist())
        columns = self._lexical.query_words(query)[1] if terms is None else self._lexical.word_columns(terms)
        return as_written(explaining_terms([t for t, col in columns if col in present]), query)

    def matched_terms_of_rows(self, query: str, rows: np.ndarray) -> list[list[str]]:
        """matched_terms of several pooled rows for one query, with one look-up of their word counts."""
        columns = self._lexical.query_words(query)[1]
        if not columns or not len(rows):
            return [[] for _ in rows]
        cols = np.asarray([c for _, c in columns], np.int64)
        shared = self._lexical.bm25.counts[np.asarray(rows, np.int64)][:, cols].tocsr()  # in query-term order
        shared.sort_indices()
        # Hits of one query often share the same matched words: explain each distinct set once.
        explained: dict[bytes, list[str]] = {}
        out = []
        for i in range(len(rows)):
            found = shared.indices[shared.indptr[i] : shared.indptr[i + 1]]
            key = found.tobytes()
            terms = explained.get(key)
            if terms is None:
                terms = explained[key] = as_written(explaining_terms([columns[j][0] for j in found]), query)
            out.append(list(terms))
        return out

    def hit(
        self,
        query: str,
        row: int,
        score: float,
        pooled: dict[str, np.ndarray],
        p: int,
        learned: float | None = None,
        terms: Sequence[str] | None = None,
    ) -> Hit:
        """The Hit of pool row `row`, at position `p` of the `pooled` channel scores."""
        doc_id = int(self._pool.row_ids[row])
        channels = {name: float(s[p]) for name, s in pooled.items()}
        if learned is not None:
            channels["learned"] = learned
        return Hit(doc_id, score, channels, self.matched_terms(query, doc_id, terms, row=int(row)))
