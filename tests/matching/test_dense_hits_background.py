"""A query's dense hits are fetched on a worker thread while its lexical side is prepared (the vector index's search
waits on Milvus or runs in faiss without the GIL); the ranking is the same as fetching them on the calling thread,
and a forked web worker gets working threads of its own."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

import matching.engine.dense as engine_dense
from matching.embedders import BuiltinEmbedder
from matching.engine import MatchEngine
from matching.fusion import FusionWeights
from tests.worlds.matching_corpus import corpus

QUERIES = ["氢燃料电池电堆", "船舶 海洋工程装备 配套", "锂电池正极材料"]


@pytest.fixture(scope="module")
def engine():
    docs, _ = corpus()
    built = MatchEngine(embedder=BuiltinEmbedder(dim=16), weights=FusionWeights(dense=1.0))
    built.build(docs)
    return built


def _rankings(engine: MatchEngine) -> list[list[tuple[int, float]]]:
    return [[(h.id, round(h.score, 9)) for h in engine.search(q, k=20)] for q in QUERIES]


def test_dense_hits_come_from_a_worker_thread_and_rank_as_on_the_calling_thread(engine, monkeypatch):
    threads: list[str] = []
    hits = engine_dense.DenseChannel.hits

    def spy(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return hits(self, *args, **kwargs)

    monkeypatch.setattr(engine_dense.DenseChannel, "hits", spy)
    background = _rankings(engine)
    assert any(name.startswith("dense-hits") for name in threads)
    monkeypatch.setattr(engine_dense, "DENSE_HITS_WORKERS", 0)
    threads.clear()
    assert _rankings(engine) == background
    assert threads and not any(name.startswith("dense-hits") for name in threads)
    assert all(ranking for ranking in background)


def _search_in_child(engine: MatchEngine, out) -> None:
    out.send(_rankings(engine))


def test_a_forked_worker_fetches_dense_hits_on_threads_of_its_own(engine):
    expected = _rankings(engine)  # the parent's worker threads exist now; a forked child does not inherit them
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_search_in_child, args=(engine, send), daemon=True)
    child.start()
    assert receive.poll(30), "the forked worker's search did not finish"
    assert receive.recv() == expected
    child.join(10)
    assert child.exitcode == 0
