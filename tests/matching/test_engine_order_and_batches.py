"""MatchEngine: a total, deterministic ranking order; look-alikes from stored vectors; batched scoring of
query sets and of look-alikes within a small set (synthetic corpus, real channels and faiss index)."""

from __future__ import annotations

import numpy as np

from matching.embedders import BuiltinEmbedder
from matching.engine import Document, MatchEngine
from matching.fusion import fuse
from matching.profiles import enterprise_profile
from tests.worlds.matching_corpus import corpus


def _tied_pool() -> list[Document]:
    """Groups of firms with identical profiles (so identical scores), inserted in descending id order."""
    topics = ["船用钢板 高强度船板", "船用钢板 钢材贸易", "软件开发 信息系统", "食品加工 饮料灌装"]
    docs = []
    for n in range(80):
        doc_id = 1000 - 7 * n
        name = f"合成企业{doc_id}"
        docs.append(Document(doc_id, name, enterprise_profile(name, topics[n % len(topics)])))
    return docs


def test_ranking_is_score_desc_then_id_asc_for_every_k():
    engine = MatchEngine()
    engine.build(_tied_pool())
    full = engine.search("船用钢板", k=len(engine))
    keys = [(-round(h.score, 9), h.id) for h in full]
    assert keys == sorted(keys)  # ties broken by ascending id
    for k in range(1, len(full) + 1):
        assert [h.id for h in engine.search("船用钢板", k=k)] == [h.id for h in full[:k]]
    # Pages cut from longer prefixes never repeat or skip a firm.
    pages = [[h.id for h in engine.search("船用钢板", k=21 * p)][21 * (p - 1) :] for p in (1, 2, 3)]
    seen = [i for page in pages for i in page]
    assert len(seen) == len(set(seen)) == min(63, len(full))


class CountingEmbedder(BuiltinEmbedder):
    """The real built-in embedder, counting how many texts it is asked to encode."""

    encoded = 0

    def encode(self, texts, batch_size: int = 256):
        self.encoded += len(texts)
        return super().encode(texts, batch_size)


def test_similar_reuses_the_stored_vector():
    docs, groups = corpus()
    embedder = CountingEmbedder(dim=16)
    engine = MatchEngine(embedder=embedder)
    engine.build(docs)
    embedder.encoded = 0
    target = groups["ship"][0]
    hits = engine.similar(target, k=5)
    assert embedder.encoded == 0  # no text encoded again: one vector search with the indexed vector
    assert target not in [h.id for h in hits] and sum(h.id in groups["ship"] for h in hits) >= 4
    text = {d.id: d.text for d in docs}
    vectors = BuiltinEmbedder.encode(embedder, [text[target], text[hits[0].id]])
    assert abs(float(vectors[0] @ vectors[1]) - hits[0].channels["dense"]) < 1e-4
    assert hits[0].matched_terms


def test_query_scores_equal_per_query_fusion_over_the_pool():
    docs, _ = corpus()
    engine = MatchEngine(embedder=BuiltinEmbedder(dim=16))
    engine.build(docs)
    queries = ["正极材料 磷酸铁锂", "船舶 海洋工程装备", "抗体药物", "云计算平台", "不存在的词"]
    ids = [d.id for d in docs] + [999_999]
    matrix = engine.query_scores(queries, ids)
    assert matrix.shape == (len(queries), len(ids)) and np.isnan(matrix[:, -1]).all()
    for q, text in enumerate(queries):
        fused = fuse(engine.channel_scores(text), engine.weights)
        expected = [fused[engine.row_of(i)] for i in ids[:-1]]
        assert np.allclose(matrix[q, :-1], expected, atol=1e-6)
    # Cached per pool state: after an update the pool statistics are recomputed.
    engine.add([Document(5000, "新增正极材料企业", enterprise_profile("新增正极材料企业", "正极材料 正极材料"))])
    again = engine.query_scores(queries[:1], [5000, docs[0].id])
    fused = fuse(engine.channel_scores(queries[0]), engine.weights)
    assert np.allclose(again[0], [fused[engine.row_of(5000)], fused[engine.row_of(docs[0].id)]], atol=1e-6)


def test_best_look_alikes_match_similar_top_hit():
    docs, groups = corpus()
    engine = MatchEngine(embedder=BuiltinEmbedder(dim=16))
    engine.build(docs)
    allowed = groups["ship"][:3] + groups["pharma"][:3] + groups["cathode"][:2]
    asked = [d.id for d in docs] + [999_999]  # includes members of the allowed set and an unknown id
    batch = engine.best_look_alikes(asked, allowed)
    assert batch[-1] is None
    for doc_id, hit in zip(asked[:-1], batch):
        single = engine.similar(doc_id, k=1, allowed_ids=allowed)
        assert hit is not None and hit.id == single[0].id and hit.id != doc_id
        assert abs(hit.score - single[0].score) < 1e-4
