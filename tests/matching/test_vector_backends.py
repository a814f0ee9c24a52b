"""The VectorIndex contract, checked on every registered backend (faiss, numpy, milvus, …): exact ranking on small
pools, padding, replace-on-append and delete, allowed-id filters, stored vectors, save/load with metadata checks, the
engine ranking alike on each and reloading it by its saved metadata, and plugging in a backend by name. Then the
milvus backend's own paths: scalar-field filters, a Milvus server by URI, private embedded copies."""

from __future__ import annotations

import gc
import json
import socket

import numpy as np
import pytest

from matching.embedders import BuiltinEmbedder
from matching.engine import Document, MatchEngine
from matching.fusion import FusionWeights
from matching.vectors import (
    KIND_FLAT,
    FieldFilter,
    IndexMismatchError,
    MilvusIndex,
    NumpyIndex,
    backend_names,
    condition,
    load_vector_index,
    make_vector_index,
    meta_path,
    milvus_expression,
    milvus_search,
    read_meta,
    register_backend,
    registry,
    set_server_uri,
    text_code,
)
from matching.vectors.filters import mask
from matching.vectors.milvus_connection import public_uri, pymilvus_module
from tests.worlds.vectors import DIM, numpy_top, random_unit


@pytest.fixture(params=backend_names())
def backend(request) -> str:
    return request.param


def test_flat_search_matches_numpy(backend):
    vectors = random_unit(500)
    ids = np.arange(1000, 1500, dtype=np.int64)
    index = make_vector_index(len(ids), DIM, backend=backend)
    assert index.kind == KIND_FLAT
    index.index(ids, vectors)
    queries = random_unit(5, seed=1)
    scores, found = index.search(queries, 10)
    assert scores.shape == found.shape == (5, 10)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    for row, query in enumerate(queries):
        want_scores, want_ids = numpy_top(vectors, ids, query, 10)
        assert list(found[row]) == list(want_ids)
        np.testing.assert_allclose(scores[row], want_scores, rtol=1e-5, atol=1e-5)


def test_fewer_hits_than_k_are_padded(backend):
    index = make_vector_index(3, DIM, backend=backend)
    index.index(np.array([7, 8, 9]), random_unit(3))
    scores, found = index.search(random_unit(1, seed=2), 5)
    assert sorted(found[0][:3]) == [7, 8, 9]
    assert list(found[0][3:]) == [-1, -1]
    assert np.all(np.isneginf(scores[0][3:]))


def test_append_replaces_and_delete_removes(backend):
    vectors = random_unit(50)
    ids = np.arange(50, dtype=np.int64)
    index = make_vector_index(50, DIM, backend=backend)
    index.index(ids, vectors)
    # Re-adding id 3 with a new vector replaces the old one rather than duplicating it.
    target = random_unit(1, seed=9)
    index.append(np.array([3]), target)
    assert len(index) == 50
    _, found = index.search(target, 1)
    assert found[0][0] == 3
    index.append(np.array([100]), random_unit(1, seed=10))
    assert len(index) == 51 and 100 in set(index.ids())
    index.delete(np.array([3, 100, 999]))
    assert len(index) == 49
    _, found = index.search(target, 49)
    assert 3 not in set(found[0]) and 100 not in set(found[0])


def test_allowed_ids_filter_only_returns_allowed(backend):
    vectors = random_unit(300)
    ids = np.arange(300, dtype=np.int64)
    index = make_vector_index(300, DIM, backend=backend)
    index.index(ids, vectors)
    allowed = ids[::7]
    query = random_unit(1, seed=3)
    _, found = index.search(query, 10, allowed_ids=allowed)
    assert set(found[0]) <= set(allowed)
    _, want = numpy_top(vectors[allowed], allowed, query[0], 10)
    assert list(found[0]) == list(want)
    _, none = index.search(query, 10, allowed_ids=np.array([], dtype=np.int64))
    assert list(none[0]) == [-1] * 10


def test_stored_vectors_come_back_for_present_ids(backend):
    vectors = random_unit(40)
    ids = np.arange(40, dtype=np.int64) * 3
    index = make_vector_index(40, DIM, backend=backend)
    index.index(ids, vectors)
    got, present = index.vectors(np.array([ids[5], -1, ids[7]]))
    assert list(present) == [True, False, True]
    np.testing.assert_allclose(got, vectors[[5, 7]], atol=1e-6)


def test_save_load_round_trip_keeps_results_and_metadata(backend, tmp_path):
    vectors = random_unit(200)
    ids = np.arange(200, dtype=np.int64) * 5
    index = make_vector_index(200, DIM, backend=backend)
    index.index(ids, vectors)
    index.metadata.update(embedder="builtin-test", watermark=["2025-01-01T00:00:00", 200, 0])
    path = tmp_path / "vectors.faiss"
    index.save(path)
    meta = read_meta(meta_path(path))
    assert meta["embedder"] == "builtin-test" and meta["dim"] == DIM and meta["count"] == 200
    assert meta["kind"] == KIND_FLAT and meta["built_at"]
    loaded = load_vector_index(path, expected={"embedder": "builtin-test", "dim": DIM})
    queries = random_unit(3, seed=4)
    assert np.array_equal(loaded.search(queries, 10)[1], index.search(queries, 10)[1])
    assert loaded.metadata["watermark"] == ["2025-01-01T00:00:00", 200, 0]


def test_metadata_mismatch_and_damage_are_detected(backend, tmp_path):
    index = make_vector_index(20, DIM, backend=backend)
    index.index(np.arange(20), random_unit(20))
    index.metadata["embedder"] = "builtin-v1"
    path = tmp_path / "v.faiss"
    index.save(path)
    with pytest.raises(IndexMismatchError, match="embedder"):
        load_vector_index(path, expected={"embedder": "st:/models/other"})
    with pytest.raises(IndexMismatchError, match="dim"):
        load_vector_index(path, expected={"dim": 384})
    path.write_bytes(b"not a faiss index")
    with pytest.raises(IndexMismatchError):
        load_vector_index(path)
    meta_path(path).unlink()
    with pytest.raises(IndexMismatchError):
        load_vector_index(path)


TEXTS = [
    "锂电池正极材料 磷酸铁锂",
    "船舶配套 船用柴油机",
    "光伏组件 单晶硅片",
    "汽车电子 车载芯片",
    "锂电池隔膜 湿法隔膜",
    "海洋工程装备 钻井平台",
    "动力电池回收 梯次利用",
    "新能源汽车 整车制造",
]


def _dense_engine(backend: str) -> MatchEngine:
    embedder = BuiltinEmbedder(dim=4)
    embedder.fit(TEXTS)
    engine = MatchEngine(embedder, FusionWeights(dense=1.0, bm25=0.0, char=0.0), vector_backend=backend)
    engine.build([Document(i + 1, f"企业{i}", t) for i, t in enumerate(TEXTS)])
    return engine


def test_the_engine_ranks_alike_on_every_backend_and_reloads_it(backend, tmp_path):
    engines = {name: _dense_engine(name) for name in ("faiss", backend)}
    kind = type(make_vector_index(len(TEXTS), 4, backend=backend))
    assert isinstance(engines[backend].vector_index, kind)
    query = "磷酸铁锂正极"
    want = [h.id for h in engines["faiss"].search(query, 5)]
    assert [h.id for h in engines[backend].search(query, 5)] == want
    engines[backend].save(tmp_path / "engine")
    loaded = MatchEngine.load(tmp_path / "engine")
    assert isinstance(loaded.vector_index, kind) and loaded.vector_backend == backend
    assert [h.id for h in loaded.search(query, 5)] == want


class _PluggedIndex(NumpyIndex):
    """A backend registered from outside, as a vector service would plug in (here the numpy one, renamed)."""

    backend = "numpy-test"


def test_a_registered_backend_is_chosen_by_name_and_loaded_by_its_metadata(tmp_path, monkeypatch):
    monkeypatch.setitem(registry._BACKENDS, "numpy-test", registry._BACKENDS["faiss"])  # restored after the test
    register_backend("numpy-test", lambda count, dim, **_: _PluggedIndex(dim), _PluggedIndex.load)
    assert "numpy-test" in backend_names()
    with pytest.raises(ValueError, match="unknown vector index backend 'qdrant'"):
        make_vector_index(10, DIM, backend="qdrant")
    engine = _dense_engine("numpy-test")
    assert isinstance(engine.vector_index, _PluggedIndex)
    engine.save(tmp_path / "engine")
    loaded = MatchEngine.load(tmp_path / "engine")
    assert isinstance(loaded.vector_index, _PluggedIndex) and loaded.vector_backend == "numpy-test"
    assert [h.id for h in loaded.search("磷酸铁锂正极", 5)] == [h.id for h in engine.search("磷酸铁锂正极", 5)]


# ----------------------------------------------------------------------------- the milvus backend's own paths


def test_milvus_scalar_fields_filter_inside_milvus(tmp_path):
    vectors = random_unit(120)
    ids = np.arange(120, dtype=np.int64) + 10
    provinces = ["山东省" if i % 3 == 0 else "江苏省" for i in range(120)]
    index = make_vector_index(120, DIM, backend="milvus")
    assert isinstance(index, MilvusIndex)
    index.index(
        ids, vectors, fields={"province": np.array(provinces), "status": ["在业"] * 120, "mixed": [1, "x"] * 60}
    )  # typed columns, and one left dynamic
    shandong_only = FieldFilter(((condition("province", "eq", "山东省"),),))
    query = random_unit(1, seed=5)
    _, found = index.search(query, 10, where=shandong_only)
    shandong = ids[::3]
    _, want = numpy_top(vectors[::3], shandong, query[0], 10)
    assert list(found[0]) == list(want)
    # A hand-written expression compares a text column's codes.
    assert list(index.search(query, 10, where=f"province == {text_code('山东省')}")[1][0]) == list(want)
    # Fields come with appended vectors too, and the filter combines with allowed ids.
    index.append(np.array([999]), query, fields={"province": ["山东省"], "status": ["注销"]})
    working = FieldFilter(((condition("province", "eq", "山东省"),), (condition("status", "eq", "在业"),)))
    _, found = index.search(query, 3, where=working)
    assert 999 not in set(found[0]) and set(found[0]) <= set(shandong)
    _, found = index.search(query, 3, allowed_ids=np.array([999, 13, 11]), where=shandong_only)
    assert list(found[0][:2]) == [999, 13] and found[0][2] == -1
    index.append(np.array([998]), query)  # without fields: empty values, which no province filter passes
    _, found = index.search(query, 5, where=shandong_only)
    assert 998 not in set(found[0]) and found[0][0] == 999
    outside = FieldFilter(((condition("province", "ne", "江苏省"),),))  # a firm without a province is outside too
    assert {998, 999} <= set(index.search(query, 5, where=outside)[1][0])
    with pytest.raises(ValueError, match="values"):
        index.append(np.array([5]), query, fields={"province": []})
    index.save(tmp_path / "v.faiss")  # the fields are saved with the vectors
    loaded = load_vector_index(tmp_path / "v.faiss")
    assert loaded.scalar_fields == {"province": "TEXT", "status": "TEXT"}
    assert np.array_equal(
        loaded.search(query, 5, where=shandong_only)[1], index.search(query, 5, where=shandong_only)[1]
    )


def test_milvus_index_that_stored_text_as_text_is_rebuilt(tmp_path):
    """An index saved before text codes (its text columns VARCHAR) cannot answer coded filters: loading it asks for
    a rebuild instead of finding nothing."""
    index = make_vector_index(20, DIM, backend="milvus")
    index.index(np.arange(20, dtype=np.int64), random_unit(20), fields={"province": ["山东省"] * 20})
    index.save(tmp_path / "v.faiss")
    index.close()
    meta_file = meta_path(tmp_path / "v.faiss")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta["scalar_fields"] = {"province": "VARCHAR"}
    meta_file.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="as text"):
        load_vector_index(tmp_path / "v.faiss")


def _firm_fields(n: int) -> dict[str, list]:
    """Region, status and tags per vector as the registry has them: some firms without a city, some without tags."""
    rng = np.random.default_rng(11)
    provinces = np.array(["山东省", "江苏省", "广东省", "上海市"])[rng.integers(0, 4, n)]
    cities = [("" if rng.random() < 0.15 else f"{p[:2]}市{rng.integers(0, 3)}") for p in provinces]
    tags = [
        sorted(
            set(
                np.array(["专精特新", "高新技术企业", "上市公司", "it's"])[
                    rng.integers(0, 4, rng.integers(0, 3))
                ].tolist()
            )
        )
        for _ in range(n)
    ]
    return {
        "province": provinces.tolist(),
        "city": cities,
        "status": np.array(["存续", "在业", "注销"])[rng.integers(0, 3, n)].tolist(),
        "tags": tags,
    }


FIELD_FILTERS = [
    # one province, active firms only (the product's province filter)
    FieldFilter(((condition("province", "in", ["山东省"]),), (condition("status", "in", ["存续", "在业"]),))),
    # provinces or a city; outside the cluster's city (a firm without a city is outside it)
    FieldFilter(
        (
            (condition("province", "in", ["江苏省", "上海市"]), condition("city", "in", ["广东市1"])),
            (condition("city", "ne", "江苏市0"),),
        )
    ),
    # tags (any of), excluded provinces (firms without one would stay), a quote in a value
    FieldFilter(
        (
            (condition("tags", "contains_any", ["专精特新", "it's"]),),
            (condition("province", "not_in", ["广东省"]),),
            (condition("status", "ne", "注销"),),
        )
    ),
]


@pytest.mark.parametrize("flt", FIELD_FILTERS, ids=["province_active", "places_outside_city", "tags"])
def test_a_field_filter_inside_milvus_finds_what_its_id_list_finds_on_every_backend(flt):
    """The product's region/status/tag filters as a Milvus expression over stored fields give the same hits as the
    same filter resolved to an id list (its mask over the fields) on faiss and numpy."""
    n = 400
    vectors, ids = random_unit(n, seed=3), np.arange(n, dtype=np.int64) * 3 + 1
    fields = _firm_fields(n)
    allowed = ids[mask(flt, fields, n)]
    assert 0 < len(allowed) < n
    queries = random_unit(3, seed=9)
    milvus = make_vector_index(n, DIM, backend="milvus")
    milvus.index(ids, vectors, fields=fields)
    assert milvus.scalar_fields == {"province": "TEXT", "city": "TEXT", "status": "TEXT", "tags": "TEXT_LIST"}
    got_scores, got = milvus.search(queries, 20, where=flt)
    for backend in ("faiss", "numpy"):
        other = make_vector_index(n, DIM, backend=backend)
        other.index(ids, vectors)
        want_scores, want = other.search(queries, 20, allowed_ids=allowed)
        assert np.array_equal(got, want), backend
        assert np.allclose(got_scores, want_scores, atol=1e-5)
    # The expression and an id list combine by "and" (a roster or another id set kept as a list).
    roster = allowed[::2]
    _, both = milvus.search(queries, 20, allowed_ids=roster, where=milvus_expression(flt, milvus.coded_fields()))
    ref = NumpyIndex(DIM)
    ref.index(ids, vectors)
    assert np.array_equal(both, ref.search(queries, 20, allowed_ids=roster)[1])
    milvus.close()


def test_field_filters_are_checked_and_quoted():
    with pytest.raises(ValueError, match="operation"):
        condition("province", "like", ["山东%"])
    with pytest.raises(ValueError, match="identifier"):
        condition("province or 1", "in", ["x"])
    with pytest.raises(ValueError, match="empty"):
        condition("city", "in", ["", "x"])
    flt = FieldFilter(((condition("name", "eq", "a'b\\c"), condition("active", "eq", True)),))
    assert milvus_expression(flt) == "(name == 'a\\'b\\\\c' or active == true)"
    assert milvus_expression(FieldFilter()) == ""
    # Coded fields compare codes: stable 64-bit values, distinct for distinct texts, 0 for no text.
    coded = FieldFilter(((condition("tags", "contains_any", ["专精特新", "it's"]),), (condition("city", "ne", "x"),)))
    codes = text_code("专精特新"), text_code("it's")
    assert milvus_expression(coded, coded={"tags"}) == (
        f"(array_contains_any(tags, [{codes[0]}, {codes[1]}])) and (city != 'x')"
    )
    assert text_code("山东省") == text_code("山东省") != text_code("山东") and text_code("") == 0
    assert -(2**63) <= text_code("山东省") < 2**63


@pytest.fixture
def milvus_server(tmp_path):
    """A Milvus server at a URI: Milvus's engine (milvus-lite's binary) serving gRPC on a local TCP port."""
    pymilvus_module()
    from milvus_lite.server import Server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Server(str(tmp_path / "server.db"), f"127.0.0.1:{port}")
    assert server.init() and server.start()
    set_server_uri(f"http://127.0.0.1:{port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        set_server_uri(None)
        server.stop()


def test_milvus_by_uri_keeps_the_collection_on_the_server(milvus_server, tmp_path):
    vectors = random_unit(200)
    ids = np.arange(200, dtype=np.int64) * 2
    index = make_vector_index(200, DIM, backend="milvus")
    assert index.mode == "server" and index.uri == milvus_server
    index.index(ids, vectors)
    index.metadata["embedder"] = "builtin-test"
    path = tmp_path / "vectors.faiss"
    index.save(path)
    meta = read_meta(meta_path(path))
    assert meta["uri"] == milvus_server and meta["collection"] == index.collection
    loaded = load_vector_index(path, expected={"embedder": "builtin-test"})
    queries = random_unit(3, seed=6)
    assert np.array_equal(loaded.search(queries, 10)[1], index.search(queries, 10)[1])
    # One collection: a change through one handle is seen through the other.
    loaded.delete(np.array([ids[0]]))
    loaded.append(np.array([7]), queries[:1])
    assert index.search(queries[:1], 1)[1][0][0] == 7
    index.close()  # closing one handle leaves the other's connection working
    assert loaded.search(queries[:1], 1)[1][0][0] == 7
    path.write_text("milvus elsewhere other_collection\n", encoding="utf-8")
    with pytest.raises(IndexMismatchError):
        load_vector_index(path)


def test_milvus_saves_a_server_uri_without_credentials():
    assert public_uri("https://root:secret@milvus.example:19530/x") == "https://milvus.example:19530/x"
    assert public_uri("http://127.0.0.1:19530") == "http://127.0.0.1:19530"


def test_milvus_embedded_copies_are_private_and_removed(tmp_path):
    index = make_vector_index(30, DIM, backend="milvus")
    index.index(np.arange(30), random_unit(30))
    index.save(tmp_path / "v.faiss")
    loaded = load_vector_index(tmp_path / "v.faiss")
    loaded.append(np.array([100]), random_unit(1, seed=8))
    assert len(loaded) == 31 and len(load_vector_index(tmp_path / "v.faiss")) == 30  # the saved file is unchanged
    folders = [index._workdir, loaded._workdir]
    index.close()
    del loaded
    gc.collect()
    assert not any(folder.exists() for folder in folders)


def test_milvus_stored_vectors_follow_updates_and_the_saved_index(tmp_path):
    """The engine re-scores a search's firms from `vectors()`: they must be the collection's vectors after appends,
    replacements and deletes, and again after a save and load."""
    vectors = random_unit(50)
    index = make_vector_index(50, DIM, backend="milvus")
    index.index(np.arange(50), vectors)
    replaced, added = random_unit(2, seed=11)
    index.append(np.array([3, 77]), np.stack([replaced, added]))
    index.delete(np.array([4, 999]))
    expected = {i: vectors[i] for i in range(50) if i != 4} | {3: replaced, 77: added}
    asked = np.array([3, 4, 77, 10])
    got, present = index.vectors(asked)
    assert list(present) == [True, False, True, True]
    np.testing.assert_allclose(got, np.stack([expected[3], expected[77], expected[10]]), atol=1e-6)
    path = tmp_path / "v.faiss"
    index.save(path)
    loaded = load_vector_index(path)
    assert np.array_equal(loaded.ids(), np.array(sorted(expected)))
    got, present = loaded.vectors(asked)
    np.testing.assert_allclose(got, np.stack([expected[3], expected[77], expected[10]]), atol=1e-6)
    # The search agrees with the stored rows: the top hit's score is its stored vector's inner product.
    scores, hits = loaded.search(added.reshape(1, -1), 1)
    assert hits[0][0] == 77 and scores[0][0] == pytest.approx(float(added @ added), abs=1e-5)
    loaded.close()
    index.close()


def test_a_milvus_index_saved_without_its_rows_or_with_other_rows_is_rebuilt(tmp_path):
    index = make_vector_index(20, DIM, backend="milvus")
    index.index(np.arange(20), random_unit(20))
    path = tmp_path / "v.faiss"
    index.save(path)
    other = tmp_path / "other.faiss"
    index.append(np.array([50]), random_unit(1, seed=3))
    index.save(other)
    index.close()
    for suffix in (".fp32.npy", ".fp32.ids.npy"):  # the local rows of another save: 21 vectors
        path.with_name(path.name + suffix).write_bytes(other.with_name(other.name + suffix).read_bytes())
    with pytest.raises(IndexMismatchError, match="not the collection's vectors"):
        load_vector_index(path)
    path.with_name(path.name + ".fp32.npy").unlink()
    with pytest.raises(IndexMismatchError, match="missing"):  # an index saved before the rows were kept
        load_vector_index(path)


def test_milvus_direct_search_reads_the_same_hits_as_the_public_client(tmp_path):
    """The search reads Milvus's reply arrays itself (matching.vectors.milvus_search); it must give what
    MilvusClient.search gives, filters applied and tied scores ordered by id, and the index must take that path."""
    vectors = random_unit(200)
    vectors[50:60] = vectors[5]  # ten rows tie with row 5 on every query
    ids = np.arange(200, dtype=np.int64) * 7 + 3
    index = make_vector_index(200, DIM, backend="milvus")
    index.index(ids, vectors, fields={"province": ["山东省" if i % 2 else "江苏省" for i in range(200)]})
    queries = np.concatenate([vectors[5:6], random_unit(3, seed=9)])
    client = index._client

    def call(expression: str) -> milvus_search.SearchCall:
        return milvus_search.SearchCall(
            index.collection, queries, 30, {"metric_type": "IP"}, expression, "vector", "id"
        )

    for expression in ("", f"province == {text_code('山东省')}"):
        direct = milvus_search.direct_search(client, call(expression))
        public = milvus_search.public_search(client, call(expression))
        assert len(direct) == len(public) == 4
        for (d_ids, d_scores), (p_ids, p_scores) in zip(direct, public):
            assert list(d_ids) == list(p_ids) and np.array_equal(d_scores, p_scores)
            assert d_ids.dtype == np.int64 and d_scores.dtype == np.float32
    tied = milvus_search.direct_search(client, call(""))[0][0][:11]
    assert list(tied) == sorted(ids[[5, *range(50, 60)]])  # equal scores, smallest id first
    searched = []
    original = milvus_search.direct_search
    try:
        milvus_search.direct_search = lambda *a: searched.append(a) or original(*a)
        _, found = index.search(queries, 30)
    finally:
        milvus_search.direct_search = original
    assert searched and list(found[0][:11]) == list(tied)
