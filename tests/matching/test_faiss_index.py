"""The faiss backend: kind by pool size, IVF-PQ recall, filters, updates and persistence, the memory-mapped float32
refine store, legacy SQ8 stores. What every backend must do is in tests/matching/test_vector_backends.py."""

from __future__ import annotations

import numpy as np
import pytest

from matching.vectors import (
    DEFAULT_REFINE,
    FILTER_EXACT_MAX_ROWS,
    KIND_FLAT,
    KIND_IVFPQ,
    REFINE_FP32,
    REFINE_SQ8,
    FaissIndex,
    IndexMismatchError,
    choose_kind,
    load_vector_index,
    make_vector_index,
    meta_path,
    read_meta,
)
from tests.worlds.vectors import DIM, RECALL_TARGET, clustered, exact_ids, numpy_top, recall_of, unit


def test_kind_is_chosen_by_pool_size():
    assert choose_kind(1000, exact_max=5000) == KIND_FLAT
    assert choose_kind(6000, exact_max=5000) == KIND_IVFPQ
    assert choose_kind(10, exact_max=5000, kind="ivfpq") == KIND_IVFPQ
    assert make_vector_index(6000, DIM, exact_max=5000).kind == KIND_IVFPQ
    with pytest.raises(ValueError):
        choose_kind(10, kind="hnsw")


@pytest.fixture(scope="module")
def clustered_pool():
    vectors = clustered(20_000, 64, centers=200, seed=5)
    ids = np.arange(20_000, dtype=np.int64) * 2 + 1
    ivf = FaissIndex(64, KIND_IVFPQ)
    ivf.index(ids, vectors)
    return vectors, ids, ivf


def test_ivfpq_recall_at_10_against_exact(clustered_pool):
    vectors, ids, ivf = clustered_pool
    queries = clustered(100, 64, centers=200, seed=5)[:100]  # same centres, fresh noise draws
    queries = unit(queries + 0.05 * np.random.default_rng(6).standard_normal(queries.shape))
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
    _, want = numpy_top(vectors[5000:5400], allowed, query[0], 10)
    assert set(found[0]) <= set(allowed)
    assert len(set(found[0]) & set(want)) >= 9
    # Above FILTER_EXACT_MAX_ROWS an allowed set goes through the IVF with the selector; its best hits are still found.
    mid = ids[: FILTER_EXACT_MAX_ROWS + 500]
    queries = vectors[100:120]
    _, found = ivf.search(queries, 10, allowed_ids=mid)
    assert set(found[found >= 0].tolist()) <= set(mid.tolist())
    assert recall_of(exact_ids(vectors[: len(mid)], mid, queries, 10), found) >= RECALL_TARGET
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
    newcomer = unit(query + 0.001)
    loaded.append(np.array([10**9]), newcomer)
    assert loaded.search(newcomer, 1)[1][0][0] == 10**9
    assert len(loaded) == len(ids)
    # Damaging or removing a refine-store file is detected on load.
    files = loaded.store_files(path)
    assert files and all(f.exists() for f in files)
    for damaged in files:
        backup = damaged.read_bytes()
        damaged.write_bytes(b"garbage")
        with pytest.raises(IndexMismatchError):
            load_vector_index(path)
        damaged.unlink()
        with pytest.raises(IndexMismatchError):
            load_vector_index(path)
        damaged.write_bytes(backup)
    assert len(load_vector_index(path)) == len(ids)


def test_ivfpq_many_deletes_and_replacements_stay_consistent():
    vectors = clustered(3000, 32, centers=30, seed=8)
    ids = np.arange(3000, dtype=np.int64)
    index = FaissIndex(32, KIND_IVFPQ)
    index.index(ids, vectors)
    # Replace a third of the vectors by new ones and delete another third, in several batches.
    moved = clustered(1000, 32, centers=30, seed=9)
    for start in range(0, 1000, 250):
        index.append(ids[start : start + 250], moved[start : start + 250])
        index.delete(ids[1000 + start : 1250 + start])
    assert len(index) == 2000
    assert set(index.ids()) == set(ids[:1000]) | set(ids[2000:])
    current = np.vstack([moved, vectors[2000:]])
    current_ids = np.concatenate([ids[:1000], ids[2000:]])
    queries = moved[:20]
    _, got = index.search(queries, 10)
    hits = 0
    for row, query in enumerate(queries):
        _, want = numpy_top(current, current_ids, query, 10)
        assert set(got[row]) <= set(current_ids)
        hits += len(set(want) & set(got[row]))
    assert hits / 200 >= RECALL_TARGET


# -- IVF-PQ re-scored against float32 rows memory-mapped from disk (refine "fp32", the default) ---------------------


def test_fp32_refine_is_the_default_and_loads_memory_mapped(clustered_pool, tmp_path):
    vectors, ids, ivf = clustered_pool
    assert DEFAULT_REFINE == REFINE_FP32 and ivf.refine == REFINE_FP32
    path = tmp_path / "v.faiss"
    ivf.save(path)
    assert ivf._rows.mapped  # built in RAM; once saved, the rows are served from the file (RAM released)
    loaded = load_vector_index(path)
    assert loaded._rows.mapped  # the product's load path (no mmap_store argument) maps the float32 rows
    # Only the ids are in RAM, and their position table (4 bytes per id up to the largest: ids 1, 3, …, 39,999)
    assert loaded._rows.resident_bytes() == len(ids) * 8 + (int(ids.max()) + 1) * 4
    in_ram = load_vector_index(path, mmap_store=False)
    assert not in_ram._rows.mapped
    queries = vectors[:20]
    assert np.array_equal(loaded.search(queries, 10)[1], in_ram.search(queries, 10)[1])
    # The stored vectors are the float32 vectors given, exactly.
    got, present = loaded.vectors(ids[[5, 7, 9]])
    assert present.all() and np.array_equal(got, vectors[[5, 7, 9]])


def test_fp32_recall_at_10_on_near_duplicates_against_exact():
    """Near-identical profiles (the 10th and 11th best scores differ by ~2e-4) are where compressed re-scoring
    loses exact ids; float32 re-scoring of the same PQ candidates keeps them."""
    rng = np.random.default_rng(11)
    centres = unit(rng.standard_normal((40, 64)))
    labels = rng.integers(0, 40, 30_000)
    vectors = unit(centres[labels] + 0.03 * rng.standard_normal((30_000, 64)))
    ids = np.arange(30_000, dtype=np.int64) + 7
    queries = unit(centres[rng.integers(0, 40, 50)] + 0.03 * rng.standard_normal((50, 64)))
    want = exact_ids(vectors, ids, queries, 10)
    recalls = {}
    for refine in ("fp32", "sq8"):
        index = FaissIndex(64, KIND_IVFPQ, nlist=128, refine=refine)
        index.index(ids, vectors)
        recalls[refine] = recall_of(want, index.search(queries, 10)[1])
    print(f"near-duplicate recall@10: {recalls}")
    assert recalls["fp32"] >= 0.95
    assert recalls["fp32"] > recalls["sq8"]


def test_fp32_mapped_store_append_delete_search_return_the_right_ids(clustered_pool, tmp_path):
    vectors, ids, ivf = clustered_pool
    path = tmp_path / "v.faiss"
    ivf.save(path)
    index = load_vector_index(path)
    assert index._rows.mapped
    current = dict(zip(ids.tolist(), vectors))
    # Replace a base vector, add new ids, delete base ids and one appended id — all on the mapped store.
    moved = clustered(300, 64, centers=200, seed=21)
    replaced = ids[100:200]
    index.append(replaced, moved[:100])
    new_ids = np.arange(10**9, 10**9 + 200, dtype=np.int64)
    index.append(new_ids, moved[100:])
    gone = np.concatenate([ids[1000:1100], new_ids[:10]])
    index.delete(gone)
    current.update(zip(replaced.tolist(), moved[:100]))
    current.update(zip(new_ids.tolist(), moved[100:]))
    for i in gone.tolist():
        current.pop(i)
    assert index._rows.mapped and index._rows.delta_count() == 290
    assert len(index) == len(current) == len(ids) - 100 + 190
    assert set(index.ids().tolist()) == set(current)
    got, present = index.vectors(np.array([replaced[0], new_ids[50], gone[0], -5]))
    assert list(present) == [True, True, False, False]
    assert np.array_equal(got, np.stack([current[int(replaced[0])], current[int(new_ids[50])]]))
    cur_ids = np.fromiter(current, np.int64)
    cur_vecs = np.stack([current[i] for i in cur_ids.tolist()])
    queries = np.vstack([moved[:20], moved[150:170], vectors[1000:1010]])
    _, found = index.search(queries, 10)
    assert not set(found.ravel().tolist()) & set(gone.tolist())
    assert set(found.ravel().tolist()) <= set(current)
    assert recall_of(exact_ids(cur_vecs, cur_ids, queries, 10), found) >= 0.95
    # Each moved vector finds its own id first (replaced and appended ones live only in the delta).
    _, top = index.search(moved[:20], 1)
    assert list(top[:, 0]) == list(replaced[:20])
    _, top = index.search(moved[150:160], 1)
    assert list(top[:, 0]) == list(new_ids[50:60])
    # Small allowed sets are scanned exactly, delta rows included, tombstones excluded.
    allowed = np.concatenate([new_ids[:40], replaced[:40], ids[1000:1040], ids[5000:5200]])
    _, found = index.search(moved[100:105], 10, allowed_ids=allowed)
    live_allowed = np.array([i for i in allowed.tolist() if i in current])
    want = exact_ids(np.stack([current[i] for i in live_allowed.tolist()]), live_allowed, moved[100:105], 10)
    assert [list(r) for r in found] == want


def test_fp32_save_load_round_trip_keeps_appended_vectors(clustered_pool, tmp_path):
    vectors, ids, ivf = clustered_pool
    first = tmp_path / "a" / "v.faiss"
    ivf.save(first)
    index = load_vector_index(first)
    added = clustered(50, 64, centers=200, seed=31)
    new_ids = np.arange(5 * 10**8, 5 * 10**8 + 50, dtype=np.int64)
    index.append(new_ids, added)
    index.delete(ids[:30])
    second = tmp_path / "b" / "v.faiss"
    index.save(second)
    # Saving folds the delta and tombstones into the new file and maps it.
    assert index._rows.mapped and index._rows.delta_count() == 0 and not index._rows.changed
    assert index._rows.resident_bytes() == len(index) * 8  # the ids alone: spread ids get no position table
    reloaded = load_vector_index(second)
    assert len(reloaded) == len(ids) - 30 + 50 == read_meta(meta_path(second))["count"]
    got, present = reloaded.vectors(new_ids)
    assert present.all() and np.array_equal(got, added)
    assert not reloaded.vectors(ids[:30])[1].any()
    _, top = reloaded.search(added[:10], 1)
    assert list(top[:, 0]) == list(new_ids[:10])
    assert np.array_equal(np.sort(reloaded.ids()), np.sort(index.ids()))
    # Saving in place after more changes replaces the mapped file atomically (the old mapping stays valid).
    reloaded.append(np.array([42]), added[:1])
    reloaded.save(second)
    again = load_vector_index(second)
    assert again.search(added[:1], 1)[1][0][0] in (42, new_ids[0])  # identical vectors: either id is exact
    assert len(again) == len(reloaded) == len(ids) + 21
    # An unchanged mapped store saved elsewhere shares its rows file instead of copying it.
    third = tmp_path / "c" / "v.faiss"
    again.save(third)
    rows_a = again.store_files(second)[0]
    rows_c = again.store_files(third)[0]
    assert rows_c.stat().st_ino == rows_a.stat().st_ino
    assert len(load_vector_index(third)) == len(again)


def test_fp32_many_updates_compact_the_ivf_and_stay_consistent():
    vectors = clustered(3000, 32, centers=30, seed=8)
    ids = np.arange(3000, dtype=np.int64)
    index = FaissIndex(32, KIND_IVFPQ)
    index.index(ids, vectors)
    moved = clustered(1500, 32, centers=30, seed=9)
    index.append(ids[:1500], moved)  # half replaced: the IVF lists are re-filled from the store
    assert index._main.ntotal <= len(index) * 1.25
    current = np.vstack([moved, vectors[1500:]])
    _, got = index.search(moved[:20], 10)
    assert recall_of(exact_ids(current, ids, moved[:20], 10), got) >= 0.95


def test_legacy_sq8_index_still_loads_and_appends(tmp_path):
    vectors = clustered(3000, 32, centers=30, seed=8)
    ids = np.arange(3000, dtype=np.int64)
    index = FaissIndex(32, KIND_IVFPQ, refine=REFINE_SQ8)
    index.index(ids, vectors)
    path = tmp_path / "old.faiss"
    index.save(path)
    loaded = load_vector_index(path)  # default: SQ8 copies in RAM, appendable as before
    assert loaded.refine == REFINE_SQ8 and loaded._rows is None
    loaded.append(np.array([10**6]), vectors[:1])
    assert 10**6 in set(loaded.search(vectors[:1], 2)[1][0])
    mapped = load_vector_index(path, mmap_store=True)  # read-only: a clear error instead of faiss aborting
    with pytest.raises(RuntimeError, match="read-only"):
        mapped.append(np.array([10**7]), vectors[:1])
    with pytest.raises(RuntimeError, match="read-only"):
        mapped.delete(ids[:1])
    assert len(mapped.search(vectors[:1], 5)[1][0]) == 5


def test_rows_scored_in_place_equal_rows_gathered_first(tmp_path):
    """An exact scan scores the allowed rows where they lie (memory-mapped or in RAM, or a strided view copied); the
    scores are bit for bit those of the gathered rows, so a firm's dense score does not depend on how it was found."""
    from matching.vectors.row_store import inner_products, inner_products_at

    rows = unit(np.random.default_rng(5).standard_normal((500, DIM)).astype(np.float32))
    np.save(tmp_path / "rows.npy", rows)
    mapped = np.load(tmp_path / "rows.npy", mmap_mode="r")
    picked = np.array([499, 3, 3, 250, 0, 17], np.int64)
    query = rows[42]
    want = inner_products(rows[picked], query)
    for base in (rows, mapped, np.asfortranarray(rows)):
        assert np.array_equal(inner_products_at(base, picked, query), want)
    assert len(inner_products_at(mapped, np.zeros(0, np.int64), query)) == 0
