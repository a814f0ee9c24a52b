"""Would a re-ranker learned from one benchmark's dev labels serve as a default? And where are ICKG's misses?

Issue 14 allows "a learned combination" tuned on the dev files. This script measures whether one would hold as a
default configuration: the product's re-ranker (matching.learning's trees and settings) over the generic per-candidate
features only (matching.engine.features.BASE_FEATURES: channel z-scores, ranks, coverage, lengths; no label memory,
which would carry the dev labels themselves), on the 200 best fused candidates of each query, trained

- in-domain: 5-fold cross-validation over disjoint queries of one benchmark;
- pooled: the same folds, the other benchmark's queries (all of them) added to every training fold;
- across: trained on the other benchmark only, tested on all of this one's queries.

It also counts how ICKG's dev labels spread over firms (how many labels the most-labelled firms carry, and how many
of the labels the default ranking misses in its top 10 sit on them). Usage (an instance where `chainmatch init` has
converted the bundled model; vectors come from its embedding cache):

    CHAINMATCH_INSTANCE_PATH=/work/eval/instance .venv/bin/python bench/rerank_transfer.py \\
        --benchmarks ../shared/benchmarks/ickg ../shared/benchmarks/sw3 --instance /work/eval/instance

Prints one JSON object; docs/matching.md gives the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matching.evaluation import build_engine, read_firms, read_queries  # noqa: E402
from matching.learning import RANKER_PARAMS, single_thread  # noqa: E402
from matching.metrics import ndcg_at_k  # noqa: E402

FOLDS = 5
CANDIDATES = 200
MANY_LABELS = 5  # a firm labelled on at least this many dev queries counts as "widely labelled"

Prepared = tuple[np.ndarray, np.ndarray, np.ndarray, set[str]]  # candidate external ids, features, labels, relevant


def prepare(folder: Path, instance: Path) -> tuple[list[Prepared], dict[str, int]]:
    """Each dev query's fused candidates with their features and labels, and the ICKG-style label spread."""
    firms, queries = read_firms(folder / "firms.csv"), read_queries(folder / "dev_queries.jsonl")
    models = instance / "models"
    engine = build_engine(
        firms, "", models_dir=models, onnx_cache=models / "onnx-cache", vector_cache=instance / "embedding-cache"
    )
    ext = np.asarray(firms.external_ids)
    out: list[Prepared] = []
    for q in queries:
        ids, base = engine.candidate_features(q["query"], CANDIDATES)
        relevant = set(q["relevant"])
        labels = np.fromiter((ext[i] in relevant for i in ids), np.int8, count=len(ids))
        out.append((ext[ids], base, labels, relevant))
    counts = Counter(d for q in queries for d in q["relevant"])
    many = {d for d, c in counts.items() if c >= MANY_LABELS}
    missed = [d for (cand, _, _, rel) in out for d in rel if d not in set(cand[:10].tolist())]
    spread = {
        "labels": sum(counts.values()),
        "firms_with_many_labels": len(many),
        "labels_on_them": sum(counts[d] for d in many),
        "missed_in_top10": len(missed),
        "missed_on_them": sum(1 for d in missed if d in many),
        "most_labels_on_one_firm": max(counts.values()),
    }
    return out, spread


def ndcg(p: Prepared, scores: np.ndarray | None = None) -> float:
    cand, _, _, rel = p
    order = cand if scores is None else cand[np.argsort(-scores, kind="stable")]
    return ndcg_at_k(list(order), rel, 10)


def fit(rows: list[Prepared]):
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.vstack([p[1] for p in rows if len(p[0])])
    y = np.concatenate([p[2] for p in rows if len(p[0])])
    model = HistGradientBoostingClassifier(**RANKER_PARAMS)
    with single_thread():
        model.fit(x, y)
    return model


def learned(model, p: Prepared) -> float:
    if not len(p[0]):
        return ndcg(p)
    with single_thread():
        return ndcg(p, model.predict_proba(p[1])[:, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmarks", type=Path, nargs=2, required=True)
    ap.add_argument("--instance", type=Path, required=True)
    args = ap.parse_args()
    data, spread = {}, {}
    for folder in args.benchmarks:
        data[folder.name], spread[folder.name] = prepare(folder, args.instance)
    folds = {
        name: np.array_split(np.random.RandomState(0).permutation(len(rows)), FOLDS) for name, rows in data.items()
    }
    result: dict[str, dict] = {}
    for name, rows in data.items():
        (other,) = [rows2 for name2, rows2 in data.items() if name2 != name]
        default, own, pooled = [], [], []
        for f, test in enumerate(folds[name]):
            train = [rows[i] for g, part in enumerate(folds[name]) if g != f for i in part]
            own_model, pooled_model = fit(train), fit(train + other)
            for i in test:
                default.append(ndcg(rows[i]))
                own.append(learned(own_model, rows[i]))
                pooled.append(learned(pooled_model, rows[i]))
        across_model = fit(other)
        result[name] = {
            "default_ndcg10": round(float(np.mean(default)), 4),
            "in_domain_cv": round(float(np.mean(own)), 4),
            "pooled_cv": round(float(np.mean(pooled)), 4),
            "across": round(float(np.mean([learned(across_model, p) for p in rows])), 4),
            "label_spread": spread[name],
        }
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
