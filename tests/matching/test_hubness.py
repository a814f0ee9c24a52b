"""Hubness correction (matching.engine.hubness): a generalist that scores high on every link of the bank gives way to
the specialist of a link; scores, query_scores and later additions stay consistent."""

from __future__ import annotations

import numpy as np
import pytest

from matching.engine import Document, MatchEngine
from matching.engine.hubness import HUB_TOP_K, HUB_WEIGHT, Hubness, bank_key, compute_hubness
from matching.evaluation import use_query_bank

BANK = ["船用钢板", "船用焊丝", "船用柴油机", "船舶维修", "港口机械", "海水淡化"]
GENERALIST, SPECIALIST = 0, 1


def _docs() -> list[Document]:
    docs = [
        # Names every link of the bank, the steel plate three times: without the correction it leads the steel link
        # over a steel maker whose profile goes on about other steel products.
        Document(
            GENERALIST, "综合船舶配套集团", "船用钢板 船用钢板 船用钢板 船用焊丝 船用柴油机 船舶维修 港口机械 海水淡化"
        ),
        Document(SPECIALIST, "专业船板钢厂", "船用钢板 高强度钢板 钢材轧制"),
    ]
    topics = ["生物医药", "软件开发", "食品加工", "服装纺织", "家具制造", "物流运输", "化妆品", "教育培训"]
    docs += [Document(10 + i, f"合成企业{i}", f"{topic} 产品销售") for i, topic in enumerate(topics * 3)]
    return docs


@pytest.fixture
def engine() -> MatchEngine:
    built = MatchEngine()
    built.build(_docs())
    return built


def test_the_generalist_gives_way_to_the_specialist(engine):
    before = [h.id for h in engine.search("船用钢板", k=3)]
    assert before[0] == GENERALIST  # the premise: uncorrected, the firm that names everything comes first
    raw = {h.id: h.score for h in engine.search("船用钢板", k=len(_docs()))}
    use_query_bank(engine, BANK)
    assert engine.hubness_key == bank_key(BANK)
    hits = engine.search("船用钢板", k=3)
    assert [h.id for h in hits][:2] == [SPECIALIST, GENERALIST]
    # The score users see is the corrected one, and query_scores (the firm page, the best link) agrees with it.
    hub = engine.hubness
    for h in hits:
        assert h.score == pytest.approx(raw[h.id] - HUB_WEIGHT * hub.of([h.id])[0])
    scored = engine.query_scores(["船用钢板"], [h.id for h in hits])[0]
    assert np.allclose(scored, [h.score for h in hits])
    plain = engine.query_scores(["船用钢板"], [h.id for h in hits], hubness=False)[0]  # placement's threshold
    assert np.allclose(plain, [raw[h.id] for h in hits])
    # Without a bank the ranking is the plain fused one again.
    engine.set_hubness(None)
    assert [h.id for h in engine.search("船用钢板", k=3)] == before


def test_hubness_is_the_mean_of_each_firms_best_bank_scores(engine):
    ids = [d.id for d in _docs()]
    scores = engine.query_scores(BANK, ids)  # uncorrected: no hubness is set yet
    hubness = engine.compute_hubness(BANK)
    top = min(HUB_TOP_K, len(BANK))
    expected = -np.sort(-scores, axis=0)[:top].mean(axis=0)
    assert np.allclose(hubness.of(ids), expected)
    assert hubness.of([GENERALIST])[0] > hubness.of([SPECIALIST])[0]
    # Chunked scoring gives the same values as one pass.
    chunked = compute_hubness(lambda q, chunk: engine.query_scores(q, chunk.tolist()), BANK, ids)
    assert np.allclose(chunked.of(ids), expected) and chunked.key == hubness.key


def test_firms_added_later_and_unknown_ids_have_no_hubness(engine):
    use_query_bank(engine, BANK)
    engine.add([Document(99, "新增船板公司", "船用钢板 船板")])
    assert engine.hubness.of([99, 12345]).tolist() == [0.0, 0.0]
    assert 99 in [h.id for h in engine.search("船用钢板", k=5)]


def test_bank_key_ignores_order_and_repeats():
    assert bank_key(["甲", "乙", "甲"]) == bank_key(["乙", "甲"]) != bank_key(["甲"])
    empty = Hubness("k", np.zeros(0, np.int64), np.zeros(0))
    assert empty.of([1, 2]).tolist() == [0.0, 0.0] and empty.rerank([], 3) == []
