"""Lexical channels, fusion maths and ranking metrics on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from matching.fusion import RRF_K, FusionWeights, fuse, ranks, zscore
from matching.lexical import BM25Channel, CharTfidfChannel
from matching.metrics import average_precision_at_k, ndcg_at_k, recall_at_k, score_rankings
from matching.text import char_ngrams, normalize, tokenize

TEXTS = ["锂离子电池正极材料生产", "船舶设计与建造", "正极材料前驱体；磷酸铁锂", "医药中间体合成"]


def test_normalize_and_tokenize():
    assert normalize("ＡＢＣ，正极（材料）") == "abc 正极 材料"
    toks = tokenize("锂离子电池正极材料的生产")
    assert "正极" in toks and "材料" in toks and "的" not in toks
    assert char_ngrams("正极材料", 1, 2) == ["正", "极", "材", "料", "正极", "极材", "材料"]
    assert char_ngrams("a，b", 2, 2) == []  # n-grams never cross punctuation


def test_bm25_channel_scores_and_roundtrip(tmp_path):
    channel = BM25Channel("word")
    channel.build(TEXTS)
    s = channel.scores("正极材料")
    assert s.shape == (4,)
    assert s[0] > 0 and s[2] > 0 and s[1] == 0 and s[3] == 0
    channel.save(tmp_path / "b")
    again = BM25Channel.load(tmp_path / "b")
    assert np.allclose(again.scores("正极材料"), s)


def test_bm25_matches_the_formula_for_one_term():
    docs = [["a", "b"], ["a", "a", "c", "d"], ["c"]]
    channel = BM25Channel("word", k1=1.2, b=0.75)
    channel.build([""] * 3, docs)
    n, df, avgdl = 3, 2, 7 / 3
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))  # Lucene variant: no (k1 + 1) factor
    expected = [idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl)) for tf, dl in [(1, 2), (2, 4)]]
    s = channel.scores("", ["a"])
    assert s[0] == pytest.approx(expected[0], rel=1e-4) and s[1] == pytest.approx(expected[1], rel=1e-4)
    assert s[2] == 0


def test_char_tfidf_channel_cosine_and_roundtrip(tmp_path):
    channel = CharTfidfChannel()
    channel.build(TEXTS)
    s = channel.scores("正极材料")
    assert int(np.argmax(s)) in (0, 2) and s[1] < s[0]
    assert s.max() <= 1.0 + 1e-6
    channel.append(["正极材料"])
    assert channel.scores("正极材料")[-1] == pytest.approx(1.0, abs=1e-5)
    channel.save(tmp_path / "t")
    assert np.allclose(CharTfidfChannel.load(tmp_path / "t").scores("船舶"), channel.scores("船舶"))


def test_zscore_ranks_and_fusion_maths():
    assert np.allclose(zscore(np.array([1.0, 2.0, 3.0])), [-1.224745, 0.0, 1.224745], atol=1e-5)
    assert np.allclose(zscore(np.array([5.0, 5.0])), [0.0, 0.0])
    assert list(ranks(np.array([0.1, 0.9, 0.5]))) == [2, 0, 1]
    a, b = np.array([1.0, 2.0, 3.0]), np.array([3.0, 0.0, 0.0])
    fused = fuse({"bm25": a, "char": b}, FusionWeights(bm25=0.5, char=0.5))
    assert np.allclose(fused, 0.5 * zscore(a) + 0.5 * zscore(b))
    only_bm25 = fuse({"bm25": a, "char": b}, FusionWeights(bm25=1.0, char=0.0))
    assert np.allclose(only_bm25, zscore(a))
    rrf = fuse({"bm25": a, "char": b}, FusionWeights(bm25=1.0, char=1.0, method="rrf"))
    assert rrf[2] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 3))  # first in bm25, last in char
    assert FusionWeights.from_dict(FusionWeights(dense=0.2).as_dict()) == FusionWeights(dense=0.2)


def test_metrics_on_hand_computed_examples():
    ranked = ["a", "x", "b", "y", "c"]
    rel = {"a", "b", "c", "d"}
    dcg = 1 + 1 / math.log2(4) + 1 / math.log2(6)
    idcg = sum(1 / math.log2(i + 2) for i in range(4))
    assert ndcg_at_k(ranked, rel, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 10) == pytest.approx(1.0)
    assert recall_at_k(ranked, rel, 50) == pytest.approx(0.75)
    assert recall_at_k(ranked, rel, 2) == pytest.approx(0.25)
    assert average_precision_at_k(ranked, rel, 100) == pytest.approx((1 + 2 / 3 + 3 / 5) / 4)
    assert ndcg_at_k(ranked, set(), 10) == 0.0
    summary = score_rankings([ranked, ["d"]], [rel, {"d"}])
    assert summary["queries"] == 2
    assert summary["recall@50"] == pytest.approx((0.75 + 1.0) / 2)
