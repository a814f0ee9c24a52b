"""Two request threads searching right after an import refresh the lexical channels at once (issue 19 soak)."""

from __future__ import annotations

import threading
import time

from matching.engine import Document, MatchEngine, channels
from matching.profiles import enterprise_profile
from tests.worlds.matching_corpus import corpus

THREADS = 4
WIDEN_RACE_S = 0.05  # analysis of the new documents made slow enough for every thread to start it


def test_concurrent_searches_apply_pending_additions_once(monkeypatch):
    docs, _ = corpus()
    engine = MatchEngine()
    engine.build(docs)
    new = [
        Document(10_000 + i, f"并发示例{i}有限公司", enterprise_profile(f"并发示例{i}有限公司", "氢燃料电池电堆"))
        for i in range(3)
    ]
    engine.add(new)
    original = channels.count_matrices

    def slow_count(*args, **kwargs):
        time.sleep(WIDEN_RACE_S)
        return original(*args, **kwargs)

    monkeypatch.setattr(channels, "count_matrices", slow_count)
    barrier, errors, results = threading.Barrier(THREADS), [], []

    def search() -> None:
        barrier.wait()
        try:
            results.append([hit.id for hit in engine.search("氢燃料电池电堆", k=3)])
        except Exception as exc:  # noqa: BLE001 - any failure of a racing thread fails the test
            errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert engine.channels["bm25"].counts.shape[0] == len(docs) + len(new)
    assert all(set(ids) == {d.id for d in new} for ids in results)
