"""The float32 row store looks ids up the same way whether they are a database's small ids (a position table) or any
int64 ids (binary search): rows, presence and exact subset searches, after deletes and replacements, mapped or not."""

from __future__ import annotations

import numpy as np
import pytest

from matching.vectors.row_store import RowStore
from tests.worlds.vectors import DIM, random_unit

N = 400


def _stores(tmp_path, mapped: bool) -> dict[str, tuple[RowStore, int]]:
    """The same vectors under small ids (1..N, a table) and under ids spread over int64 (binary search), each with
    its id multiplier; both changed alike: ids deleted, one replaced, one added."""
    vectors = random_unit(N + 2, DIM, seed=3)
    out = {}
    for label, scale in (("small ids", 1), ("spread ids", 10**12)):
        store = RowStore.from_arrays(np.arange(1, N + 1, dtype=np.int64) * scale, vectors[:N])
        if mapped:
            store.save(tmp_path / label / "v.faiss")
            assert store.mapped
        store.delete(np.array([5, 6, 7], np.int64) * scale)
        store.upsert(np.array([10, N + 50], np.int64) * scale, vectors[N:])
        out[label] = (store, scale)
    return out


@pytest.mark.parametrize("mapped", [False, True], ids=["in RAM", "mapped"])
def test_small_and_spread_ids_find_the_same_rows(tmp_path, mapped):
    asked = np.array([1, 5, 10, 11, N, N + 1, N + 50, 0, -3, 4 * N + 5000], np.int64)
    results = {}
    query = random_unit(1, DIM, seed=9)
    for label, (store, scale) in _stores(tmp_path, mapped).items():
        assert store._s.base_table is not None if scale == 1 else store._s.base_table is None
        ids = np.where(asked > 0, asked * scale, asked)
        rows, present = store.get(ids)
        scores, found = store.search_subset(query, np.arange(1, N + 60, dtype=np.int64) * scale, 15)
        results[label] = (rows, present, store.contains(ids), scores, found // scale, len(store))
    small, spread = results["small ids"], results["spread ids"]
    assert small[1].tolist() == [True, False, True, True, True, False, True, False, False, False]
    for a, b in zip(small, spread):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert small[5] == N - 3 + 1
    vectors = random_unit(N + 2, DIM, seed=3)
    assert np.array_equal(small[0], vectors[[0, N, 10, N - 1, N + 1]])  # ids 1, 10 (replaced), 11, N, N + 50
