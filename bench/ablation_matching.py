"""Ablation of the matching engine's components on a firms/queries benchmark (default: ICKG dev split).

Prints nDCG@10 / Recall@50 / MAP@100 per configuration — each lexical channel, the embedding model alone, z-score
fusion at several dense weights, rank fusion, the product's default (the dense weight matching.fusion gives the
pool) — and a k-fold cross-validated figure for learning (disjoint query folds: learn on the other folds, rank this
fold's queries, never score a query the engine trained on). Usage:

    .venv/bin/python bench/ablation_matching.py [--firms F.csv] [--queries Q.jsonl] [--folds 5] [--model ''|builtin|PATH]
        [--models-dir instance/models] [--vector-cache instance/embedding-cache] [--sample N] [--static]

The model defaults to the bundled multilingual-e5-small (converted into --models-dir); `--model builtin` runs the
lexical channels and the built-in LSA embedder instead; `--static` a static embedder trained from the model on the
benchmark's firms (matching.embedders.static_training), as `chainmatch embedder train-static` trains one on a registry.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matching.engine import MatchEngine  # noqa: E402
from matching.evaluation import build_engine, labelled, rank_queries, read_firms, read_queries  # noqa: E402
from matching.fusion import FusionWeights, pool_weights, pretrained_weights  # noqa: E402
from matching.learning import learn  # noqa: E402
from matching.metrics import score_rankings  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "ickg"

CONFIGS = [
    ("char 1-3-gram TF-IDF cosine", FusionWeights(bm25=0, char=0, tfidf=1)),
    ("BM25 jieba search-mode words", FusionWeights(bm25=1, char=0)),
    ("BM25 char 1-2-grams", FusionWeights(bm25=0, char=1)),
    ("BM25 words + char TF-IDF, z-score (reference)", FusionWeights(bm25=0.5, char=0, tfidf=0.5)),
    ("BM25 words + BM25 chars, RRF", FusionWeights(bm25=1, char=1, method="rrf")),
    ("BM25 words + BM25 chars + TF-IDF .25, z-score", FusionWeights(bm25=0.5, char=0.5, tfidf=0.25)),
    ("lexical default: BM25 words + BM25 chars, z-score .5/.5", FusionWeights()),
]


def row(label: str, metrics: dict, seconds: float) -> str:
    return (
        f"| {label} | {metrics['ndcg@10']:.4f} | {metrics['recall@50']:.4f} | {metrics['map@100']:.4f} "
        f"| {seconds:.1f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firms", type=Path, default=DEFAULT_DIR / "firms.csv")
    ap.add_argument("--queries", type=Path, default=DEFAULT_DIR / "dev_queries.jsonl")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--model", default="", help="'' the bundled multilingual-e5-small, 'builtin' the LSA embedder")
    ap.add_argument("--models-dir", type=Path, default=Path("instance/models"))
    ap.add_argument("--vector-cache", type=Path, default=Path("instance/embedding-cache"))
    ap.add_argument(
        "--static",
        action="store_true",
        help="a static embedder trained from the model on these firms searches instead of the model",
    )
    ap.add_argument("--no-learning", action="store_true")
    ap.add_argument("--only-learning", action="store_true", help="skip the fusion configurations")
    ap.add_argument("--sample", type=int, default=0, help="use only the first N queries (quick exploration)")
    args = ap.parse_args()

    t0 = time.time()
    firms = read_firms(args.firms)
    queries = read_queries(args.queries)
    if args.sample:
        queries = queries[: args.sample]
    from matching.embedders import BuiltinEmbedder, is_builtin

    lexical = pool_weights([d.text for d in firms.docs], pretrained=False)  # the product's weights without a model
    if is_builtin(args.model):
        engine = MatchEngine(embedder=BuiltinEmbedder())
        engine.build(firms.docs)
        default = lexical
    else:
        engine = build_engine(
            firms,
            args.model,
            models_dir=args.models_dir,
            onnx_cache=args.models_dir / "onnx-cache",
            vector_cache=args.vector_cache,
            static=args.static,
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
        default = pretrained_weights([d.text for d in firms.docs])
    print(
        f"built {len(firms.docs)} firms in {time.time() - t0:.1f}s with {engine.embedder.name}; {len(queries)} queries",
        flush=True,
    )
    relevant = [q["relevant"] for q in queries]
    print("| configuration | nDCG@10 | Recall@50 | MAP@100 | seconds |")
    print("|---|---|---|---|---|")
    configs = list(CONFIGS)
    configs += [(f"lexical default + name channel by the pool's profile length ({lexical.name:g})", lexical)]
    configs += [
        ("embedding model alone (dense)", FusionWeights(bm25=0, char=0, dense=1)),
        ("BM25 words + chars + dense, RRF", FusionWeights(bm25=1, char=1, dense=1, method="rrf")),
    ]
    configs += [
        (f"BM25 words + chars .5/.5 + dense {w:g}, z-score", FusionWeights(dense=w))
        for w in (0.25, 0.5, 0.75, 1, 2, 4, 8)
    ]
    configs += [
        (
            f"PRODUCT DEFAULT: dense and name weights by the pool's profile length ({default.dense:g}, {default.name:g})",
            default,
        )
    ]
    for label, weights in [] if args.only_learning else configs:
        engine.weights = weights
        t = time.time()
        print(
            row(label, score_rankings(rank_queries(engine, firms, queries, 100), relevant), time.time() - t), flush=True
        )
    engine.weights = default
    if args.no_learning:
        return
    # k-fold cross-validation of learning over disjoint queries.
    order = np.random.RandomState(0).permutation(len(queries))
    folds = np.array_split(order, args.folds)
    rankings: list = [None] * len(queries)
    adopted = 0
    t = time.time()
    for f, test in enumerate(folds):
        train = [queries[i] for g, fold in enumerate(folds) if g != f for i in fold]
        model = learn(engine, labelled(train, firms))
        adopted += engine.apply_learning(model)
        for i, ranked in zip(test, rank_queries(engine, firms, [queries[i] for i in test], 100)):
            rankings[i] = ranked
        engine.apply_learning(None)
        print(f"  fold {f + 1}/{args.folds}: {model.summary()}", file=sys.stderr, flush=True)
    print(
        row(
            f"PRODUCT DEFAULT + learning ({args.folds}-fold CV, adopted in {adopted}/{args.folds} folds)",
            score_rankings(rankings, relevant),
            time.time() - t,
        ),
        flush=True,
    )
    print(f"total {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
