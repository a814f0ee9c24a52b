"""Labelled examples for learning (confirmed assignments and users' feedback per link query), and re-learning on a
rebuilt engine. Below both the index store (which re-learns after a rebuild) and learning.relearn."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.cluster_models import Cluster, LinkAssignment
from chains.feedback_models import LABEL_NOT_RELEVANT, POSITIVE_LABELS, CandidateFeedback, LearnedWeights
from webapp.services.match.profiles import cluster_links


def labelled_examples(session: Session):
    """(LabelledQuery list, negatives by query): confirmed firms and positive feedback per link query.

    The latest feedback per (cluster, link, firm) wins; a confirmed assignment always counts as relevant.
    """
    from matching.learning import LabelledQuery

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


def reapply_learning(session: Session, engine) -> int | None:
    """After a rebuild: re-learn on the new engine when a model had been adopted before; the adopted row id."""
    from matching.learning import MIN_GAIN, learn

    name = engine.info().get("embedder")
    row = session.scalars(
        select(LearnedWeights)
        .where(LearnedWeights.adopted.is_(True), LearnedWeights.embedder == name)
        .order_by(LearnedWeights.id.desc())
    ).first()
    if row is None:
        return None
    examples, negatives = labelled_examples(session)
    model = learn(engine, examples, negatives=negatives, min_gain=min(MIN_GAIN, row.gain or MIN_GAIN))
    return row.id if engine.apply_learning(model) else None
