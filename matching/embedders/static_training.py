"""Training a static embedder (matching.embedders.static) from the pretrained transformer, on the pool's profiles.

1. Vocabulary: the jieba words and character bigrams (`static_tokens`) of the training profiles seen at least
   MIN_COUNT times. A text's tokens are then every window of it that is a vocabulary entry (`Vocabulary.spot`), in
   training as in encoding.
2. Start: each token's vector is the transformer's vector of the token alone.
3. Fit (Adam on torch, with sparse lazy updates of the rows a batch uses; a few epochs): a profile's weighted token
   sum must point where the transformer's passage
   vector of the profile points (1 − cosine), and a phrase cut from a profile (a scope item) where its query vector
   points — with a table and per-token weights for each side.

Measured on the dev benchmarks (docs/matching.md#static-embedder): fused with the lexical channels it keeps 82 % of the
transformer's gain over them on SW3 (0.5253 vs 0.5427, lexical 0.4476); pieces of the transformer's own vocabulary
kept 48 % in an earlier experiment, plain distillation without fitting 45 %.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from matching.embedders.static import MAX_TOKEN_CHARS, Tables, Vocabulary, static_tokens

MIN_COUNT = 2  # a token seen fewer times in the training profiles gets no vector (single characters always do)
EPOCHS = 8
LEARNING_RATE = 3e-3
BATCH = 256
PHRASE_MIN, PHRASE_MAX = 2, 80  # characters of a phrase cut from a profile to stand for a query
_PHRASE_SPLIT = re.compile(r"[；;。\n]+")

Encode = Callable[[list[str]], np.ndarray]
Progress = Callable[[str, int, int], None]


def phrases(profiles: Sequence[str]) -> list[str]:
    """Distinct phrases cut from profiles (scope items, product lists) that stand for queries in training."""
    out: dict[str, None] = {}
    for text in profiles:
        for part in _PHRASE_SPLIT.split(text or ""):
            part = part.strip()
            if PHRASE_MIN <= len(part) <= PHRASE_MAX:
                out.setdefault(part)
    return list(out)


@dataclass
class Bags:
    """Token rows of many texts, flattened: text i's rows are ids[starts[i]:starts[i] + lengths[i]]."""

    ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, texts: Sequence[str], vocabulary: Vocabulary) -> "Bags":
        """The tokens of `texts` as the embedder finds them (a text with none gets row 0, so no bag is empty)."""
        rows, owners = vocabulary.spot(texts)
        lengths = np.bincount(owners, minlength=len(texts)).astype(np.int64)
        empty = np.flatnonzero(lengths == 0)
        if len(empty):
            rows = np.concatenate([rows, np.zeros(len(empty), np.int64)])
            owners = np.concatenate([owners, empty])
            order = np.argsort(owners, kind="stable")
            rows, owners = rows[order], owners[order]
            lengths[empty] = 1
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return cls(rows.astype(np.int64), starts, lengths)

    def batch(self, texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flattened rows, offsets) of the texts `texts`, for embedding_bag."""
        lengths = self.lengths[texts]
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        index = np.repeat(self.starts[texts] - offsets, lengths) + np.arange(int(lengths.sum()))
        return self.ids[index], offsets


def train(
    profiles: Sequence[str],
    encode_documents: Encode,
    encode_queries: Encode,
    epochs: int = EPOCHS,
    progress: Progress | None = None,
    seed: int = 0,
) -> tuple[list[str], Tables, dict[str, Any]]:
    """(vocabulary, tables, figures) of a static model fitted to the transformer on `profiles`."""
    import torch

    began = time.perf_counter()
    torch.manual_seed(seed)
    counts = Counter(t for text in profiles for t in static_tokens(text))
    vocab = sorted(t for t, c in counts.items() if c >= MIN_COUNT and len(t) <= MAX_TOKEN_CHARS)
    vocabulary = Vocabulary(vocab)
    queries = phrases(profiles)
    steps = [("词表向量", len(vocab)), ("文档目标", len(profiles)), ("短语目标", len(queries))]

    def report(step: int, done: int) -> None:
        if progress:
            progress(steps[step][0], done, steps[step][1])

    start = _encode_in_batches(vocab, encode_documents, lambda d: report(0, d))
    doc_targets = _encode_in_batches(list(profiles), encode_documents, lambda d: report(1, d))
    query_targets = _encode_in_batches(queries, encode_queries, lambda d: report(2, d))
    frequency = np.asarray([counts[t] for t in vocab], np.float64)
    zipf = np.log1p(np.argsort(np.argsort(-frequency))).astype(np.float32)  # rarer tokens weigh more at the start

    sides = [
        (Bags.of(list(profiles), vocabulary), torch.tensor(doc_targets)),
        (Bags.of(queries, vocabulary), torch.tensor(query_targets)),
    ]
    tables = [torch.nn.Parameter(torch.tensor(start)) for _ in sides]
    weights = [torch.nn.Parameter(torch.tensor(zipf)) for _ in sides]
    # Lazy (sparse) Adam for the tables: a step updates only the rows its batch used, not the whole vocabulary.
    optimisers = [torch.optim.SparseAdam(tables, lr=LEARNING_RATE), torch.optim.Adam(weights, lr=LEARNING_RATE)]
    total = sum(len(bags.lengths) for bags, _ in sides)
    loss_sum = 0.0
    for epoch in range(epochs):
        order = [(s, torch.randperm(len(bags.lengths)).numpy()) for s, (bags, _) in enumerate(sides)]
        batches = [(s, perm[i : i + BATCH]) for s, perm in order for i in range(0, len(perm), BATCH)]
        loss_sum = 0.0
        for b in torch.randperm(len(batches)).tolist():
            side, texts = batches[b]
            bags, targets = sides[side]
            ids, offsets = bags.batch(texts)
            ids_t = torch.from_numpy(ids)
            summed = torch.nn.functional.embedding_bag(
                ids_t,
                tables[side],
                torch.from_numpy(offsets),
                mode="sum",
                per_sample_weights=weights[side][ids_t],
                sparse=True,
            )
            loss = (1 - torch.nn.functional.cosine_similarity(summed, targets[texts])).mean()
            for optimiser in optimisers:
                optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            for optimiser in optimisers:
                optimiser.step()
            loss_sum += loss.item() * len(texts)
        if progress:
            progress("拟合", epoch + 1, epochs)
    result = Tables(*(t.detach().numpy().astype(np.float32) for t in (tables[0], weights[0], tables[1], weights[1])))
    figures = {
        "profiles": len(profiles),
        "phrases": len(queries),
        "vocabulary": len(vocab),
        "epochs": epochs,
        "loss": round(loss_sum / max(total, 1), 5),
        "seconds": round(time.perf_counter() - began, 1),
        "tokens": "vocabulary windows (jieba words + character bigrams of the training profiles)",
        "min_count": MIN_COUNT,
    }
    return vocab, result, figures


def _encode_in_batches(texts: list[str], encode: Encode, done: Callable[[int], None], size: int = 512) -> np.ndarray:
    parts = []
    for start in range(0, len(texts), size):
        parts.append(np.asarray(encode(texts[start : start + size]), np.float32))
        done(min(start + size, len(texts)))
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
