"""Where the default loses on ICKG: nDCG@10 by kind of label, and how sure the ratio to the lexical reference is.

ICKG's labels are of two kinds by their text: sector-level labels ending in 行业 ("智能设备行业", "AI眼镜行业"), whose
relevant firms are mostly firms known from the news (华为, 百度, 中国电信) with product names for a profile, and the
rest (products, technologies, manufacturing: "3D打印医疗器械", "ABS树脂制造"). Prints, for each kind, the lexical
channels alone, the dense channel alone and the z-score fusion at several dense weights, then the product's own
ranking (`MatchEngine.search`, as `chainmatch eval-matching` ranks) against the benchmark README's lexical reference
(BM25 over jieba words + char 1–3-gram TF-IDF, z-scores .5/.5), with a bootstrap over queries of the ratio of their
mean nDCG@10 (the issue's bar is a ratio on held-out labels). Nothing here is in the product's ranking.

    CHAINMATCH_INSTANCE_PATH=/work/eval/instance .venv/bin/python bench/ickg_query_types.py \\
        --firms ../shared/benchmarks/ickg/firms.csv --queries ../shared/benchmarks/ickg/dev_queries.jsonl \\
        --models-dir /work/eval/instance/models --vector-cache /work/eval/instance/embedding-cache
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.probe_harness import benchmark_parser  # noqa: E402
from bench.profile_evidence_probes import z  # noqa: E402
from matching.engine.pool import indexed_text  # noqa: E402
from matching.evaluation import build_engine, rank_queries, read_firms, read_queries, use_query_bank  # noqa: E402
from matching.fusion import FusionWeights  # noqa: E402
from matching.lexical import BM25Channel  # noqa: E402
from matching.metrics import ndcg_at_k  # noqa: E402

SECTOR_SUFFIX = "行业"
DENSE_WEIGHTS = (0.5, 0.75, 1.0, 2.0, 4.0)
BOOTSTRAP_ROUNDS = 10_000
RATIO_BARS = (1.05, 1.15)


def per_query_ndcg(scores: np.ndarray, ext: np.ndarray, relevant: list[set[str]]) -> np.ndarray:
    """nDCG@10 of each query's ranking by a score matrix (queries × pool rows)."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    return np.array([ndcg_at_k(list(ext[t]), rel) for t, rel in zip(top, relevant)])


def by_kind(label: str, values: np.ndarray, sector: np.ndarray) -> str:
    if not sector.any() or sector.all():  # one kind only (SW3's labels are 申万 industry names)
        return f"{label:24s} all {values.mean():.4f}"
    return (
        f"{label:24s} all {values.mean():.4f}   {SECTOR_SUFFIX} ({sector.sum()}) {values[sector].mean():.4f}"
        f"   others ({(~sector).sum()}) {values[~sector].mean():.4f}"
    )


def main() -> None:
    args = benchmark_parser(__doc__.splitlines()[0]).parse_args()
    firms, queries = read_firms(args.firms), read_queries(args.queries)
    texts, relevant = [q["query"] for q in queries], [set(q["relevant"]) for q in queries]
    ext = np.asarray(firms.external_ids)
    sector = np.array([t.endswith(SECTOR_SUFFIX) for t in texts])

    engine = build_engine(
        firms, "", models_dir=args.models_dir, onnx_cache=args.models_dir / "onnx-cache", vector_cache=args.vector_cache
    )
    every = FusionWeights(bm25=0.5, char=0.5, dense=1.0)
    raw = [engine.channel_scores(t, every, need_all=True) for t in texts]
    zb, zc, zd = (z(np.stack([r[name] for r in raw])) for name in ("bm25", "char", "dense"))
    lexical = 0.5 * zb + 0.5 * zc
    print(by_kind("lexical channels", per_query_ndcg(lexical, ext, relevant), sector))
    print(by_kind("dense channel", per_query_ndcg(zd, ext, relevant), sector))
    for d in DENSE_WEIGHTS:
        print(by_kind(f"fused, dense {d}", per_query_ndcg(lexical + d * zd, ext, relevant), sector))

    use_query_bank(engine, texts)  # the product's hubness correction, over the labels as eval-matching does
    product = np.array([ndcg_at_k(r, rel) for r, rel in zip(rank_queries(engine, firms, queries, 100), relevant)])
    print(by_kind("product (search)", product, sector))

    # The README's reference: plain BM25 (no best-segment share) and char 1–3-gram TF-IDF, z-scored over the pool.
    plain = BM25Channel("word")
    plain.build([indexed_text(doc) for doc in firms.docs], workers=None)
    tfidf_only = FusionWeights(bm25=0, char=0, tfidf=1, dense=0)
    reference_scores = 0.5 * z(np.stack([plain.scores(t) for t in texts])) + 0.5 * z(
        np.stack([engine.channel_scores(t, tfidf_only)["tfidf"] for t in texts])
    )
    reference = per_query_ndcg(reference_scores, ext, relevant)
    print(by_kind("README reference", reference, sector))

    rng = np.random.default_rng(0)
    n = len(texts)
    draws = rng.integers(0, n, (BOOTSTRAP_ROUNDS, n))
    ratios = product[draws].mean(axis=1) / reference[draws].mean(axis=1)
    low, mid, high = np.percentile(ratios, [2.5, 50, 97.5])
    print(f"ratio product / reference {product.mean() / reference.mean():.4f} (bootstrap 95 %: {low:.4f} … {high:.4f})")
    for bar in RATIO_BARS:
        print(f"  share of bootstrap draws with ratio ≥ {bar}: {(ratios >= bar).mean():.3f}")


if __name__ == "__main__":
    main()
