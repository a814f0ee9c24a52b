"""Learning from confirmed link assignments and candidate feedback.

A labelled example is a link query and the firms confirmed on that link (relevant), plus optionally
firms marked "not relevant". Two mechanisms, measured on the ICKG benchmark (docs/matching.md):

1. Label memory (document expansion by confirmed queries). Every confirmed (query, firm) pair is
   remembered; for a new query, a firm gets evidence from the confirmed queries similar to it
   (character 1–3-gram TF-IDF cosine between query texts): the best such similarity, their sum,
   and how many links the firm is confirmed on. Appending the confirmed query text to a learned
   BM25 field of the profile was measured too and lowered nDCG when fused directly, so the memory
   enters only as re-ranker features.
2. A learned re-ranker (gradient-boosted trees, scikit-learn) over per-channel features of the top
   fused candidates plus the label-memory features. Memory features of training rows are computed
   out-of-fold, so the model sees them as they will be for an unseen query.

`learn` adopts the model only when an internal cross-validation over the examples (disjoint
queries) shows an nDCG@10 gain of at least MIN_GAIN over the default fusion.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from matching.engine import BASE_FEATURES, RERANK_CANDIDATES
from matching.metrics import mean, ndcg_at_k
from matching.text import normalize

if TYPE_CHECKING:
    from matching.engine import MatchEngine

MIN_GAIN = 0.005  # nDCG@10 gain the internal cross-validation must show before a model is adopted
MIN_EXAMPLES = 10  # fewer labelled queries than this: nothing to learn from reliably
CV_FOLDS = 3  # outer folds of the adoption test
INNER_FOLDS = 4  # folds used to compute out-of-fold label-memory features for training rows
MEMORY_FEATURES = ("mem_max_sim", "mem_sum_sim", "mem_log_count")
# Tree settings: small leaves and a modest learning rate; early stopping off keeps training deterministic.
RANKER_PARAMS = dict(
    max_iter=150, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=50, early_stopping=False, random_state=0
)


def single_thread() -> AbstractContextManager[object]:
    """Run scikit-learn's OpenMP code on one thread: on a shared machine its thread pool was ~25x slower."""
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[object] = threadpool_limits(1)
    return limits


# A confirmed link asked again must rank its confirmed firms high. Out-of-fold rows alone never show
# the trees a similarity of 1, and they extrapolated there arbitrarily: re-asking the 581 dev queries
# after learning scored 0.51 nDCG@10, below the 0.575 of no learning. Two remedies, both measured:
# the trees are non-decreasing in the similarity features, and training also gets "repeat" rows
# (memory including the query's own confirmation) for a quarter of the training queries — all of them
# cost 0.002 nDCG@10 on new queries; re-asking then scores 0.72. The confirmation
# count stays unconstrained: out-of-fold, a firm confirmed on other, unrelated links is *less* likely
# relevant, and forcing it increasing cost 0.009 nDCG@10 in cross-validation.
_INCREASING = {"mem_max_sim", "mem_sum_sim"}
REPEAT_ROWS = True
REPEAT_SHARE = 0.25  # share of training queries that also get repeat rows
MONOTONIC = tuple(1 if name in _INCREASING else 0 for name in BASE_FEATURES + MEMORY_FEATURES)


@dataclass
class LabelledQuery:
    query: str
    relevant: list[int]
    irrelevant: list[int] = field(default_factory=list)


class LabelMemory:
    """Confirmed (query → firms) pairs, queried by text similarity of a new query to the confirmed ones."""

    def __init__(self, examples: Sequence[LabelledQuery]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.queries = [e.query for e in examples if e.relevant]
        self.by_doc: dict[int, list[int]] = {}
        for qi, e in enumerate(e for e in examples if e.relevant):
            for d in set(int(x) for x in e.relevant):
                self.by_doc.setdefault(d, []).append(qi)
        self.vectorizer = None
        self.matrix = None
        if self.queries:
            self.vectorizer = TfidfVectorizer(
                analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, preprocessor=normalize, dtype=np.float32
            )
            self.matrix = self.vectorizer.fit_transform(self.queries)

    def features(self, query: str, doc_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        out = np.zeros((len(doc_ids), len(MEMORY_FEATURES)), np.float32)
        if self.vectorizer is None:
            return out
        sims = np.asarray((self.matrix @ self.vectorizer.transform([query]).T).todense()).ravel()
        for a, d in enumerate(doc_ids):
            labels = self.by_doc.get(int(d))
            if labels:
                s = sims[labels]
                out[a] = (s.max(), s.sum(), np.log1p(len(labels)))
        return out


@dataclass
class _Prepared:
    """One example's fused candidates, their base features and labels (independent of the folds)."""

    example: LabelledQuery
    ids: np.ndarray
    base: np.ndarray
    labels: np.ndarray


class LearnedModel:
    """Label memory + re-ranker; `adopted` says whether cross-validation showed a gain."""

    def __init__(self, memory: LabelMemory, ranker: Any, adopted: bool, report: dict[str, Any]) -> None:
        self.memory = memory
        self.ranker = ranker
        self.adopted = adopted
        self.report = report
        self.feature_names = list(BASE_FEATURES) + list(MEMORY_FEATURES)

    def score(self, query: str, doc_ids: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Relevance probability of each candidate."""
        x = np.hstack([base, self.memory.features(query, doc_ids)])
        with single_thread():
            proba: np.ndarray = self.ranker.predict_proba(x)
        return proba[:, 1]

    def summary(self) -> dict[str, Any]:
        return {"adopted": self.adopted, **{k: v for k, v in self.report.items() if not isinstance(v, list)}}


def _prepare(engine: MatchEngine, examples: Sequence[LabelledQuery], candidates: int) -> list[_Prepared]:
    out = []
    for e in examples:
        ids, base = engine.candidate_features(e.query, candidates)
        rel = set(int(x) for x in e.relevant)
        labels = np.fromiter((1 if int(i) in rel else 0 for i in ids), np.int8, count=len(ids))
        out.append(_Prepared(e, ids, base, labels))
    return out


def _memory_rows(
    prepared: Sequence[_Prepared], members: np.ndarray, sources: Sequence[LabelledQuery]
) -> list[np.ndarray]:
    memory = LabelMemory(sources)
    return [memory.features(prepared[i].example.query, prepared[i].ids) for i in members]


def _fit_ranker(prepared: Sequence[_Prepared], members: np.ndarray, inner_folds: int, seed: int) -> Any:
    """Fit the re-ranker on `members`, with their memory features computed out-of-fold: a scikit-learn
    HistGradientBoostingClassifier, or None when the labels are all equal."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.RandomState(seed)
    order = rng.permutation(members)
    folds = [f for f in np.array_split(order, min(inner_folds, len(order))) if len(f)]
    xs, ys = [], []
    for g, fold in enumerate(folds):
        sources = [prepared[i].example for h, other in enumerate(folds) if h != g for i in other]
        for i, mem in zip(fold, _memory_rows(prepared, fold, sources)):
            xs.append(np.hstack([prepared[i].base, mem]))
            ys.append(prepared[i].labels)
    if REPEAT_ROWS:
        # Rows of a confirmed link asked again (its own confirmation in the memory): the product sees
        # both new and repeated links, and without these rows the trees never see a similarity of 1.
        repeat = rng.permutation(members)[: max(1, int(len(members) * REPEAT_SHARE))]
        for i, mem in zip(repeat, _memory_rows(prepared, repeat, [prepared[i].example for i in members])):
            xs.append(np.hstack([prepared[i].base, mem]))
            ys.append(prepared[i].labels)
    x, y = np.vstack(xs), np.concatenate(ys)
    if y.min() == y.max():
        return None
    ranker = HistGradientBoostingClassifier(**RANKER_PARAMS, monotonic_cst=list(MONOTONIC))
    with single_thread():
        ranker.fit(x, y)
    return ranker


def _ndcg(prepared: _Prepared, scores: np.ndarray | None) -> float:
    ids = prepared.ids if scores is None else prepared.ids[np.argsort(-scores, kind="stable")]
    return ndcg_at_k(list(ids), set(int(x) for x in prepared.example.relevant), 10)


def evaluate_gain(
    engine: MatchEngine,
    examples: Sequence[LabelledQuery],
    folds: int = CV_FOLDS,
    seed: int = 0,
    candidates: int = RERANK_CANDIDATES,
    prepared: list[_Prepared] | None = None,
) -> dict[str, Any]:
    """Cross-validated nDCG@10 of the default fusion vs the learned model on disjoint query folds."""
    prepared = prepared if prepared is not None else _prepare(engine, examples, candidates)
    n = len(prepared)
    order = np.random.RandomState(seed).permutation(n)
    parts = [p for p in np.array_split(order, min(folds, n)) if len(p)]
    base_scores, learned_scores = [], []
    for f, test in enumerate(parts):
        train = np.concatenate([p for g, p in enumerate(parts) if g != f]) if len(parts) > 1 else np.zeros(0, int)
        ranker = _fit_ranker(prepared, train, INNER_FOLDS, seed) if len(train) else None
        memory = LabelMemory([prepared[i].example for i in train])
        for i in test:
            p = prepared[i]
            base_scores.append(_ndcg(p, None))
            if ranker is None or len(p.ids) == 0:
                learned_scores.append(base_scores[-1])
                continue
            x = np.hstack([p.base, memory.features(p.example.query, p.ids)])
            with single_thread():
                learned_scores.append(_ndcg(p, ranker.predict_proba(x)[:, 1]))
    baseline, learned = mean(base_scores), mean(learned_scores)
    return {
        "folds": len(parts),
        "queries": n,
        "baseline_ndcg10": baseline,
        "learned_ndcg10": learned,
        "gain": learned - baseline,
    }


def merge_negatives(
    examples: Sequence[LabelledQuery], negatives: Mapping[str, Collection[int]] | None
) -> list[LabelledQuery]:
    """Attach "not relevant" feedback (query text → firm ids) to the examples."""
    merged: dict[str, LabelledQuery] = {}
    for e in examples:
        cur = merged.setdefault(e.query, LabelledQuery(e.query, [], []))
        cur.relevant.extend(int(x) for x in e.relevant if int(x) not in cur.relevant)
        cur.irrelevant.extend(int(x) for x in e.irrelevant)
    for query, ids in (negatives or {}).items():
        cur = merged.setdefault(query, LabelledQuery(query, [], []))
        cur.irrelevant.extend(int(x) for x in ids)
    for e in merged.values():
        bad = set(e.irrelevant)
        e.relevant = [x for x in e.relevant if x not in bad]
    return [e for e in merged.values() if e.relevant]


def learn(
    engine: MatchEngine,
    examples: Sequence[LabelledQuery],
    negatives: Mapping[str, Collection[int]] | None = None,
    folds: int = CV_FOLDS,
    min_gain: float = MIN_GAIN,
    seed: int = 0,
    candidates: int = RERANK_CANDIDATES,
) -> LearnedModel:
    """Learn a re-ranker from labelled queries; adopted only when cross-validation shows ≥ min_gain nDCG@10.

    Candidates that are not confirmed count as negatives; a firm marked not relevant for a query is
    removed from that query's relevant firms (the latest judgement wins over an older confirmation).
    """
    start = time.time()
    examples = merge_negatives(examples, negatives)
    report: dict[str, Any] = {"examples": len(examples)}
    if len(examples) < MIN_EXAMPLES:
        report.update(reason=f"fewer than {MIN_EXAMPLES} labelled queries", seconds=time.time() - start)
        return LearnedModel(LabelMemory(examples), None, False, report)
    prepared = _prepare(engine, examples, candidates)
    gain = evaluate_gain(engine, examples, folds, seed, candidates, prepared=prepared)
    report.update(gain)
    ranker = _fit_ranker(prepared, np.arange(len(prepared)), INNER_FOLDS, seed)
    adopted = ranker is not None and gain["gain"] >= min_gain
    if not adopted:
        report["reason"] = f"cross-validated gain {gain['gain']:+.4f} below {min_gain}"
    report["seconds"] = round(time.time() - start, 2)
    return LearnedModel(LabelMemory(examples), ranker, adopted, report)
