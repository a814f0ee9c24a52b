"""Vector search at scale: index build from stored embeddings, RAM per firm, recall@10 against exact search, latency.

Embeddings come from the resumable embedding store (matching.embedding_store), built with the built-in embedder
fitted on a sample of the pool (or reused from an earlier run of the same pool).
"""
from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np

from matching import embedding_store
from webapp.perf.machine import Stopwatch, machine_facts, percentiles_ms, rss_mb, work_dir
from webapp.perf.pool import filter_cases, link_queries, synthetic_pool

FIT_SAMPLE = 50_000  # pool texts the built-in embedder is fitted on (LSA basis); encoding covers the whole pool
RECALL_K = 10
SEARCH_K = 100
RECALL_EPS = 1e-3  # score tolerance of the ann-benchmarks recall (near-ties of near-duplicate synthetic profiles)


def fitted_builtin(texts: list[str], seed: int = 0):
    """A BuiltinEmbedder fitted on a sample of `texts`."""
    from matching.builtin_embedder import BuiltinEmbedder

    rng = np.random.default_rng(seed)
    sample = texts if len(texts) <= FIT_SAMPLE else [texts[i] for i in rng.choice(len(texts), FIT_SAMPLE, replace=False)]
    embedder = BuiltinEmbedder()
    embedder.fit(sample)
    return embedder


def ensure_embeddings(texts: list[str], folder: Path, progress=None, chunk_size: int = embedding_store.DEFAULT_CHUNK):
    """Embed the pool into `folder` (resuming a previous run); returns (EmbedResult, fit seconds)."""
    fit_seconds = 0.0
    manifest_ok = embedding_store.is_complete(folder)
    if manifest_ok:
        embedder = embedding_store.stored_embedder(folder)
    else:
        existing = embedding_store._read_manifest(folder)
        if existing.get("count") == len(texts) and (folder / embedding_store.EMBEDDER_DIR).exists():
            embedder = embedding_store.stored_embedder(folder)  # resume with the state earlier chunks used
        else:
            with Stopwatch() as sw:
                embedder = fitted_builtin(texts)
            fit_seconds = sw.seconds
    result = embedding_store.embed_pool(texts, embedder, folder, chunk_size=chunk_size, progress=progress)
    return result, fit_seconds


def _file_mb(path: Path) -> float:
    return os.path.getsize(path) / 1e6 if path.exists() else 0.0


def run(n: int, seed: int = 1, queries: int = 200, folder: str | None = None, exact_max: int | None = None,
        kind: str = "auto", refines: tuple[str, ...] = ("sq8", "fp16"), progress=None, log=lambda m: None) -> dict:
    """Build the index the engine would choose for `n` vectors and measure it (see module docstring)."""
    from matching.vector_index import DEFAULT_EXACT_MAX

    exact_max = DEFAULT_EXACT_MAX if exact_max is None else exact_max
    base = work_dir(folder, f"vector-{n}-{seed}")
    log(f"generating {n} synthetic firms")
    pool = synthetic_pool(n, seed)
    log("embedding the pool (resumable)")
    embedded, fit_seconds = ensure_embeddings(pool.texts, base / "embeddings", progress)
    embedder = embedding_store.stored_embedder(base / "embeddings")
    qtexts = link_queries(queries, seed)
    qvec = np.ascontiguousarray(embedder.encode(qtexts), dtype=np.float32)
    ids = np.arange(n, dtype=np.int64)
    filters = filter_cases(pool, len(qtexts), seed)
    del pool
    gc.collect()

    vectors = embedding_store.load_vectors(base / "embeddings")
    dim = vectors.shape[1]

    # Naive baseline: exact float32 flat scan (numpy matmul over every vector, full sort of the top).
    naive_times, truth = [], []
    for q in qvec:
        with Stopwatch() as sw:
            scores = vectors @ q
            top = np.argpartition(-scores, SEARCH_K)[:SEARCH_K]
            top = top[np.argsort(-scores[top])]
        naive_times.append(sw.seconds)
        truth.append((top[:RECALL_K], float(scores[top[RECALL_K - 1]])))

    builds = {}
    for refine in refines:
        builds[refine] = _build_and_measure(n, dim, ids, vectors, qvec, truth, filters, base / f"index-{refine}",
                                            exact_max, kind, refine, log)
        if builds[refine]["index_kind"] == "flat":
            break  # no refine step in an exact index
    first = next(iter(builds.values()))
    return {
        "bench": "vector", "n": n, "dim": dim, "queries": len(qvec), "embedder": embedder.name,
        "recall_note": (f"recall@{RECALL_K}: share of the exact top-{RECALL_K} ids found; _score_eps: share of "
                        f"returned hits scoring within {RECALL_EPS} of the exact {RECALL_K}th best"),
        "index_kind": first["index_kind"], "nlist": first["nlist"], "nprobe": first["nprobe"],
        "embedding": {"fit_seconds": round(fit_seconds, 1), "encode_seconds_this_run": embedded.seconds,
                      "texts_per_s": embedded.texts_per_s, "chunks": embedded.chunks,
                      "chunks_reused": embedded.chunks_reused},
        "float32_bytes_per_firm": dim * 4,
        "naive_exact_float32_scan_top100": percentiles_ms(naive_times),
        "refines": builds,
        "machine": machine_facts(),
    }


def _build_and_measure(n, dim, ids, vectors, qvec, truth, filters, folder: Path, exact_max: int, kind: str,
                       refine: str, log) -> dict:
    from matching.vector_index import load_vector_index, make_vector_index

    log(f"building the vector index (exact_max={exact_max}, refine={refine})")
    index = make_vector_index(n, dim, exact_max=exact_max, kind=kind, refine=refine)
    anon_before = rss_mb("RssAnon")
    with Stopwatch() as build:
        index.index(ids, vectors)
    build_rss_mb = rss_mb("RssAnon") - anon_before
    path = folder / "vectors.faiss"
    folder.mkdir(parents=True, exist_ok=True)
    index.save(path)
    del index
    gc.collect()

    results = {}
    ivf = _meta(path).get("kind") == "ivfpq"
    for mode in ("in_ram", "mmap_refine") if ivf else ("in_ram",):
        gc.collect()
        anon_before = rss_mb("RssAnon")
        loaded = load_vector_index(path, mmap_store=(mode == "mmap_refine"))
        anon_mb = rss_mb("RssAnon") - anon_before
        times, hits, near = [], 0, 0
        for q, (want, tenth) in zip(qvec, truth):
            with Stopwatch() as sw:
                _, found = loaded.search(q.reshape(1, -1), SEARCH_K)
            times.append(sw.seconds)
            got = found[0][:RECALL_K]
            hits += len(np.intersect1d(got, want))
            # ann-benchmarks' definition: a hit whose exact score is within RECALL_EPS of the 10th best counts.
            near += int(np.sum(vectors[got[got >= 0]] @ q >= tenth - RECALL_EPS))
        per_filter: dict[str, list[float]] = {}
        filtered_recall: dict[str, list[float]] = {}
        for q, (label, allowed, excluded) in zip(qvec, filters):
            with Stopwatch() as sw:
                if allowed is not None:
                    _, found = loaded.search(q.reshape(1, -1), SEARCH_K, allowed_ids=allowed)
                    got = found[0]
                else:
                    # Exclusions: over-fetch by the excluded share and drop them (what an id-set filter costs).
                    _, found = loaded.search(q.reshape(1, -1), SEARCH_K + min(len(excluded), SEARCH_K * 4))
                    got = found[0][~np.isin(found[0], excluded)][:SEARCH_K]
            per_filter.setdefault(label, []).append(sw.seconds)
            keep = np.ones(n, bool)
            if allowed is not None:
                keep[:] = False
                keep[allowed] = True
            keep[excluded] = False
            cand = np.flatnonzero(keep)
            if len(cand):
                exact = cand[np.argsort(-(vectors[cand] @ q), kind="stable")[:RECALL_K]]
                filtered_recall.setdefault(label, []).append(len(np.intersect1d(got[:RECALL_K], exact)) / len(exact))
        results[mode] = {
            "resident_mb": round(anon_mb, 1),
            "resident_bytes_per_firm": round(anon_mb * 1e6 / n, 1),
            "search_top100": percentiles_ms(times),
            f"recall@{RECALL_K}": round(hits / (RECALL_K * len(qvec)), 4),
            f"recall@{RECALL_K}_score_eps": round(near / (RECALL_K * len(qvec)), 4),
            "filtered_search_top100": {k: percentiles_ms(v) for k, v in per_filter.items()},
            f"filtered_recall@{RECALL_K}": {k: round(float(np.mean(v)), 4) for k, v in filtered_recall.items()},
        }
        del loaded
    meta = _meta(path)
    main_mb = _file_mb(path)
    store_mb = _file_mb(path.with_name(path.name + ".sq8"))
    return {"index_kind": meta.get("kind"), "nlist": meta.get("nlist"), "nprobe": meta.get("nprobe"),
            "build_seconds_from_stored_embeddings": round(build.seconds, 2),
            "build_rss_growth_mb": round(build_rss_mb, 1),
            "files_mb": {"index": round(main_mb, 1), "refine_store": round(store_mb, 1)},
            "index_file_bytes_per_firm": round(main_mb * 1e6 / n, 1), "modes": results}


def _meta(path: Path) -> dict:
    from matching.index_meta import meta_path, read_meta

    return read_meta(meta_path(path))
