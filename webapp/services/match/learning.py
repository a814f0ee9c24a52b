"""Feedback recording and learning: labelled examples from confirmed assignments and feedback → matching.learning."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from chains.cluster_models import Cluster
from chains.feedback_models import (
    FEEDBACK_LABELS,
    CandidateFeedback,
    LearnedWeights,
)
from webapp.services.match import engine_build, engine_state, index_files, store
from webapp.services.match.labels import labelled_examples

logger = logging.getLogger("chainmatch.matchsvc")

DECIDING_METRIC = "ndcg@10"


def _user_id(user: Any) -> int | None:
    if user is None:
        return None
    if isinstance(user, int):
        return user
    return getattr(user, "id", None)


def record_feedback(
    session: Session, cluster_id: str, link_key: str, enterprise_id: int, label: str, user: Any = None
) -> CandidateFeedback:
    """Store a user's judgement of a candidate (relevant / not_relevant / contacted); the caller commits."""
    if label not in FEEDBACK_LABELS:
        raise ValueError(f"无效的反馈标签：{label}（可选 {', '.join(FEEDBACK_LABELS)}）")
    if session.get(Cluster, cluster_id) is None:
        raise ValueError(f"集聚区 {cluster_id} 不存在")
    row = CandidateFeedback(
        cluster_id=cluster_id, link_key=link_key, enterprise_id=int(enterprise_id), label=label, user_id=_user_id(user)
    )
    session.add(row)
    session.flush()
    return row


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
        embedder=state.meta.get("embedder", ""),
        weights=engine_build.jsonable(model.summary()),
        baseline={"ndcg@10": report.get("baseline_ndcg10")},
        learned={"ndcg@10": report.get("learned_ndcg10")},
        metric=DECIDING_METRIC,
        gain=report.get("gain"),
        queries=len(examples),
        positives=sum(len(e.relevant) for e in examples),
        negatives=sum(len(v) for v in negatives.values()),
        adopted=bool(model.adopted),
        note=str(report.get("reason", "")),
        created_by_id=_user_id(user),
    )
    session.add(row)
    session.flush()
    if model.adopted:
        with state.lock:
            engine.apply_learning(model)
            state.meta = {**state.meta, "learned_weights_id": row.id}
            engine_state.changed(state)
            with index_files.folder_lock(app):
                index_files.save_engine(app, engine, state.meta)
        logger.info("learned re-ranker adopted (gain %s over %d queries)", row.gain, row.queries)
    else:
        logger.info("learned re-ranker not adopted: %s", row.note)
    return row
