"""Candidate rows and their explanations: the best-fitting link, the most similar local firm, Chinese reasons."""

from __future__ import annotations

from typing import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.chain_models import ChainLink
from chains.enterprise_models import Enterprise
from webapp.services.match import evidence as evidence_module
from webapp.services.match import store
from webapp.services.match.evidence import normalized_terms, terms_in
from webapp.services.match.links import LinkSet
from webapp.services.match.profiles import link_terms
from webapp.services.match.results import Candidate, LinkRef


def score_matrix(
    engine, state: store.EngineState, queries: Mapping[str, str], doc_ids: list[int], hubness: bool = True
) -> dict[str, dict[int, float]]:
    """Fused score of each doc under each query (query key → doc id → score), comparable across queries.

    The engine's own search standardises scores within the searched set, which makes a 20-firm set's scores
    incomparable between two links; here every channel is standardised over the whole pool instead. `hubness`:
    as searches score them (matching.engine.hubness), else the plain fused scores.
    """
    import math

    keys = list(queries)
    ids = [int(i) for i in doc_ids]
    with state.lock:
        # One product per channel for all queries × docs; the queries' side is cached by the engine per pool state.
        matrix = engine.query_scores([queries[k] for k in keys], ids, hubness=hubness)
    return {key: {i: float(v) for i, v in zip(ids, matrix[q]) if not math.isnan(v)} for q, key in enumerate(keys)}


def matched_products(link: ChainLink, enterprise: Enterprise) -> list[str]:
    """The link's products / keywords / synonyms that appear in the firm's products or business scope."""
    return terms_in(normalized_terms(link_terms(link)), enterprise)


def candidate_row(
    ent: Enterprise,
    rank: int,
    score: float,
    channels: dict,
    terms: list[str],
    link_terms_normalized: list[tuple[str, str]],
    match_score: int | None,
) -> Candidate:
    return Candidate(
        enterprise_id=ent.id,
        name=ent.name,
        rank=rank,
        score=round(score, 4),
        province=ent.province or "",
        city=ent.city or "",
        country=ent.country or "",
        status=ent.status or "",
        tags=ent.tag_names,
        channels={c: round(float(v), 4) for c, v in channels.items()},
        matched_terms=terms,
        matched_products=terms_in(link_terms_normalized, ent),
        match_score=match_score,
        evidence=evidence_module.grade(ent, link_terms_normalized, terms, "dense" in channels),
    )


def explain(
    session: Session,
    engine,
    state: store.EngineState,
    links: LinkSet,
    chain_id: str,
    items: list[Candidate],
    roster: Sequence[int],
) -> None:
    """Best-fitting leaf link of the chain and most similar local firm for each candidate, plus Chinese reasons."""
    if not items:
        return
    ids = [c.enterprise_id for c in items]
    leaves = links.leaves(chain_id)
    fits = score_matrix(engine, state, {key: links.query(key) for key in leaves}, ids)
    look_alike = [None] * len(items)
    if roster:
        with state.lock:  # roster × page candidates in one step, as engine.similar(id, k=1, roster) would rank
            look_alike = engine.best_look_alikes(ids, list(roster))
    similar_ids = sorted({int(top.id) for top in look_alike if top is not None})
    names = (
        dict(session.execute(select(Enterprise.id, Enterprise.name).where(Enterprise.id.in_(similar_ids))).all())
        if similar_ids
        else {}
    )
    for c, top in zip(items, look_alike):
        scored = [(fits[key][c.enterprise_id], key) for key in leaves if c.enterprise_id in fits[key]]
        if scored:
            score, key = max(scored)
            c.best_link = LinkRef(chain_id, key, links.links[key].name, engine.match_score(score))
        if top is not None:
            c.similar_local = {
                "enterprise_id": int(top.id),
                "name": names.get(int(top.id), ""),
                "similarity": engine.similarity_score(float(top.score)),
            }
        c.explanation = reasons(c)


def reasons(c: Candidate) -> list[str]:
    reasons = [evidence_module.REASONS[c.evidence]] if c.evidence else []
    if c.matched_products:
        reasons.append("产品/关键词匹配：" + "、".join(c.matched_products[:6]))
    if c.matched_terms:
        reasons.append("命中检索词：" + "、".join(c.matched_terms[:8]))
    if c.best_link is not None:
        reasons.append(f"最契合环节：{c.best_link.name}")
    if c.similar_local:
        reasons.append(f"与本地企业“{c.similar_local['name']}”相似")
    return reasons
