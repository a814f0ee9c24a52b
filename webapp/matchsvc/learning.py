"""Feedback recording and learning: labelled examples from confirmed assignments and feedback → matching.learning."""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.cluster_models import Cluster, LinkAssignment
from chains.feedback_models import (
    FEEDBACK_LABELS,
    LABEL_NOT_RELEVANT,
    POSITIVE_LABELS,
    CandidateFeedback,
    LearnedWeights,
)
from webapp.matchsvc import index_files, store

logger = logging.getLogger("chainmatch.matchsvc")

DECIDING_METRIC = "ndcg@10"


def _user_id(user: Any) -> int | None:
    if user is None:
        return None
    if isinstance(user, int):
        return user
    return getattr(user, "id", None)


def record_feedback(session: Session, cluster_id: str, link_key: str, enterprise_id: int, label: str,
                    user: Any = None) -> CandidateFeedback:
    """Store a user's judgement of a candidate (relevant / not_relevant / contacted); the caller commits."""
    if label not in FEEDBACK_LABELS:
        raise ValueError(f"无效的反馈标签：{label}（可选 {', '.join(FEEDBACK_LABELS)}）")
    if session.get(Cluster, cluster_id) is None:
        raise ValueError(f"集聚区 {cluster_id} 不存在")
    row = CandidateFeedback(cluster_id=cluster_id, link_key=link_key, enterprise_id=int(enterprise_id), label=label,
                            user_id=_user_id(user))
    session.add(row)
    session.flush()
    return row


def labelled_examples(session: Session):
    """(LabelledQuery list, negatives by query): confirmed firms and positive feedback per link query.

    The latest feedback per (cluster, link, firm) wins; a confirmed assignment always counts as relevant.
    """
    from matching.learning import LabelledQuery
    from webapp.matchsvc.candidates import cluster_links

    relevant: dict[tuple[str, str], set[int]] = defaultdict(set)
    negative: dict[tuple[str, str], set[int]] = defaultdict(set)
    for a in session.scalars(select(LinkAssignment).where(LinkAssignment.confirmed.is_(True))):
        relevant[(a.cluster_id, a.link_key)].add(a.enterprise_id)
    latest: dict[tuple[str, str, int], str] = {}
    for f in session.scalars(select(CandidateFeedback).order_by(CandidateFeedback.created_at, CandidateFeedback.id)):
        latest[(f.cluster_id, f.link_key, f.enterprise_id)] = f.label
    for (cluster_id, link_key, firm), label in latest.items():
        if label in POSITIVE_LABELS:
            relevant[(cluster_id, link_key)].add(firm)
        elif label == LABEL_NOT_RELEVANT and firm not in relevant[(cluster_id, link_key)]:
            negative[(cluster_id, link_key)].add(firm)
    queries: dict[str, str] = {}
    for cluster_id in {c for c, _ in [*relevant, *negative]}:
        cluster = session.get(Cluster, cluster_id)
        if cluster is not None:
            queries.update({(cluster_id, key): q for key, q in cluster_links(session, cluster).queries.items()})
    examples = [LabelledQuery(queries[key], sorted(ids)) for key, ids in relevant.items() if key in queries and ids]
    negatives: dict[str, set[int]] = defaultdict(set)
    for key, ids in negative.items():
        if key in queries:
            negatives[queries[key]] |= ids
    return examples, dict(negatives)


def relearn(session: Session, app=None, user: Any = None, min_gain: float | None = None) -> LearnedWeights:
    """Learn from confirmed assignments and feedback; adopt the result only when offline evaluation shows a gain.

    Stores a LearnedWeights row with the figures either way; the caller commits.
    """
    from matching.learning import MIN_GAIN, learn

    app = app or current_app._get_current_object()
    store.sync(session, app)
    state = store.state_of(app)
    engine = state.engine
    examples, negatives = labelled_examples(session)
    gain_needed = MIN_GAIN if min_gain is None else min_gain
    with state.lock:
        model = learn(engine, examples, negatives=negatives, min_gain=gain_needed)
    report = dict(model.report)
    row = LearnedWeights(
        embedder=state.meta.get("embedder", ""), weights=store._jsonable(model.summary()),
        baseline={"ndcg@10": report.get("baseline_ndcg10")}, learned={"ndcg@10": report.get("learned_ndcg10")},
        metric=DECIDING_METRIC, gain=report.get("gain"), queries=len(examples),
        positives=sum(len(e.relevant) for e in examples), negatives=sum(len(v) for v in negatives.values()),
        adopted=bool(model.adopted), note=str(report.get("reason", "")), created_by_id=_user_id(user),
    )
    session.add(row)
    session.flush()
    if model.adopted:
        with state.lock:
            engine.apply_learning(model)
            state.meta = {**state.meta, "learned_weights_id": row.id}
            store.changed(state)
            with index_files.folder_lock(app):
                index_files.save_engine(app, engine, state.meta)
        logger.info("learned re-ranker adopted (gain %s over %d queries)", row.gain, row.queries)
    else:
        logger.info("learned re-ranker not adopted: %s", row.note)
    return row


def reapply_learning(session: Session, engine) -> int | None:
    """After a rebuild: re-learn on the new engine when a model had been adopted before; the adopted row id."""
    from matching.learning import MIN_GAIN, learn

    name = engine.info().get("embedder")
    row = session.scalars(select(LearnedWeights).where(LearnedWeights.adopted.is_(True),
                                                       LearnedWeights.embedder == name)
                          .order_by(LearnedWeights.id.desc())).first()
    if row is None:
        return None
    examples, negatives = labelled_examples(session)
    model = learn(engine, examples, negatives=negatives, min_gain=min(MIN_GAIN, row.gain or MIN_GAIN))
    return row.id if engine.apply_learning(model) else None
