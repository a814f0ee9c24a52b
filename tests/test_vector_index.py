"""faiss vector indexes: exact correctness, updates, filters, persistence, IVF-PQ recall, metadata checks."""
from __future__ import annotations

import numpy as np
import pytest

from matching.index_meta import IndexMismatchError, meta_path, read_meta
from matching.vector_index import (
    KIND_FLAT,
    KIND_IVFPQ,
    FaissIndex,
    choose_kind,
    load_vector_index,
    make_vector_index,
)

DIM = 32
RECALL_TARGET = 0.9


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _random(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return _unit(np.random.default_rng(seed).standard_normal((n, dim)))


def _clustered(n: int, dim: int, centers: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centers, dim))
    labels = rng.integers(0, centers, n)
    return _unit(middle[labels] + 0.35 * rng.standard_normal((n, dim)))


def _numpy_top(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = vectors @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return scores[order], ids[order]


def test_flat_search_matches_numpy():
    vectors = _random(500)
    ids = np.arange(1000, 1500, dtype=np.int64)
    index = make_vector_index(len(ids), DIM)
    assert index.kind == KIND_FLAT
    index.index(ids, vectors)
    queries = _random(5, seed=1)
    scores, found = index.search(queries, 10)
    assert scores.shape == found.shape == (5, 10)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    for row, query in enumerate(queries):
        want_scores, want_ids = _numpy_top(vectors, ids, query, 10)
        assert list(found[row]) == list(want_ids)
        np.testing.assert_allclose(scores[row], want_scores, rtol=1e-5, atol=1e-5)


def test_fewer_hits_than_k_are_padded():
    index = make_vector_index(3, DIM)
    index.index(np.array([7, 8, 9]), _random(3))
    scores, found = index.search(_random(1, seed=2), 5)
    assert sorted(found[0][:3]) == [7, 8, 9]
    assert list(found[0][3:]) == [-1, -1]
    assert np.all(np.isneginf(scores[0][3:]))


def test_append_replaces_and_delete_removes():
    vectors = _random(50)
    ids = np.arange(50, dtype=np.int64)
    index = make_vector_index(50, DIM)
    index.index(ids, vectors)
    # Re-adding id 3 with a new vector replaces the old one rather than duplicating it.
    target = _random(1, seed=9)
    index.append(np.array([3]), target)
    assert len(index) == 50
    _, found = index.search(target, 1)
    assert found[0][0] == 3
    index.append(np.array([100]), _random(1, seed=10))
    assert len(index) == 51 and 100 in set(index.ids())
    index.delete(np.array([3, 100, 999]))
    assert len(index) == 49
    _, found = index.search(target, 49)
    assert 3 not in set(found[0]) and 100 not in set(found[0])


def test_allowed_ids_filter_only_returns_allowed():
    vectors = _random(300)
    ids = np.arange(300, dtype=np.int64)
    index = make_vector_index(300, DIM)
    index.index(ids, vectors)
    allowed = ids[::7]
    query = _random(1, seed=3)
    _, found = index.search(query, 10, allowed_ids=allowed)
    assert set(found[0]) <= set(allowed)
    _, want = _numpy_top(vectors[allowed], allowed, query[0], 10)
    assert list(found[0]) == list(want)
    _, none = index.search(query, 10, allowed_ids=np.array([], dtype=np.int64))
    assert list(none[0]) == [-1] * 10


def test_save_load_round_trip_keeps_results_and_metadata(tmp_path):
    vectors = _random(200)
    ids = np.arange(200, dtype=np.int64) * 5
    index = make_vector_index(200, DIM)
    index.index(ids, vectors)
    index.metadata.update(embedder="builtin-test", watermark=["2025-01-01T00:00:00", 200, 0])
    path = tmp_path / "vectors.faiss"
    index.save(path)
    meta = read_meta(meta_path(path))
    assert meta["embedder"] == "builtin-test" and meta["dim"] == DIM and meta["count"] == 200
    assert meta["kind"] == KIND_FLAT and meta["built_at"]
    loaded = load_vector_index(path, expected={"embedder": "builtin-test", "dim": DIM})
    queries = _random(3, seed=4)
    assert np.array_equal(loaded.search(queries, 10)[1], index.search(queries, 10)[1])
    assert loaded.metadata["watermark"] == ["2025-01-01T00:00:00", 200, 0]


def test_metadata_mismatch_and_damage_are_detected(tmp_path):
    index = make_vector_index(20, DIM)
    index.index(np.arange(20), _random(20))
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


def test_kind_is_chosen_by_pool_size():
    assert choose_kind(1000, exact_max=5000) == KIND_FLAT
    assert choose_kind(6000, exact_max=5000) == KIND_IVFPQ
    assert choose_kind(10, exact_max=5000, kind="ivfpq") == KIND_IVFPQ
    assert make_vector_index(6000, DIM, exact_max=5000).kind == KIND_IVFPQ
    with pytest.raises(ValueError):
        choose_kind(10, kind="hnsw")


@pytest.fixture(scope="module")
def clustered_pool():
    vectors = _clustered(20_000, 64, centers=200, seed=5)
    ids = np.arange(20_000, dtype=np.int64) * 2 + 1
    ivf = FaissIndex(64, KIND_IVFPQ)
    ivf.index(ids, vectors)
    return vectors, ids, ivf


def test_ivfpq_recall_at_10_against_exact(clustered_pool):
    vectors, ids, ivf = clustered_pool
    queries = _clustered(100, 64, centers=200, seed=5)[:100]  # same centres, fresh noise draws
    queries = _unit(queries + 0.05 * np.random.default_rng(6).standard_normal(queries.shape))
    exact = FaissIndex(64, KIND_FLAT)
    exact.index(ids, vectors)
    _, want = exact.search(queries, 10)
    _, got = ivf.search(queries, 10)
    recall = np.mean([len(set(w) & set(g)) / 10 for w, g in zip(want, got)])
    print(f"IVF-PQ recall@10 = {recall:.3f} (nlist={ivf.nlist}, nprobe={ivf.nprobe})")
    assert recall >= RECALL_TARGET


def test_ivfpq_filters_updates_and_persistence(clustered_pool, tmp_path):
    vectors, ids, ivf = clustered_pool
    query = vectors[:1]
    # A small allowed set is searched exhaustively, so its true best hits come back.
    allowed = ids[5000:5400]
    _, found = ivf.search(query, 10, allowed_ids=allowed)
    _, want = _numpy_top(vectors[5000:5400], allowed, query[0], 10)
    assert set(found[0]) <= set(allowed)
    assert len(set(found[0]) & set(want)) >= 9
    # A large allowed set goes through the IVF with the selector.
    big = ids[: len(ids) // 2]
    _, found = ivf.search(query, 10, allowed_ids=big)
    assert set(found[0][found[0] >= 0]) <= set(big)

    path = tmp_path / "ivf.faiss"
    ivf.save(path)
    loaded = load_vector_index(path, expected={"kind": KIND_IVFPQ})
    assert len(loaded) == len(ids)
    assert found[0][0] == loaded.search(query, 10, allowed_ids=big)[1][0][0]
    loaded.delete(ids[:1])
    assert ids[0] not in set(loaded.search(query, 10)[1][0])
    newcomer = _unit(query + 0.001)
    loaded.append(np.array([10**9]), newcomer)
    assert loaded.search(newcomer, 1)[1][0][0] == 10**9
    assert len(loaded) == len(ids)
    # Damaging the refine store is detected on load.
    (tmp_path / "ivf.faiss.sq8").write_bytes(b"garbage")
    with pytest.raises(IndexMismatchError):
        load_vector_index(path)


def test_ivfpq_many_deletes_and_replacements_stay_consistent():
    vectors = _clustered(3000, 32, centers=30, seed=8)
    ids = np.arange(3000, dtype=np.int64)
    index = FaissIndex(32, KIND_IVFPQ)
    index.index(ids, vectors)
    # Replace a third of the vectors by new ones and delete another third, in several batches.
    moved = _clustered(1000, 32, centers=30, seed=9)
    for start in range(0, 1000, 250):
        index.append(ids[start:start + 250], moved[start:start + 250])
        index.delete(ids[1000 + start:1250 + start])
    assert len(index) == 2000
    assert set(index.ids()) == set(ids[:1000]) | set(ids[2000:])
    current = np.vstack([moved, vectors[2000:]])
    current_ids = np.concatenate([ids[:1000], ids[2000:]])
    queries = moved[:20]
    _, got = index.search(queries, 10)
    hits = 0
    for row, query in enumerate(queries):
        _, want = _numpy_top(current, current_ids, query, 10)
        assert set(got[row]) <= set(current_ids)
        hits += len(set(want) & set(got[row]))
    assert hits / 200 >= RECALL_TARGET
