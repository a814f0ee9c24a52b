"""The engine's pruned search (MaxScore over postings, matching.sparse_topk) returns exactly what ranking the whole
pool returns, while reading fewer postings; the lexical channels are built from counts without token lists."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

import matching.analysis as analysis
import matching.engine.channels as engine_channels
import matching.engine.dense as engine_dense
import matching.engine.ranking as engine_ranking
import matching.sparse_topk as sparse_topk
from chains.enterprises import synth
from matching.analysis import Vocabulary, count_matrices
from matching.embedders import BuiltinEmbedder
from matching.engine import Document, MatchEngine
from matching.fusion import FusionWeights
from matching.lexical import CharTfidfChannel, column_scores
from matching.profiles import enterprise_profile
from matching.sparse_topk import PostingReader, Term, candidate_rows
from matching.text import normalize

QUERIES = [
    "锂电池正极材料 磷酸铁锂",
    "船舶 海洋工程装备 配套",
    "生物医药 抗体药物",
    "风电 叶片 轴承",
    "集成电路 芯片 封装测试",
    "不存在的词语组合",
]


def _docs(n: int, seed: int = 3) -> list[Document]:
    out = []
    for i, r in enumerate(synth.generate(n, seed)):
        out.append(
            Document(
                10 * i + 7,
                r["企业名称"],
                enterprise_profile(r["企业名称"], r["经营范围"], r["主营产品"], r["所属行业"]),
                r["主营产品"],
            )
        )
    return out


@pytest.fixture(scope="module")
def pool():
    return _docs(1200)


@pytest.fixture(scope="module")
def lexical_engine(pool):
    engine = MatchEngine()
    engine.build(pool)
    return engine


def _full_ranking(engine: MatchEngine, query: str, k: int, allowed=None, excluded=None):
    ids, fused = engine.rank_whole_pool(query, k, allowed, excluded)
    return [int(i) for i in ids], fused


@pytest.fixture
def pruned(monkeypatch):
    """Search as for pools above STATS_SAMPLE (statistics from a sample, MaxScore); counts the pruned searches."""
    calls = []
    candidates = PostingReader.candidates

    def spy(reader, k):
        found = candidates(reader, k)
        calls.append(found)
        return found

    monkeypatch.setattr(PostingReader, "candidates", spy)
    monkeypatch.setattr(sparse_topk, "STOP_MIN_POSTINGS", 50)  # posting lists of a small pool are short

    def use(sample: int, selective: bool = False):
        """`selective`: every filtered search asks the vector index for the nearest allowed documents (else none
        does: the whole pool's nearest)."""
        monkeypatch.setattr(engine_channels, "STATS_SAMPLE", sample)
        monkeypatch.setattr(engine_ranking, "SELECTIVE_FILTER_SHARE", 1.0 if selective else 0.0)
        return calls

    return use


@pytest.mark.parametrize("sample", [300, 1000])
def test_pruned_search_equals_ranking_the_whole_pool(pool, lexical_engine, pruned, sample):
    calls = pruned(sample, selective=True)  # without the dense channel the whole pool's postings serve any filter
    engine = lexical_engine
    ids = [d.id for d in pool]
    rng = np.random.default_rng(0)
    filters = [
        (None, None),
        (rng.choice(ids, 120, replace=False).tolist(), None),
        (None, rng.choice(ids, 700, replace=False).tolist()),
    ]
    for query in QUERIES[:4]:
        for allowed, excluded in filters:
            for k in (10, 100):
                hits = engine.search(query, k, allowed_ids=allowed, excluded_ids=excluded)
                expected, fused = _full_ranking(engine, query, k, allowed, excluded)
                assert [h.id for h in hits] == expected
                assert np.allclose([h.score for h in hits], fused, atol=1e-9)
                assert [h.matched_terms for h in hits] == [engine.matched_terms(query, h.id) for h in hits]
    assert len(calls) == 4 * 3 * 2
    assert sum(c.postings_read for c in calls) < sum(c.postings_total for c in calls)


def test_pruned_search_with_the_dense_channel_and_rows_without_any_score(pool, pruned):
    calls = pruned(200)
    engine = MatchEngine(embedder=BuiltinEmbedder(dim=16), weights=FusionWeights(dense=0.3))
    engine.build(pool[:400])
    for query in QUERIES:
        hits = engine.search(query, 60)
        expected, _ = _full_ranking(engine, query, 60)
        assert [h.id for h in hits] == expected and "dense" in hits[0].channels
    # More hits wanted than firms with any lexical score: the rest follow in id order, as in the full ranking.
    lexical = MatchEngine()
    lexical.build(pool[:400])
    hits = lexical.search("不存在的词语组合 锑", 50, allowed_ids=[d.id for d in pool[:400:3]])
    expected, _ = _full_ranking(lexical, "不存在的词语组合 锑", 50, [d.id for d in pool[:400:3]])
    assert [h.id for h in hits] == expected and len(hits) == 50
    assert len(calls) == len(QUERIES) + 1


FOREIGN = [
    "Producer of lithium iron phosphate cathode materials for batteries",
    "Shipbuilding equipment and marine engineering supplies",
    "Wind turbine blades and bearings",
    "Antibody drug discovery and biopharmaceutical manufacturing",
    "Chip packaging and test services",
    "선박 기자재 제조",
    "Dịch vụ vận tải hàng hải",
    "Hotel and restaurant services",
    "Software consulting",
    "Textile and garment export",
]


@pytest.mark.parametrize("selective", [False, True], ids=["pool-hits", "allowed-hits"])
def test_pruned_search_equals_the_whole_pool_with_profiles_the_lexical_channels_cannot_see(pool, pruned, selective):
    calls = pruned(200, selective)
    docs = pool[:400] + [Document(90_000 + i, f"Foreign firm {i}", text) for i, text in enumerate(FOREIGN * 3)]
    engine = MatchEngine(embedder=BuiltinEmbedder(dim=16), weights=FusionWeights(dense=1.5))
    engine.build(docs)
    foreign_found = 0
    for query in QUERIES:
        for allowed in (None, [d.id for d in docs[::2]]):
            hits = engine.search(query, 60, allowed_ids=allowed)
            expected, fused = _full_ranking(engine, query, 60, allowed)
            assert [h.id for h in hits] == expected
            assert np.allclose([h.score for h in hits], fused, atol=1e-9)
            foreign_found += sum(h.id >= 90_000 for h in hits)
    # Scored on their dense channel within their own script group, foreign profiles reach the lists; with the
    # lexical channels' zeros counted against them they would sit at the bottom of the pool.
    assert foreign_found > 0 and len(calls) >= len(QUERIES) * 2


def test_filtered_search_with_a_heavy_dense_channel_equals_the_whole_pool_and_needs_fewer_rounds(
    pool, pruned, monkeypatch
):
    """A province-like filter (a few percent of the pool) with the dense channel weighted high, as the static
    embedder's pool rule weighs it at 1M. With the whole pool's dense hits, few of them allowed, the allowed rows'
    dense bounds are loose and MaxScore asks for more candidates round after round; with the nearest allowed
    documents the bounds are as tight as without a filter. Both must rank exactly as the whole pool does."""
    monkeypatch.setattr(engine_dense, "DENSE_CANDIDATES", 100)  # hits a tenth of the pool, as 1,000 of 1M are less
    # Distinct foreign profiles: copies of one profile tie exactly, and a score computed in two batches may differ
    # in its last bits, which would order tied copies differently from the whole-pool ranking.
    docs = pool[:1000] + [Document(90_000 + i, f"Foreign firm {i}", text) for i, text in enumerate(FOREIGN)]
    engine = MatchEngine(embedder=BuiltinEmbedder(dim=16), weights=FusionWeights(dense=3.14))
    engine.build(docs)
    rng = np.random.default_rng(4)
    ids = [d.id for d in docs]
    filters = [
        (rng.choice(ids, 35, replace=False).tolist(), None),
        (rng.choice(ids, 35, replace=False).tolist(), rng.choice(ids, 300, replace=False).tolist()),
        ([d.id for d in docs[::29]] + [90_000, 90_001, 90_005], [90_001]),
    ]
    rounds = {}
    for selective in (False, True):
        calls = pruned(200, selective)
        before = len(calls)
        for query in QUERIES:
            for allowed, excluded in filters:
                for k in (5, 30, 100):
                    hits = engine.search(query, k, allowed_ids=allowed, excluded_ids=excluded)
                    expected, fused = _full_ranking(engine, query, k, allowed, excluded)
                    assert [h.id for h in hits] == expected
                    # float32 dense scores of rows outside the hits come from their stored vectors, not the search
                    assert np.allclose([h.score for h in hits], fused, atol=1e-5)
                    assert all("dense" in h.channels for h in hits)
        rounds[selective] = len(calls) - before
    searches = len(QUERIES) * len(filters) * 3
    assert searches <= rounds[True] < 1.1 * searches < rounds[False], rounds  # at least one MaxScore round per search


def test_maxscore_reads_fewer_postings_and_keeps_the_exact_top_k(monkeypatch):
    monkeypatch.setattr(sparse_topk, "STOP_MIN_POSTINGS", 10_000)
    rng = np.random.default_rng(1)
    n = 50_000
    rare_rows = np.sort(rng.choice(n, 300, replace=False)).astype(np.int32)
    rare = Term(rare_rows, rng.uniform(5, 10, 300).astype(np.float32), 1.0, 10.0)
    common_rows = np.arange(n, dtype=np.int32)
    common_vals = rng.uniform(0, 0.1, n).astype(np.float32)
    common = Term(common_rows, common_vals, 1.0, float(common_vals.max()))
    found = candidate_rows([common, rare], n, 20)
    assert found.postings_read < found.postings_total  # the common term's list was never read
    exact = np.zeros(n)
    exact[common_rows] += common_vals
    exact[rare_rows] += rare.values
    assert set(np.argsort(-exact)[:20]) <= set(found.rows.tolist())


def test_char_tfidf_equals_scikit_learn():
    texts = [d.text for d in _docs(300, seed=5)]
    ours = CharTfidfChannel()
    ours.build(texts)
    ref = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, dtype=np.float32, preprocessor=normalize
    )
    matrix = ref.fit_transform(texts)
    order = [ref.vocabulary_[t] for t in ours.vocab.terms]  # our columns in the reference's column order
    assert len(order) == len(ref.vocabulary_)
    assert np.allclose(ours.matrix.toarray(), matrix[:, order].toarray(), atol=1e-6)
    query = "锂电池正极材料；船舶配套"
    assert np.allclose(ours.transform([query]).toarray(), ref.transform([query])[:, order].toarray(), atol=1e-6)


def test_parallel_analysis_counts_what_one_process_counts(monkeypatch):
    texts = [d.text for d in _docs(600, seed=7)]
    monkeypatch.setattr(analysis, "PARALLEL_MIN_TEXTS", 0)
    monkeypatch.setattr(analysis, "BATCH_SIZE", 100)
    results = []
    for workers in (1, 2):
        vocabs = {"word": Vocabulary(), "char12": Vocabulary()}
        counts = count_matrices(texts, ["word", "char12"], vocabs, workers=workers)
        results.append({name: (vocabs[name].terms, counts[name]) for name in vocabs})
    for name in ("word", "char12"):
        (terms_a, a), (terms_b, b) = results[0][name], results[1][name]
        remap = np.asarray([terms_b.index(t) for t in terms_a])
        assert (a.toarray() == b.toarray()[:, remap]).all()


def test_incremental_updates_rank_like_a_fresh_build(pool):
    first, later = pool[:900], pool[900:1000]
    engine = MatchEngine()
    engine.build(first)
    engine.add(later)
    engine.add([Document(first[0].id, "替换后的船舶企业", enterprise_profile("替换后的船舶企业", "船舶 海洋工程装备"))])
    engine.remove([d.id for d in first[1:40]])
    final = {d.id: d for d in first + later}
    final[first[0].id] = engine.document(first[0].id)
    for d in first[1:40]:
        del final[d.id]
    fresh = MatchEngine()
    fresh.build(list(final.values()))
    assert len(engine) == len(fresh)
    for query in QUERIES:
        a, b = engine.search(query, 20), fresh.search(query, 20)
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
        assert [h.id for h in a][:5] == [h.id for h in b][:5]
    assert engine.search("船舶 海洋工程装备", 3)[0].id == first[0].id


def test_saved_engine_loads_memory_mapped_without_tokenising(lexical_engine, tmp_path, monkeypatch):
    engine = lexical_engine
    engine.save(tmp_path / "idx")
    monkeypatch.setattr(analysis, "ANALYZERS", {})  # loading must not analyse any text
    loaded = MatchEngine.load(tmp_path / "idx", mmap=True)
    assert isinstance(loaded.channels["char"].columns.data, np.memmap)
    monkeypatch.undo()
    for query in QUERIES:
        assert [h.id for h in loaded.search(query, 15)] == [h.id for h in engine.search(query, 15)]
    loaded.add([Document(99_999, "新增锂电企业", enterprise_profile("新增锂电企业", "锂电池正极材料 磷酸铁锂"))])
    assert loaded.search("锂电池正极材料 磷酸铁锂", 1)[0].id == 99_999


def test_an_engine_saved_in_the_old_format_is_refused(lexical_engine, tmp_path):
    lexical_engine.save(tmp_path / "idx")
    meta = tmp_path / "idx" / "engine.json"
    from matching.engine import FORMAT_VERSION

    saved = meta.read_text(encoding="utf-8")
    assert f'"format": {FORMAT_VERSION}' in saved
    meta.write_text(saved.replace(f'"format": {FORMAT_VERSION}', f'"format": {FORMAT_VERSION - 1}'), encoding="utf-8")
    with pytest.raises(ValueError, match="rebuild"):
        MatchEngine.load(tmp_path / "idx")


def test_column_scores_equal_scipys_column_product_bit_for_bit():
    """Every firm's score for a query's columns (the whole-pool scores look-alikes and small pools use) is the sum
    scipy's matrix[:, cols] @ vals gives, to the last bit, so a firm scores the same on every path."""
    import scipy.sparse as sp

    rng = np.random.default_rng(4)
    rows, width = 3000, 400
    dense = rng.random((rows, width), dtype=np.float32) * (rng.random((rows, width)) < 0.05)
    dense[:, 7] = rng.random(rows, dtype=np.float32) + 0.5  # a term in every row, as 公 or 司
    columns = sp.csc_matrix(dense)
    for size in (1, 12, 150):
        cols = np.sort(rng.choice(width, size, replace=False)).astype(np.int64)
        vals = (rng.random(size) * 3).astype(np.float32)
        want = np.asarray(columns[:, cols] @ vals, dtype=np.float32).ravel()
        got = column_scores(columns, cols, vals)
        assert got.dtype == np.float32 and np.array_equal(got, want)
    assert not column_scores(columns, np.zeros(0, np.int64), np.zeros(0, np.float32)).any()


def _whole_pool_look_alikes(engine: MatchEngine, doc_id: int, k: int, allowed=None) -> tuple[list[int], np.ndarray]:
    """Look-alikes of a large pool ranked by brute force: every document's raw channel scores for the document's
    own terms and vector, z-scored with the whole pool's (sampled) statistics, cross-script rows imputed."""
    looks = engine._lookalikes
    weights = looks.weights(engine.weights)
    raw = looks._doc_channel_scores(doc_id, weights)
    columns, vector = looks._doc_query(doc_id, weights)
    text = engine.document(doc_id).text
    cqs = engine_channels.channel_queries(
        engine._lexical, engine._dense, text, weights, columns=columns, vector=vector, hits=False
    )
    w = weights.channel_weights()
    rows = np.arange(len(engine))
    fused = sum((w[name] * cq.z(raw[name]) for name, cq in cqs.items()), np.zeros(len(rows)))
    fused = engine_channels.impute_blind(fused, rows, raw["dense"], cqs, weights, engine._dense.row_groups())
    ids = engine.row_ids
    keep = (ids != doc_id) & (np.isin(ids, allowed) if allowed is not None else True)
    order = np.lexsort((ids[keep], -fused[keep]))[:k]
    return [int(i) for i in ids[keep][order]], fused[keep][order]


@pytest.mark.parametrize("selective", [False, True], ids=["pool-hits", "allowed-hits"])
def test_look_alikes_of_a_large_pool_are_the_whole_pools_best_by_its_statistics(pool, pruned, selective):
    """Above STATS_SAMPLE a firm's look-alikes come from the pruned search (a full scan of a million firms' postings
    took 250–350 ms): the same firms and scores as scoring every firm with the pool's statistics, profiles in
    another script included; the candidates page's most similar local firm is the top of that list."""
    calls = pruned(200, selective)
    docs = pool[:400] + [Document(90_000 + i, f"Foreign firm {i}", text) for i, text in enumerate(FOREIGN * 3)]
    engine = MatchEngine(embedder=BuiltinEmbedder(dim=16), weights=FusionWeights(dense=1.0))
    engine.build(docs)
    for doc in docs[:80:9] + docs[-4:]:
        for allowed in (None, [d.id for d in docs[::2]]):
            hits = engine.similar(doc.id, 20, allowed_ids=allowed)
            expected, fused = _whole_pool_look_alikes(engine, doc.id, 20, allowed)
            assert [h.id for h in hits] == expected
            assert np.allclose([h.score for h in hits], fused, atol=1e-6)
            assert doc.id not in expected
    assert len(calls) >= 2 * 13
    roster = [d.id for d in docs[5:60]]
    asked = [d.id for d in docs[:30]] + [d.id for d in docs[-5:]]
    for doc_id, hit in zip(asked, engine.best_look_alikes(asked, roster)):
        single = engine.similar(doc_id, 1, allowed_ids=roster)
        assert hit is not None and hit.id == single[0].id != doc_id
        assert abs(hit.score - single[0].score) < 1e-4


@pytest.mark.parametrize("theta_rows_per_k", [0, sparse_topk.THETA_ROWS_PER_K])
def test_a_reader_asked_for_more_rows_gives_what_reading_from_scratch_gives(monkeypatch, theta_rows_per_k):
    """MaxScore's rounds (ever more candidates) resume one reader instead of reading the strong lists again. With θ
    taken from a fixed number of rows, the lists read whole for a smaller k are exactly those a larger k reads
    first, and the candidates equal those of reading from scratch; with more rows for a larger k, θ may stop the
    reading earlier from scratch, and the resumed reader's candidates must still hold the k best."""
    monkeypatch.setattr(sparse_topk, "STOP_MIN_POSTINGS", 2_000)
    monkeypatch.setattr(sparse_topk, "THETA_ROWS", 1_000)
    monkeypatch.setattr(sparse_topk, "THETA_ROWS_PER_K", theta_rows_per_k)
    rng = np.random.default_rng(7)
    n = 40_000
    terms = []
    for size in (150, 400, 3_000, 6_000, 12_000, 25_000, 40_000):  # rare and strong to common and weak
        rows = np.sort(rng.choice(n, size, replace=False)).astype(np.int32)
        values = rng.uniform(0, 1, size).astype(np.float32)
        weight = float(4_000 / size)
        terms.append(Term(rows, values, weight, weight * float(values.max())))
    for in_pool in (None, (rng.uniform(size=n) < 0.3).astype(np.uint8)):
        reads: list[int] = []
        with PostingReader(terms, n, in_pool) as reader:
            for k in (10, 40, 160, 640, 2_560):
                resumed = reader.candidates(k)
                fresh = candidate_rows(terms, n, k, in_pool)
                if not theta_rows_per_k:
                    assert np.array_equal(resumed.rows, fresh.rows)
                    assert resumed.postings_read == fresh.postings_read
                reads.append(resumed.postings_read)
                exact = np.zeros(n)
                for t in terms:
                    exact[t.rows] += t.weight * t.values
                if in_pool is not None:
                    exact[in_pool == 0] = -1
                assert set(np.argsort(-exact)[:k].tolist()) <= set(resumed.rows.tolist())
        total = sum(len(t.rows) for t in terms)
        assert reads == sorted(reads) and reads[0] < total  # later rounds read more; the first not every list
