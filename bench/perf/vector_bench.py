"""Vector search at scale: index build from stored embeddings, RAM per firm, recall@10 against exact search, latency.

Embeddings come from the resumable embedding store (matching.embedding_store), built with the built-in embedder
fitted on a sample of the pool (or reused from an earlier run of the same pool).

Resident memory is anonymous RSS (`RssAnon`): the memory-mapped refine rows are file-backed page cache, which the
kernel reclaims under pressure, and are reported apart (`mapped_file_resident_mb`). For the memory-mapped mode the
refine files are first evicted from the page cache (posix_fadvise DONTNEED), so the first pass of queries is timed
cold and the second warm.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.perf.machine import Stopwatch, evict_from_page_cache, machine_facts, percentiles_ms, rss_mb, work_dir
from bench.perf.pool import filter_cases, link_queries, synthetic_pool
from matching import embedding_store

FIT_SAMPLE = 50_000  # pool texts the built-in embedder is fitted on (LSA basis); encoding covers the whole pool
RECALL_K = 10
SEARCH_K = 100
RECALL_EPS = 1e-3  # score tolerance of the ann-benchmarks recall (near-ties of near-duplicate synthetic profiles)
ENGINE_K = 1000  # dense hits the match engine asks for (matching.engine.DENSE_CANDIDATES)
DEFAULT_REFINES = ("fp32",)


def fitted_builtin(texts: list[str], seed: int = 0):
    """A BuiltinEmbedder fitted on a sample of `texts`."""
    from matching.embedders import BuiltinEmbedder

    rng = np.random.default_rng(seed)
    sample = (
        texts if len(texts) <= FIT_SAMPLE else [texts[i] for i in rng.choice(len(texts), FIT_SAMPLE, replace=False)]
    )
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


def run(
    n: int,
    seed: int = 1,
    queries: int = 200,
    folder: str | None = None,
    exact_max: int | None = None,
    kind: str = "auto",
    refines: tuple[str, ...] = DEFAULT_REFINES,
    progress=None,
    log=lambda m: None,
) -> dict:
    """Build the index the engine would choose for `n` vectors and measure it (see module docstring)."""
    from matching.vectors import DEFAULT_EXACT_MAX

    exact_max = DEFAULT_EXACT_MAX if exact_max is None else exact_max
    base = work_dir(folder, f"vector-{n}-{seed}")
    load_at_start = round(os.getloadavg()[0], 2)
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

    filter_truth = _filter_truth(n, vectors, qvec, filters)
    builds = {}
    for refine in refines:
        builds[refine] = _build_and_measure(
            n,
            dim,
            ids,
            vectors,
            qvec,
            truth,
            filters,
            filter_truth,
            base / f"index-{refine}",
            exact_max,
            kind,
            refine,
            log,
        )
        if builds[refine]["index_kind"] == "flat":
            break  # no refine step in an exact index
    first = next(iter(builds.values()))
    return {
        "bench": "vector",
        "n": n,
        "dim": dim,
        "queries": len(qvec),
        "embedder": embedder.name,
        "recall_note": (
            f"recall@{RECALL_K}: share of the exact top-{RECALL_K} ids found; _score_eps: share of "
            f"returned hits scoring within {RECALL_EPS} of the exact {RECALL_K}th best"
        ),
        "index_kind": first["index_kind"],
        "nlist": first["nlist"],
        "nprobe": first["nprobe"],
        "embedding": {
            "fit_seconds": round(fit_seconds, 1),
            "encode_seconds_this_run": embedded.seconds,
            "texts_per_s": embedded.texts_per_s,
            "chunks": embedded.chunks,
            "chunks_reused": embedded.chunks_reused,
        },
        "float32_bytes_per_firm": dim * 4,
        "naive_exact_float32_scan_top100": percentiles_ms(naive_times),
        "refines": builds,
        "load_average_1m_at_start": load_at_start,
        "machine": machine_facts(),
    }


def _timed_pass(loaded, qvec, k: int) -> tuple[list[float], list[float], np.ndarray]:
    """(wall seconds, CPU seconds of this process, found ids) per query. CPU time does not grow with the load of
    other processes on the shared machine; wall time also includes waiting for the CPU and for disk reads."""
    times, cpu, found = [], [], []
    for q in qvec:
        began = time.process_time()
        with Stopwatch() as sw:
            _, ids = loaded.search(q.reshape(1, -1), k)
        cpu.append(time.process_time() - began)
        times.append(sw.seconds)
        found.append(ids[0])
    return times, cpu, np.asarray(found)


def resident_probe(path: str, mapped: bool, queries_file: str) -> dict:
    """Anonymous RSS of loading the index at `path` in this (fresh) process and searching the saved queries."""
    import faiss  # noqa: F401 - library start-up memory is not the index's

    from matching.vectors import load_vector_index

    qvec = np.load(queries_file)
    gc.collect()
    anon0, file0 = rss_mb("RssAnon"), rss_mb("RssFile")
    loaded = load_vector_index(Path(path), mmap_store=mapped)
    anon1 = rss_mb("RssAnon")
    for k in (SEARCH_K, ENGINE_K):
        for q in qvec:
            loaded.search(q.reshape(1, -1), k)
    n = len(loaded)
    return {
        "resident_bytes_per_firm": round((anon1 - anon0) * 1e6 / n, 1),
        "resident_after_searches_bytes_per_firm": round((rss_mb("RssAnon") - anon0) * 1e6 / n, 1),
        "mapped_file_resident_mb": round(rss_mb("RssFile") - file0, 1),
    }


def _fresh_process_resident(path: Path, mapped: bool, qvec: np.ndarray) -> dict:
    """resident_probe in a new Python process: in the benchmark's own process freed build memory is reused by
    the allocator and hides what loading the index costs."""
    qfile = path.with_name("probe-queries.npy")
    np.save(qfile, qvec)
    code = (
        "import json, sys; from bench.perf.vector_bench import resident_probe; "
        "print(json.dumps(resident_probe(sys.argv[1], sys.argv[2] == '1', sys.argv[3])))"
    )
    try:
        # From the checkout's root, where the bench package is importable (it is not installed with the wheel).
        out = subprocess.run(
            [sys.executable, "-c", code, str(path), "1" if mapped else "0", str(qfile)],
            capture_output=True,
            text=True,
            check=True,
            timeout=3600,
            cwd=Path(__file__).resolve().parents[2],
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {"error": str(exc)[:300]}
    finally:
        qfile.unlink(missing_ok=True)


def _filter_truth(n: int, vectors: np.ndarray, qvec: np.ndarray, filters) -> list[np.ndarray | None]:
    """Exact top-10 ids per query under its filter (computed before any timing: the big numpy products here
    leave OpenBLAS threads spinning, which slowed the searches timed right after them)."""
    out = []
    for q, (_, allowed, excluded) in zip(qvec, filters):
        keep = np.ones(n, bool)
        if allowed is not None:
            keep[:] = False
            keep[allowed] = True
        keep[excluded] = False
        cand = np.flatnonzero(keep)
        out.append(cand[np.argsort(-(vectors[cand] @ q), kind="stable")[:RECALL_K]] if len(cand) else None)
    return out


def _build_and_measure(
    n, dim, ids, vectors, qvec, truth, filters, filter_truth, folder: Path, exact_max: int, kind: str, refine: str, log
) -> dict:
    from matching.vectors import load_vector_index, make_vector_index

    log(f"building the vector index (exact_max={exact_max}, refine={refine})")
    index = make_vector_index(n, dim, exact_max=exact_max, kind=kind, refine=refine)
    anon_before = rss_mb("RssAnon")
    with Stopwatch() as build:
        index.index(ids, vectors)
    build_rss_mb = rss_mb("RssAnon") - anon_before
    path = folder / "vectors.faiss"
    folder.mkdir(parents=True, exist_ok=True)
    with Stopwatch() as saving:
        index.save(path)
    store_files = index.store_files(path) if hasattr(index, "store_files") else []
    del index
    gc.collect()

    results = {}
    ivf = _meta(path).get("kind") == "ivfpq"
    for mode in ("mmap_refine", "in_ram") if ivf else ("in_ram",):
        gc.collect()
        log(f"measuring {refine} {mode}")
        mapped = mode == "mmap_refine"
        if mapped:
            evict_from_page_cache(store_files)
        load_start = round(os.getloadavg()[0], 2)
        anon_before, file_before = rss_mb("RssAnon"), rss_mb("RssFile")
        with Stopwatch() as loading:
            loaded = load_vector_index(path, mmap_store=mapped)
        anon_mb = rss_mb("RssAnon") - anon_before
        cold = cold_cpu = None
        if mapped:  # first pass right after eviction: the refine rows come from disk
            cold, cold_cpu, _ = _timed_pass(loaded, qvec, SEARCH_K)
        else:  # warm-up pass (faiss and numpy first-call costs), not reported
            _timed_pass(loaded, qvec[:20], SEARCH_K)
        times, cpu, found = _timed_pass(loaded, qvec, SEARCH_K)
        hits, near = 0, 0
        for q, (want, tenth), row in zip(qvec, truth, found):
            got = row[:RECALL_K]
            hits += len(np.intersect1d(got, want))
            # ann-benchmarks' definition: a hit whose exact score is within RECALL_EPS of the 10th best counts.
            near += int(np.sum(vectors[got[got >= 0]] @ q >= tenth - RECALL_EPS))
        engine_times, engine_cpu, engine_found = _timed_pass(loaded, qvec, ENGINE_K)
        engine_hits = sum(len(np.intersect1d(row[:RECALL_K], want)) for row, (want, _) in zip(engine_found, truth))
        per_filter: dict[str, list[float]] = {}
        per_filter_cpu: dict[str, list[float]] = {}
        filtered_recall: dict[str, list[float]] = {}
        for q, (label, allowed, excluded), exact in zip(qvec, filters, filter_truth):
            dropped = None
            if allowed is None:  # the excluded ids as a mask over the pool, as the engine caches per filter set
                dropped = np.zeros(n, bool)
                dropped[excluded] = True
            began = time.process_time()
            with Stopwatch() as sw:
                if allowed is not None:
                    _, found_f = loaded.search(q.reshape(1, -1), SEARCH_K, allowed_ids=allowed)
                    got = found_f[0]
                else:
                    # Exclusions: over-fetch by the excluded count (up to 4 x k) and drop them.
                    _, found_f = loaded.search(q.reshape(1, -1), SEARCH_K + min(len(excluded), SEARCH_K * 4))
                    got = found_f[0][found_f[0] >= 0]
                    got = got[~dropped[got]][:SEARCH_K]
            per_filter.setdefault(label, []).append(sw.seconds)
            per_filter_cpu.setdefault(label, []).append(time.process_time() - began)
            if exact is not None:
                filtered_recall.setdefault(label, []).append(len(np.intersect1d(got[:RECALL_K], exact)) / len(exact))
        after_mb = rss_mb("RssAnon") - anon_before
        mapped_file_mb = rss_mb("RssFile") - file_before
        del loaded
        gc.collect()
        results[mode] = {
            "load_seconds": round(loading.seconds, 2),
            "fresh_process": _fresh_process_resident(path, mapped, qvec),
            "same_process": {
                "resident_bytes_per_firm": round(anon_mb * 1e6 / n, 1),
                "resident_after_searches_bytes_per_firm": round(after_mb * 1e6 / n, 1),
                "mapped_file_resident_mb": round(mapped_file_mb, 1) if mapped else 0.0,
            },
            "search_top100": percentiles_ms(times),
            "search_top100_cpu": percentiles_ms(cpu),
            **(
                {
                    "search_top100_cold_first_pass": percentiles_ms(cold),
                    "search_top100_cold_first_pass_cpu": percentiles_ms(cold_cpu),
                }
                if cold is not None
                else {}
            ),
            f"search_top{ENGINE_K}": percentiles_ms(engine_times),
            f"search_top{ENGINE_K}_cpu": percentiles_ms(engine_cpu),
            f"recall@{RECALL_K}": round(hits / (RECALL_K * len(qvec)), 4),
            f"recall@{RECALL_K}_score_eps": round(near / (RECALL_K * len(qvec)), 4),
            f"recall@{RECALL_K}_of_top{ENGINE_K}_search": round(engine_hits / (RECALL_K * len(qvec)), 4),
            "filtered_search_top100": {k: percentiles_ms(v) for k, v in per_filter.items()},
            "filtered_search_top100_cpu": {k: percentiles_ms(v) for k, v in per_filter_cpu.items()},
            f"filtered_recall@{RECALL_K}": {k: round(float(np.mean(v)), 4) for k, v in filtered_recall.items()},
            "load_average_1m": [load_start, round(os.getloadavg()[0], 2)],
        }
    meta = _meta(path)
    main_mb = _file_mb(path)
    store_mb = sum(_file_mb(f) for f in store_files)
    return {
        "index_kind": meta.get("kind"),
        "refine": meta.get("refine") if ivf else None,
        "nlist": meta.get("nlist"),
        "nprobe": meta.get("nprobe"),
        "build_seconds_from_stored_embeddings": round(build.seconds, 2),
        "save_seconds": round(saving.seconds, 2),
        "build_rss_growth_mb": round(build_rss_mb, 1),
        "files_mb": {"index": round(main_mb, 1), "refine_store": round(store_mb, 1)},
        "index_file_bytes_per_firm": round(main_mb * 1e6 / n, 1),
        "modes": results,
    }


def _meta(path: Path) -> dict:
    from matching.vectors import meta_path, read_meta

    return read_meta(meta_path(path))
