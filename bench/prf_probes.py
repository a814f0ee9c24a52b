"""Lexical pseudo-relevance feedback (RM3-style query expansion) on a firms/queries benchmark.

The product's fused ranking (two BM25 channels z-scored over the pool + the pool's dense weight) gives each query
its top `m` firms; the terms that carry most BM25 weight in at least `min_docs` of them (summed over those firms)
join the query in each lexical channel at `lam` times the original terms' weight (scaled by their share of the
best expansion term), and the fused ranking is computed again. Prints nDCG@10 for a small grid:

    CHAINMATCH_INSTANCE_PATH=/work/eval/instance .venv/bin/python bench/prf_probes.py \\
        --firms ../shared/benchmarks/ickg/firms.csv --queries ../shared/benchmarks/ickg/dev_queries.jsonl \\
        --models-dir /work/eval/instance/models --vector-cache /work/eval/instance/embedding-cache
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ickg_probes import char_terms, word_terms  # noqa: E402
from bench.probe_harness import probe_from_args  # noqa: E402
from bench.profile_evidence_probes import z  # noqa: E402
from matching.lexical import BM25Channel  # noqa: E402

GRID_M = (5, 10, 20)
GRID_T = (5, 10, 20)
GRID_LAM = (0.1, 0.25, 0.5)
MIN_DOCS = (2, 3)


def expanded(
    channel: BM25Channel, base: tuple[np.ndarray, np.ndarray], top: np.ndarray, t: int, lam: float, min_docs: int
) -> tuple[np.ndarray, np.ndarray]:
    """The query's columns joined by the `t` strongest feedback terms of rows `top` at weight ≤ `lam`."""
    cols, vals = base
    weights = channel.row_weights(top).tocsc()
    mass = np.asarray(weights.sum(axis=0)).ravel()
    docs = np.diff(weights.indptr)
    mass[docs < min_docs] = 0
    mass[cols] = 0
    best = np.argsort(-mass, kind="stable")[:t]
    best = best[mass[best] > 0]
    if not len(best):
        return cols, vals
    extra = lam * mass[best] / mass[best].max()
    order = np.argsort(np.concatenate([cols, best]), kind="stable")
    return np.concatenate([cols, best])[order], np.concatenate([vals, extra.astype(np.float32)])[order]


def main() -> None:
    probe = probe_from_args(__doc__.splitlines()[0])
    texts, ndcg, d, zd, bm25, char = probe.texts, probe.ndcg, probe.dense_weight, probe.zd, probe.bm25, probe.char
    qb = [bm25.query_columns(word_terms(q)) for q in texts]
    qc = [char.query_columns(char_terms(q)) for q in texts]
    lb = np.stack([bm25.scores_for(*c) for c in qb])
    lc = np.stack([char.scores_for(*c) for c in qc])
    base = 0.5 * z(lb) + 0.5 * z(lc) + d * zd
    print(f"dense weight {d:g}; product fusion (this harness) {ndcg(base):.4f}", flush=True)
    print("| m | t | lambda | min docs | channels | fused |\n|---|---|---|---|---|---|", flush=True)
    for m in GRID_M:
        tops = np.argsort(-base, axis=1, kind="stable")[:, :m]
        for t, lam, min_docs in itertools.product(GRID_T, GRID_LAM, MIN_DOCS):
            eb = np.stack(
                [bm25.scores_for(*expanded(bm25, qb[i], tops[i], t, lam, min_docs)) for i in range(len(texts))]
            )
            ec = np.stack(
                [char.scores_for(*expanded(char, qc[i], tops[i], t, lam, min_docs)) for i in range(len(texts))]
            )
            for label, fused in (
                ("words", 0.5 * z(eb) + 0.5 * z(lc) + d * zd),
                ("both", 0.5 * z(eb) + 0.5 * z(ec) + d * zd),
            ):
                print(f"| {m} | {t} | {lam:g} | {min_docs} | {label} | {ndcg(fused):.4f} |", flush=True)


if __name__ == "__main__":
    main()
