"""Probes of ways to use more of a profile's evidence, on a firms/queries benchmark (default: ICKG dev split).

ICKG's labels follow profile size (firms with 8+ patent titles carry ~4 labels each, one-title firms ~0.5), so this
script measures, against the product's fusion (BM25 words + chars .5/.5 + dense at the given weight, z-scored over
the pool), what each of these buys at nDCG@10:
- a profile-size prior: + a · z(log number of segments), query-independent;
- segment-level scoring: every segment (a patent title or scope item, with the firm name) scored as its own
  document by every channel, a firm scored by its best segment, with a bonus for its second best;
- the symmetric e5 prompt: profiles encoded with "query: " instead of "passage: ";
- stripping industry-label suffixes (行业, 产业) from the query.
Usage:

    .venv/bin/python bench/profile_evidence_probes.py [--firms F.csv] [--queries Q.jsonl] [--dense 0.75]

Profile and segment vectors go through the product's vector cache (instance/embedding-cache), so a second run
encodes only the symmetric-prompt profiles again. None of these is in the product; docs/matching.md gives the figures.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matching.embedders import make_embedder  # noqa: E402
from matching.embedders.vector_cache import cached_encoders  # noqa: E402
from matching.engine import Document, MatchEngine  # noqa: E402
from matching.evaluation import build_engine, read_firms, read_queries  # noqa: E402
from matching.fusion import FusionWeights  # noqa: E402
from matching.metrics import score_rankings  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "ickg"
CHANNELS = ("bm25", "char", "dense")
SEGMENT_SEPARATORS = re.compile(r"[；;]")
LABEL_SUFFIX = re.compile(r"(行业|产业)$")


def z(scores: np.ndarray) -> np.ndarray:
    """Row-wise z-scores (one row a query) over the pool, as matching.fusion standardises a channel."""
    mean, std = scores.mean(1, keepdims=True), scores.std(1, keepdims=True)
    return (scores - mean) / np.where(std == 0, 1, std)


def channel_matrix(engine: MatchEngine, queries: list[str]) -> dict[str, np.ndarray]:
    """Raw scores (queries × pool rows) of every channel."""
    rows = [engine.channel_scores(q, FusionWeights(dense=1), need_all=True) for q in queries]
    return {c: np.stack([r[c] for r in rows]).astype(np.float32) for c in CHANNELS}


def segments(firms_csv: Path) -> tuple[list[Document], np.ndarray]:
    """One document per profile segment (firm name + segment) and the firm row each belongs to."""
    docs, owner = [], []
    with open(firms_csv, encoding="utf-8-sig", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            name = (row.get("name") or "").strip()
            parts = [p.strip() for p in SEGMENT_SEPARATORS.split(row.get("business_scope") or "") if p.strip()]
            for part in parts or [""]:
                docs.append(Document(len(docs), name, f"{name}。{part}"))
                owner.append(i)
    return docs, np.asarray(owner)


def best_two(scores: np.ndarray, owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per firm, its best and second-best segment score (second best 0 for one-segment firms)."""
    best = np.full((scores.shape[0], n), -np.inf, np.float32)
    second = np.full((scores.shape[0], n), -np.inf, np.float32)
    for i in range(scores.shape[0]):
        np.maximum.at(best[i], owner, scores[i])
        np.maximum.at(second[i], owner, np.where(scores[i] >= best[i][owner], -np.inf, scores[i]))
    return best, np.where(np.isinf(second), 0, second)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firms", type=Path, default=DEFAULT_DIR / "firms.csv")
    ap.add_argument("--queries", type=Path, default=DEFAULT_DIR / "dev_queries.jsonl")
    ap.add_argument("--dense", type=float, default=0.75, help="dense weight of the fusion (the product's pool weight)")
    ap.add_argument("--models-dir", type=Path, default=Path("instance/models"))
    ap.add_argument("--vector-cache", type=Path, default=Path("instance/embedding-cache"))
    args = ap.parse_args()

    firms = read_firms(args.firms)
    queries = read_queries(args.queries)
    texts = [q["query"] for q in queries]
    relevant = [q["relevant"] for q in queries]
    ext = np.asarray(firms.external_ids)

    def ndcg(fused: np.ndarray) -> float:
        top = np.argsort(-fused, axis=1)[:, :100]
        return round(score_rankings([list(ext[t]) for t in top], relevant)["ndcg@10"], 4)

    onnx_cache = args.models_dir / "onnx-cache"
    engine = build_engine(firms, "", models_dir=args.models_dir, onnx_cache=onnx_cache, vector_cache=args.vector_cache)
    zc = {c: z(s) for c, s in channel_matrix(engine, texts).items()}
    lexical = 0.5 * zc["bm25"] + 0.5 * zc["char"]
    base = lexical + args.dense * zc["dense"]
    print(f"product fusion (dense {args.dense:g}): {ndcg(base)}", flush=True)

    stripped = [LABEL_SUFFIX.sub("", q) or q for q in texts]
    zs = {c: z(s) for c, s in channel_matrix(engine, stripped).items()}
    print(f"query suffix 行业/产业 stripped: {ndcg(0.5 * zs['bm25'] + 0.5 * zs['char'] + args.dense * zs['dense'])}")

    seg_docs, owner = segments(args.firms)
    size = np.log(np.bincount(owner, minlength=len(ext)))
    size_z = (size - size.mean()) / (size.std() or 1)
    for a in (0.1, 0.3, 0.5, 0.8):
        print(f"profile-size prior a={a:g}: {ndcg(base + a * size_z[None, :])}", flush=True)

    embedder = make_embedder("", models_dir=args.models_dir, cache_dir=onnx_cache)
    documents, _ = cached_encoders(embedder, args.vector_cache, None)
    seg_engine = MatchEngine(embedder=embedder, weights=FusionWeights(dense=1))
    seg_engine.build(seg_docs, vectors=documents([d.text for d in seg_docs]))
    seg = channel_matrix(seg_engine, texts)
    seg_fused = 0.5 * z(seg["bm25"]) + 0.5 * z(seg["char"]) + args.dense * z(seg["dense"])
    best, second = best_two(seg_fused, owner, len(ext))
    for beta in (0, 0.1, 0.3):
        print(f"segments: best + {beta:g} x second best: {ndcg(z(best + beta * np.maximum(second, 0)))}")
    print(f"segments best, averaged with the product fusion: {ndcg(z(best) + base)}", flush=True)

    embedder.document_prompt = embedder.query_prompt  # e5's symmetric use: both sides "query: "
    symmetric = z(embedder.encode_queries(texts) @ embedder.encode([d.text for d in firms.docs]).T)
    print(f"symmetric prompt, dense alone: {ndcg(symmetric)} (passage prompt {ndcg(zc['dense'])})")
    print(f"symmetric prompt, fused: {ndcg(lexical + args.dense * symmetric)}")


if __name__ == "__main__":
    main()
