"""The name channel: BM25 over a firm name's words, weighted by the pool rule (long business scopes bury what
the name states; short title lists already weigh the name in every segment)."""

from __future__ import annotations

import numpy as np
import pytest

import matching.engine.channels as engine_channels
import matching.sparse_topk as sparse_topk
from chains.enterprises import synth
from matching.analysis import Vocabulary, count_matrices
from matching.embedders import BuiltinEmbedder
from matching.engine import Document, MatchEngine
from matching.fusion import (
    LONG_PROFILE_CHARS,
    NAME_WEIGHT_LONG,
    SHORT_PROFILE_CHARS,
    FusionWeights,
    pool_name_weight,
    pool_weights,
    pretrained_dense_weight,
)
from matching.lexical import BM25Channel
from matching.profiles import enterprise_profile
from matching.text import tokenize_query

GENERIC_SCOPE = (
    "企业管理咨询；市场营销策划；会议及展览服务；货物进出口；技术进出口；普通货物仓储服务；信息技术咨询服务；"
    "日用百货销售；办公用品销售；包装材料销售；广告设计、代理；物业管理；停车场服务；非居住房地产租赁；"
    "劳务服务（不含劳务派遣）；机械设备租赁；五金产品批发；建筑材料销售；数据处理服务；软件开发；社会经济咨询服务"
)


def _synth_docs(n: int, seed: int = 5) -> list[Document]:
    return [
        Document(
            3 * i + 1, r["企业名称"], enterprise_profile(r["企业名称"], r["经营范围"], r["主营产品"], r["所属行业"])
        )
        for i, r in enumerate(synth.generate(n, seed))
    ]


def test_the_name_weight_follows_the_pools_profile_length():
    assert pool_name_weight(SHORT_PROFILE_CHARS - 9) == 0.0  # patent-title lists (ICKG: 31 characters)
    assert pool_name_weight(LONG_PROFILE_CHARS + 48) == NAME_WEIGHT_LONG  # business scopes (SW3: 208 characters)
    between = [pool_name_weight(c) for c in (50, 80, 120)]
    assert 0 < between[0] < between[1] < between[2] < NAME_WEIGHT_LONG
    texts = ["x" * 208] * 3
    assert pool_weights(texts, pretrained=True) == FusionWeights(dense=pretrained_dense_weight(208), name=0.1)
    assert pool_weights(texts, pretrained=False) == FusionWeights(dense=0.0, name=0.1)


def _scope_pool() -> list[Document]:
    """Long registered business scopes; 贵州醇香白酒 states its trade in its name and once in its scope, 贵州黔北实业
    three times in its scope only."""
    filler = [
        Document(
            100 + i,
            f"贵州{word}有限公司",
            enterprise_profile(f"贵州{word}有限公司", f"{trade}；{GENERIC_SCOPE}"),
        )
        for i, (word, trade) in enumerate(
            [("路桥工程", "公路工程施工"), ("医药连锁", "药品零售"), ("电子科技", "电子元器件制造")] * 6
        )
    ]
    named = Document(
        1, "贵州醇香白酒股份有限公司", enterprise_profile("贵州醇香白酒股份有限公司", f"白酒生产；{GENERIC_SCOPE}")
    )
    scope_only = Document(
        2,
        "贵州黔北实业股份有限公司",
        enterprise_profile("贵州黔北实业股份有限公司", f"白酒生产；白酒批发；白酒零售；{GENERIC_SCOPE}"),
    )
    return [named, scope_only, *filler]


def test_a_firm_whose_name_states_the_link_ranks_first_in_a_pool_of_long_scopes():
    docs = _scope_pool()
    weights = pool_weights([d.text for d in docs], pretrained=False)
    assert weights.name == NAME_WEIGHT_LONG
    engine = MatchEngine(weights=weights)
    engine.build(docs)
    hits = engine.search("白酒", 5)
    assert [h.id for h in hits[:2]] == [1, 2] and "name" in hits[0].channels
    without = MatchEngine(weights=FusionWeights(name=0.0))
    without.build(docs)
    assert [h.id for h in without.search("白酒", 5)[:2]] == [2, 1]  # the scope's three mentions win without it


def test_the_name_channel_scores_the_names_alone_and_an_updated_pool_equals_a_fresh_build():
    docs = _synth_docs(300)
    engine = MatchEngine(weights=FusionWeights(name=0.2))
    engine.build(docs[:200])
    engine.add(docs[200:])
    engine.remove([d.id for d in docs[:50]])
    kept = docs[50:]
    fresh = MatchEngine(weights=FusionWeights(name=0.2))
    fresh.build(kept)
    own = BM25Channel("word")
    own.vocab = Vocabulary()
    own.set_counts(count_matrices([d.name for d in kept], ["word"], {"word": own.vocab}, workers=1)["word"])
    for query in ("锂电池 正极材料", "船舶配套", "生物医药"):
        expected = own.scores(query, tokenize_query(query))  # the query's words, as the word channel reads them
        for eng in (engine, fresh):
            got = eng.channel_scores(query, FusionWeights(name=1), need_all=True)["name"]
            order = np.argsort(eng.row_ids)  # rows in id order, as `kept` is
            assert np.allclose(got[order], expected, atol=1e-6)
        assert [h.id for h in engine.search(query, 20)] == [h.id for h in fresh.search(query, 20)]


@pytest.mark.parametrize("dense", [0.0, 1.5])
def test_pruned_search_with_the_name_channel_equals_ranking_the_whole_pool(monkeypatch, dense):
    monkeypatch.setattr(engine_channels, "STATS_SAMPLE", 250)  # statistics from a sample, MaxScore: the 1M path
    monkeypatch.setattr(sparse_topk, "STOP_MIN_POSTINGS", 50)
    docs = _synth_docs(600)
    engine = MatchEngine(embedder=BuiltinEmbedder(dim=16), weights=FusionWeights(dense=dense, name=0.3))
    engine.build(docs)
    allowed = [d.id for d in docs[::4]]
    for query in ("锂电池正极材料 磷酸铁锂", "船舶 海洋工程装备 配套", "集成电路 芯片 封装测试"):
        for allow in (None, allowed):
            hits = engine.search(query, 30, allowed_ids=allow)
            ids, fused = engine.rank_whole_pool(query, 30, allow, None)
            assert [h.id for h in hits] == [int(i) for i in ids]
            assert np.allclose([h.score for h in hits], fused, atol=1e-5)


def test_a_saved_engine_keeps_its_name_channel_and_look_alikes_leave_it_out(tmp_path):
    docs = _scope_pool()
    engine = MatchEngine(weights=FusionWeights(name=0.5))
    engine.build(docs)
    engine.save(tmp_path / "idx")
    loaded = MatchEngine.load(tmp_path / "idx", mmap=True)
    assert loaded.weights.name == 0.5
    for query in ("白酒", "医药 零售", "电子元器件"):
        assert [(h.id, round(h.score, 6)) for h in loaded.search(query, 10)] == [
            (h.id, round(h.score, 6)) for h in engine.search(query, 10)
        ]
    # A look-alike is a firm doing the same business; the name channel would favour 贵州… namesakes.
    plain = MatchEngine(weights=FusionWeights(name=0.0))
    plain.build(docs)
    assert [(h.id, round(h.score, 6)) for h in loaded.similar(1, 5)] == [
        (h.id, round(h.score, 6)) for h in plain.similar(1, 5)
    ]
