"""MatchEngine on a small synthetic Chinese corpus: ranking, filters, explanations, updates, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from matching.embedders import BuiltinEmbedder
from matching.engine import Document, MatchEngine
from matching.fusion import FusionWeights
from matching.profiles import enterprise_profile, link_query
from tests.worlds.matching_corpus import corpus


@pytest.fixture(scope="module")
def built():
    docs, groups = corpus()
    engine = MatchEngine()
    engine.build(docs)
    return engine, groups


def test_cathode_query_ranks_cathode_firms_first(built):
    engine, groups = built
    hits = engine.search("正极材料", k=10)
    cathode = set(groups["cathode"])
    assert [h.id in cathode for h in hits[:8]] == [True] * 8
    assert all(hits[i].score >= hits[i + 1].score for i in range(len(hits) - 1))
    assert set(hits[0].channels) >= {"bm25", "char"}


def test_matched_terms_name_the_shared_terms(built):
    engine, groups = built
    hit = engine.search("磷酸铁锂正极材料", k=1)[0]
    assert hit.id in groups["cathode"]
    assert any("正极" in t or "材料" in t or "磷酸" in t for t in hit.matched_terms)
    assert all(t in engine.document(hit.id).text for t in hit.matched_terms)


def test_matched_terms_are_spelled_as_the_link_writes_them():
    """The word channel lower-cases; users read the link's own "KrF", "PEM", not "krf", "pem"."""
    docs, _ = corpus()
    firm = Document(
        900, "示例光刻材料有限公司", enterprise_profile("示例光刻材料有限公司", "krf光刻胶；PEM电解槽用质子膜")
    )
    engine = MatchEngine()
    engine.build([*docs, firm])
    query = "ＫｒＦ光刻胶 Pem电解槽"
    hit = next(h for h in engine.search(query, k=5) if h.id == 900)
    assert "KrF" in hit.matched_terms and "Pem" in hit.matched_terms
    assert "krf" not in hit.matched_terms and "pem" not in hit.matched_terms
    assert engine.matched_terms(query, 900) == hit.matched_terms


def test_allowed_and_excluded_ids_are_honoured(built):
    engine, groups = built
    allowed = groups["ship"][:3] + groups["cathode"][:2]
    hits = engine.search("正极材料", k=10, allowed_ids=allowed)
    assert {h.id for h in hits} <= set(allowed)
    assert [h.id for h in hits[:2]] == [h.id for h in hits[:2] if h.id in groups["cathode"]]
    excluded = groups["cathode"][:5]
    hits = engine.search("正极材料", k=10, excluded_ids=excluded)
    assert not {h.id for h in hits} & set(excluded)
    assert hits[0].id in groups["cathode"]


def test_add_replace_and_remove_documents():
    docs, groups = corpus()
    engine = MatchEngine()
    engine.build(docs)
    new = Document(
        999, "临港氢能示例有限公司", enterprise_profile("临港氢能示例有限公司", "氢燃料电池电堆；质子交换膜")
    )
    engine.add([new])
    assert engine.search("氢燃料电池", k=1)[0].id == 999
    engine.add([Document(999, "临港船舶示例有限公司", enterprise_profile("临港船舶示例有限公司", "船舶设计与建造"))])
    assert len(engine) == len(docs) + 1  # same id replaces
    assert engine.search("临港船舶", k=1)[0].id == 999
    assert not any("氢" in t for h in engine.search("氢燃料电池", k=5) for t in h.matched_terms)
    engine.remove([999, groups["cathode"][0], 123456])
    ids = [h.id for h in engine.search("正极材料", k=40)]
    assert 999 not in ids and groups["cathode"][0] not in ids
    assert len(engine) == len(docs) - 1


def test_similar_finds_same_industry_firms_and_excludes_itself():
    docs, groups = corpus()
    engine = MatchEngine(embedder=BuiltinEmbedder(dim=16))
    engine.build(docs)
    target = groups["pharma"][0]
    hits = engine.similar(target, k=5)
    assert target not in [h.id for h in hits]
    assert sum(h.id in groups["pharma"] for h in hits) >= 4
    assert "dense" in hits[0].channels


def test_save_and_load_give_the_same_results(tmp_path):
    docs, _ = corpus()
    engine = MatchEngine(embedder=BuiltinEmbedder(dim=16), weights=FusionWeights(dense=0.1))
    engine.build(docs)
    before = engine.search("船舶 海洋工程", k=8)
    engine.save(tmp_path / "idx")
    loaded = MatchEngine.load(tmp_path / "idx")
    after = loaded.search("船舶 海洋工程", k=8)
    assert [h.id for h in after] == [h.id for h in before]
    assert np.allclose([h.score for h in after], [h.score for h in before], atol=1e-5)
    info = loaded.info()
    assert info["count"] == len(docs) and info["embedder"].startswith("builtin-")
    assert info["weights"]["dense"] == 0.1


def test_empty_engine_and_empty_query():
    engine = MatchEngine()
    engine.build([])
    assert engine.search("正极材料") == []
    docs, _ = corpus()
    engine.build(docs)
    assert len(engine.search("", k=5)) == 5  # no evidence: still a well-formed ranking


def test_link_query_puts_the_link_terms_first_and_leaves_the_chain_name_out():
    q = link_query(["动力电池", "正极材料"], "正极材料是锂电池的关键材料", ["正极材料"], ["阴极材料"], ["磷酸铁锂"])
    assert q.startswith("正极材料")
    assert "阴极材料" in q and "磷酸铁锂" in q and "动力电池" in q and "关键材料" in q
