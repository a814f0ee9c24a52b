"""Profile segments in the BM25 channels: a term weighed in the best statement of the profile it occurs in."""

from __future__ import annotations

import math

import numpy as np
import pytest

from matching.analysis import Vocabulary
from matching.engine import Document, MatchEngine
from matching.fusion import SHORT_PROFILE_CHARS
from matching.lexical import BM25Channel
from matching.segments import SEGMENT_K1, best_segments, count_segments, segment_share, split_segments

UNRELATED_TITLES = [
    "一种包装盒的折叠结构",
    "一种办公桌椅的调节装置",
    "一种茶叶烘干设备",
    "一种服装吊牌的固定扣",
    "一种路灯灯罩的清洁机构",
    "一种宠物饮水器",
    "一种门窗密封条",
    "一种书架的连接件",
]


def test_statements_split_at_semicolons_not_commas():
    assert split_segments("甲公司；锂电池，正极材料;电机") == ["甲公司", "锂电池，正极材料", "电机"]
    assert split_segments("；；") == [""]


def test_the_head_counts_in_every_segment_and_once_in_the_firm():
    vocab = {"word": Vocabulary()}
    seg = count_segments(["甲醇；电池；电机 电池", "乙醇"], ["word"], vocab, workers=1)["word"]
    ids = vocab["word"].ids
    assert list(seg.doc_indptr) == [0, 2, 3]  # "甲醇 + 电池", "甲醇 + 电机 电池"; "乙醇" alone
    rows = seg.counts.toarray()
    assert rows[0, ids["甲醇"]] == rows[1, ids["甲醇"]] == 1 and rows[1, ids["电池"]] == 1
    best = best_segments(seg)
    counts = best.counts.toarray()
    assert counts[0, ids["甲醇"]] == 1 and counts[0, ids["电池"]] == 2  # the firm's own counts
    assert list(best.segments) == [2, 1]
    # 电池's best segment: "甲醇 电池" (length 2, tf 1) beats "甲醇 电机 电池" (length 3, tf 1)
    entry = best.counts.indptr[0] + list(best.counts.indices[: best.counts.indptr[1]]).index(ids["电池"])
    assert best.ratio[entry] == pytest.approx(2.0)


def test_segment_share_follows_the_pool_profile_length():
    assert segment_share(SHORT_PROFILE_CHARS) == 1.0 and segment_share(10) == 1.0
    assert segment_share(SHORT_PROFILE_CHARS + 1) == 0.0 and segment_share(500) == 0.0


def test_best_segment_weight_matches_the_formula():
    channel = BM25Channel("word", segment_share=1.0)
    channel.build(["甲醇；电池；电机 电池", "乙醇；电机"])
    # segments: [甲醇 电池] (2), [甲醇 电机 电池] (3), [乙醇 电机] (2): average length 7 / 3
    idf = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5))
    expected = idf / (1 + SEGMENT_K1 * 2.0 / (7 / 3))
    s = channel.scores("", ["电池"])
    assert s[0] == pytest.approx(expected, rel=1e-5) and s[1] == 0


def test_unrelated_titles_do_not_lower_a_title_list_firm():
    """In a pool of patent-title profiles, a firm with one title on the link and eight unrelated ones scores as high
    as a firm with only that title; as one bag of words (share 0) its unrelated titles push it down."""
    title = "一种锂电池正极材料的制备方法"
    docs = [
        Document(1, "星河科技", f"星河科技；{title}；" + "；".join(UNRELATED_TITLES)),
        Document(2, "星河科技", f"星河科技；{title}"),
    ] + [Document(10 + i, f"填充企业{i}", f"填充企业{i}；{t}") for i, t in enumerate(UNRELATED_TITLES)]
    engine = MatchEngine()
    engine.build(docs)
    assert engine.channels["bm25"].segment_share == 1.0  # short statements: the pool takes the best segment
    scores = {h.id: h.score for h in engine.search("锂电池正极材料", k=5)}
    assert scores[1] == pytest.approx(scores[2], rel=1e-6)
    whole = BM25Channel("word", segment_share=0.0)
    whole.build([d.text for d in docs])
    s = whole.scores("锂电池正极材料")
    assert s[0] < s[1]


def test_registered_scopes_keep_the_whole_profile():
    items = ("锂电池", "电机", "储能系统", "充电桩")
    scope = "；".join(f"{item}的研发、生产、销售及技术咨询服务" for item in items)
    docs = [Document(i, f"企业{i}", f"企业{i}；{scope}；{UNRELATED_TITLES[i]}") for i in range(6)]
    engine = MatchEngine()
    engine.build(docs)
    assert engine.channels["bm25"].segment_share == 0.0


def test_segment_state_survives_save_load_and_updates(tmp_path):
    texts = ["甲醇；电池；电机 电池", "乙醇；电机", "丙烷；电池 电池；储能"]
    channel = BM25Channel("word", segment_share=0.6)
    channel.build(texts[:2])
    channel.save(tmp_path / "c")
    again = BM25Channel.load(tmp_path / "c")
    assert again.segment_share == 0.6
    assert np.array_equal(again.scores("", ["电池", "电机"]), channel.scores("", ["电池", "电机"]))
    # adding a firm re-weighs every row as a fresh build over the same firms would
    added = count_segments(texts[2:], ["word"], {"word": again.vocab}, workers=1)["word"]
    again.update(np.ones(2, bool), added)
    fresh = BM25Channel("word", segment_share=0.6)
    fresh.build(texts)
    for terms in (["电池"], ["电机", "储能"]):
        assert np.allclose(again.scores("", terms), fresh.scores("", terms), rtol=1e-6)


def test_a_pool_without_the_segment_share_counts_whole_profiles_and_ranks_as_by_segment():
    """A pool of long profiles (share 0) is counted one profile at a time, not statement by statement (a million
    business scopes by statement did not fit in memory); its weights are those of the channel counted by segment,
    before and after firms come and go."""
    items = ("锂电池", "电机", "储能系统", "充电桩")
    scope = "；".join(f"{item}的研发、生产、销售及技术咨询服务" for item in items)
    docs = [Document(i, f"企业{i}", f"企业{i}；{scope}；{UNRELATED_TITLES[i]}") for i in range(8)]
    engine = MatchEngine()
    engine.build(docs[:6])
    engine.add([docs[6], docs[7]])
    engine.remove([docs[0].id])
    engine.search("锂电池", 1)  # applies the pending changes
    channel = engine.channels["bm25"]
    assert channel.segment_share == 0.0
    assert len(channel.ratio) == channel.counts.nnz and np.array_equal(channel.segments, np.ones(7, np.int32))
    by_segment = BM25Channel("word")
    by_segment.build(_indexed(docs[1:]))
    for terms in (["锂电池"], ["电机", "茶叶"], ["宠物", "储能"]):
        assert np.allclose(channel.scores("", terms), by_segment.scores("", terms), rtol=1e-6)


def _indexed(docs: list[Document]) -> list[str]:
    from matching.engine.pool import indexed_text

    return [indexed_text(d) for d in docs]


def test_whole_profiles_get_the_ratios_the_segment_path_computes():
    import scipy.sparse as sp

    from matching.segments import SegmentCounts

    rng = np.random.default_rng(0)
    counts = sp.random(300, 500, density=0.05, random_state=1, format="csr")
    counts.data = rng.integers(1, 5, counts.nnz).astype(np.int32)
    whole = best_segments(SegmentCounts.whole(counts))
    general = best_segments(SegmentCounts(counts, np.arange(301), counts))  # the same, through the per-segment path
    assert np.array_equal(whole.ratio, general.ratio) and (whole.counts != general.counts).nnz == 0
    assert np.array_equal(whole.segments, general.segments)
    assert np.array_equal(whole.segment_length, general.segment_length)


def test_segment_counting_reports_progress_in_firms_not_statements():
    """The CLI's build bar counts firms (家): counting a title list statement by statement still reports texts done,
    up to the number of texts, never the number of statements."""
    texts = ["甲公司；电池；电机；电池隔膜", "乙公司；甲醇", "丙公司", "丁公司；锂电池；正极材料；负极材料；电解液"]
    vocab = {"word": Vocabulary.from_terms(["电池", "电机", "甲醇", "锂电池", "正极材料"])}
    reports: list[tuple[int, int]] = []
    count_segments(texts, ["word"], vocab, workers=1, progress=lambda done, total: reports.append((done, total)))
    assert reports and reports[-1] == (len(texts), len(texts))
    assert all(total == len(texts) and 0 <= done <= total for done, total in reports)
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)
