"""The match query end to end inside the engine: query encoding + vector search + lexical channels + fusion + filters.

Measured with two fusion settings: "all_channels" (the dense channel on at the pretrained-model weight, so query
encoding and vector search are part of every query) and "default" (the product's weights with the built-in
embedder: lexical channels only in the ranking). Both weigh the name channel as the product does (the pool rule).
Naive baselines in the same run: a plain TF-IDF scan (sparse product over every document, full sort) and an exact
float32 flat scan of the same vectors.

The pool's embeddings come from the resumable embedding store that `chainmatch bench vector` uses for the same n and
seed (built once, shared); the built engine is saved under the work folder and loaded (not rebuilt) by later runs,
which also measures loading.

With `vector_backend="milvus"` the engine keeps its vectors in Milvus (embedded milvus-lite), the documents carry
province / city / status fields as the product's do, and the province and other-city filters reach the engine as a
`where` FieldFilter (as the web service gives them, webapp/services/match/candidates.py), the roster as excluded
ids; with faiss every filter is an id list. `top10_sha1` (per fusion setting) digests every query's top-10 ids, so
that two runs' rankings can be compared.
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from bench.perf.machine import Stopwatch, machine_facts, percentiles_ms, rss_mb, work_dir
from bench.perf.pool import Pool, field_filter_cases, filter_cases, link_queries, synthetic_pool
from matching.page_cache import available_bytes
from matching.vectors.filters import FieldFilter

SEARCH_K = 100
# Peak memory per firm of a build, measured at 1,000,000 synthetic firms (5.7 GB for the process with the pool's
# texts, docs/performance.md), with a margin: refuse a run that would not fit in the available memory instead of
# pushing the shared machine into swapping or the OOM killer.
ENGINE_BYTES_PER_FIRM_ESTIMATE = 8_000
MEMORY_SHARE = 0.8


def saved_engine(folder: Path, n: int, seed: int = 1, mmap: bool = False):
    """(the synthetic pool, the engine) of an engine a `run` saved under `folder`, the pool regenerated as that run
    made it and the engine weighted as its "all_channels" setting (dense channel at the pool rule's weight);
    `mmap`: the lexical matrices memory-mapped, as the web workers load them."""
    from matching.engine import MatchEngine
    from matching.fusion import pool_weights

    pool = synthetic_pool(n, seed)
    engine = MatchEngine.load(folder, mmap=mmap)
    engine.weights = pool_weights(pool.texts, pretrained=True)
    return pool, engine


def search_filters(
    pool: Pool, count: int, seed: int, by_fields: bool
) -> list[tuple[str, np.ndarray | None, np.ndarray, FieldFilter | None]]:
    """(label, allowed ids or None, excluded ids, where or None) per query: the region and status filters as id
    lists, or (`by_fields`: a vector index storing fields) as a `where` the index applies itself."""
    if by_fields:
        return [(label, None, excluded, where) for label, where, excluded in field_filter_cases(pool, count, seed)]
    return [(label, allowed, excluded, None) for label, allowed, excluded in filter_cases(pool, count, seed)]


def _naive(engine, queries, vectors, qvecs) -> dict:
    """Plain TF-IDF over the engine's word counts (full sparse product, full sort) and an exact float32 scan."""
    from sklearn.feature_extraction.text import TfidfTransformer

    from matching.text import tokenize

    counts = engine.channels["bm25"].counts
    tfidf = TfidfTransformer(sublinear_tf=True)
    matrix = tfidf.fit_transform(counts.astype(np.float32)).tocsr()
    ids = engine.channels["bm25"].vocab.ids
    lex, dense = [], []
    for q, qv in zip(queries, qvecs if qvecs is not None else [None] * len(queries)):
        with Stopwatch() as sw:
            cols = [ids[t] for t in tokenize(q) if t in ids]
            qx = np.zeros(counts.shape[1], np.float32)
            np.add.at(qx, cols, 1.0)
            qx = tfidf.transform(qx.reshape(1, -1)).toarray().ravel()
            scores = matrix @ qx
            np.argsort(-scores, kind="stable")[:SEARCH_K]
        lex.append(sw.seconds)
        if vectors is not None:
            with Stopwatch() as sw:
                s = vectors @ qv
                np.argsort(-s, kind="stable")[:SEARCH_K]
            dense.append(sw.seconds)
    out = {"tfidf_full_scan_top100": percentiles_ms(lex)}
    if dense:
        out["exact_float32_scan_top100"] = percentiles_ms(dense)
        out["tfidf_plus_exact_scan_total_top100"] = percentiles_ms([a + b for a, b in zip(lex, dense)])
    return out


def _engine_bytes(engine, folder: Path) -> dict:
    """Bytes of the engine's own arrays by part, from their sizes (not from the process RSS, which other work moves;
    the documents' Python objects are in the RSS figure, not here). The vector index counts what its saved file
    holds (codes or vectors, loaded into memory); the float32 rows an IVF-PQ index re-scores with are memory-mapped
    from their own file and not counted."""
    from matching.engine.persistence import VECTORS_FILE

    def sparse(m):
        return int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes)

    def arrays(obj) -> int:  # the plain numpy arrays an object holds (memory-mapped ones are in the page cache)
        return sum(
            int(v.nbytes) for v in vars(obj).values() if isinstance(v, np.ndarray) and not isinstance(v, np.memmap)
        )

    channels = engine.channels
    parts = {
        "bm25_word": sparse(channels["bm25"].counts) + sparse(channels["bm25"].columns),
        "bm25_char": sparse(channels["char"].counts) + sparse(channels["char"].columns),
        "bm25_name": sparse(channels["name"].counts) + sparse(channels["name"].columns),
        "tfidf": sparse(channels["tfidf"].rows) + sparse(channels["tfidf"].columns),
        "rows_and_norms": int(engine.row_ids.nbytes) + sum(arrays(c) for c in channels.values()),
    }
    index_file = folder / VECTORS_FILE
    if engine.vector_index is not None and index_file.is_file():
        parts["vector_index"] = index_file.stat().st_size
    return parts


def _store_folder(n: int, seed: int, work: str | None, static_model: str | None = None):
    """Where the pool's embeddings are kept: shared with `chainmatch bench vector` for the built-in embedder (same n,
    seed and --work); per trained model for a static embedder."""
    from pathlib import Path

    base = Path(work) if work else work_dir(None, f"vector-{n}-{seed}")
    return base / (f"embeddings-static-{Path(static_model).name[:12]}" if static_model else "embeddings")


def _engine_folder(base: Path, with_embedder: bool, static_model: str | None, vector_backend: str = "faiss") -> Path:
    """Where the built engine is saved under the work folder."""
    name = (
        f"engine-static-{Path(static_model).name[:12]}"
        if static_model
        else "engine"
        if with_embedder
        else "engine-lexical"
    )
    return base / (name if vector_backend == "faiss" or name == "engine-lexical" else f"{name}-{vector_backend}")


def _built_engine(
    n: int,
    seed: int,
    pool,
    with_embedder: bool,
    exact_max,
    base,
    work,
    progress,
    log,
    static_model: str | None = None,
    vector_backend: str = "faiss",
):
    """(engine, build figures): loaded from the work folder when an earlier run saved it, else built and saved."""
    from matching.engine import MatchEngine
    from matching.fusion import pool_weights
    from matching.vectors import DEFAULT_EXACT_MAX

    folder = _engine_folder(base, with_embedder, static_model, vector_backend)
    marker = folder / "complete.json"
    figures: dict = {}
    if marker.exists():
        log(f"loading the saved engine from {folder}")
        gc.collect()
        before = rss_mb()
        with Stopwatch() as sw:
            engine = MatchEngine.load(folder)
        engine.warm_up_in_background()  # as the web app does after a load; the queries below do not wait for it
        figures.update(
            json.loads(marker.read_text()), load_seconds=round(sw.seconds, 1), engine_rss_mb=round(rss_mb() - before, 1)
        )
        return engine, figures
    embedder = vectors = None
    if static_model:
        embedder, vectors, figures["embedding"] = _static_embeddings(
            pool.texts, static_model, _store_folder(n, seed, work, static_model), progress, log
        )
    elif with_embedder:
        from bench.perf.vector_bench import ensure_embeddings
        from matching import embedding_store

        store = _store_folder(n, seed, work)
        log(f"embedding the pool into {store} (resumable; shared with `bench vector`)")
        result, fit_seconds = ensure_embeddings(pool.texts, store, progress=progress)
        embedder = embedding_store.stored_embedder(store)
        vectors = embedding_store.load_vectors(store)
        figures["embedding"] = {
            "store": str(store),
            "encode_seconds_this_run": result.seconds,
            "fit_seconds": round(fit_seconds, 1),
        }
    # The weights the product gives this pool (matching.fusion): with vectors, a pretrained embedder's.
    weights = pool_weights(pool.texts, pretrained=bool(embedder))
    lexical_marker = base / "engine-lexical" / "complete.json"
    gc.collect()
    before = rss_mb()
    if embedder is not None and lexical_marker.exists() and vector_backend == "faiss":
        # The lexical channels of this pool were built by an earlier --lexical-only run: add the vector index only.
        log("loading the lexical engine of an earlier run and adding the vector index")
        with Stopwatch() as build:
            engine = MatchEngine.load(lexical_marker.parent)
            engine.weights = weights
            engine.attach_embedder(embedder, vectors)
        figures.update(json.loads(lexical_marker.read_text()))
        figures["vector_index_seconds"] = round(build.seconds, 1)
    else:
        engine = MatchEngine(
            embedder=embedder,
            weights=weights,
            exact_max=DEFAULT_EXACT_MAX if exact_max is None else exact_max,
            vector_backend=vector_backend,
        )
        # A backend storing fields is given the documents' province / city / status (the product's vector_fields).
        docs = pool.documents(with_fields=vector_backend != "faiss" and embedder is not None)
        log("building the engine (term counts in worker processes, weights, vector index)")
        with Stopwatch() as build:
            engine.build(docs, progress=progress, vectors=vectors)
        del docs
        figures["build_seconds"] = round(build.seconds, 1)
    del vectors
    gc.collect()
    figures["engine_rss_mb"] = round(rss_mb() - before, 1)
    with Stopwatch() as sw:
        shutil.rmtree(folder, ignore_errors=True)
        engine.save(folder)
    figures["save_seconds"] = round(sw.seconds, 1)
    marker.write_text(json.dumps({k: v for k, v in figures.items() if k != "engine_rss_mb"}))
    return engine, figures


def _static_embeddings(texts: list[str], static_model: str, store: Path, progress, log):
    """(embedder, vectors, figures) of the pool encoded with a trained static embedder into a resumable store."""
    from matching import embedding_store
    from matching.embedders.static import StaticEmbedder

    embedder = StaticEmbedder(Path(static_model))
    log(f"embedding the pool with {embedder.name} into {store} (resumable)")
    with Stopwatch() as sw:
        result = embedding_store.embed_pool(texts, embedder, store, progress=progress)
    figures = {
        "store": str(store),
        "embedder": embedder.name,
        "wall_seconds_this_run": round(sw.seconds, 1),
        "encode_seconds_this_run": result.seconds,
        "texts_per_s": round(result.texts_per_s),
        "chunks": result.chunks,
        "chunks_reused": result.chunks_reused,
        "note": "one process (embedding_store.embed_pool: encode + write chunks), synthetic profiles",
    }
    return embedder, embedding_store.load_vectors(store), figures


def run(
    n: int,
    seed: int = 1,
    queries: int = 200,
    exact_max: int | None = None,
    with_embedder: bool = True,
    progress=None,
    log=lambda m: None,
    force: bool = False,
    folder: str | None = None,
    static_model: str | None = None,
    vector_backend: str = "faiss",
) -> dict:
    from matching.fusion import FusionWeights, pool_weights

    if vector_backend != "faiss" and not (with_embedder or static_model):
        raise ValueError("a vector backend other than faiss needs an embedder (not --lexical-only)")

    need = n * ENGINE_BYTES_PER_FIRM_ESTIMATE
    if not force and need > MEMORY_SHARE * available_bytes():
        return {
            "bench": "match",
            "n": n,
            "skipped": True,
            "reason": (
                f"the engine needs about {need / 1e9:.0f} GB at {ENGINE_BYTES_PER_FIRM_ESTIMATE} bytes per "
                f"firm; {available_bytes() / 1e9:.0f} GB available (use --force to try anyway)"
            ),
            "machine": machine_facts(),
        }
    base = work_dir(folder, f"match-{n}-{seed}")
    log(f"generating {n} synthetic firms")
    pool = synthetic_pool(n, seed)
    qtexts = link_queries(queries, seed)
    filters = search_filters(pool, len(qtexts), seed, by_fields=vector_backend != "faiss")
    engine, build = _built_engine(
        n,
        seed,
        pool,
        with_embedder or bool(static_model),
        exact_max,
        base,
        folder,
        progress,
        log,
        static_model,
        vector_backend,
    )
    for _, _, _, where in filters:
        if where is not None and not engine.filters_fields(where):
            raise RuntimeError(f"the {vector_backend} index of {base} does not store the fields {where.fields()}")
    embedder = engine.embedder

    settings = {"all_channels": pool_weights(pool.texts, pretrained=embedder is not None)}
    if embedder is not None:
        settings["default"] = pool_weights(pool.texts, pretrained=False)
    figures = {}
    for label, weights in settings.items():
        engine.weights = weights
        engine.search(qtexts[0], SEARCH_K)  # warm-up (first query loads jieba state, compiles kernels)
        total, by_filter = [], {}
        digest = hashlib.sha1()
        for q, (flabel, allowed, excluded, where) in zip(qtexts, filters):
            # As the product does: ids resolved in SQL, cached per filter set as sorted int64 arrays; on a backend
            # storing fields, region and status as a `where` the vector index applies itself.
            with Stopwatch() as sw:
                hits = engine.search(q, SEARCH_K, allowed_ids=allowed, excluded_ids=excluded, where=where)
            total.append(sw.seconds)
            by_filter.setdefault(flabel, []).append(sw.seconds)
            assert len(hits) > 0
            digest.update(np.asarray([int(h.id) for h in hits[:10]], np.int64).tobytes())
        figures[label] = {
            "weights": {k: v for k, v in weights.as_dict().items() if k != "extra"},
            "search_top100": percentiles_ms(total),
            "by_filter": {k: percentiles_ms(v) for k, v in by_filter.items()},
            "top10_sha1": digest.hexdigest(),
        }
    engine.weights = settings["all_channels"]

    # Parts of a query, timed apart (no filter): every posting of the lexical channels (the unpruned scan),
    # query encoding, vector search.
    parts: dict[str, list[float]] = {"lexical_channels_full_scan": [], "query_encoding": [], "vector_search": []}
    for q in qtexts:
        with Stopwatch() as sw:
            engine.channel_scores(q, FusionWeights())
        parts["lexical_channels_full_scan"].append(sw.seconds)
        if embedder is not None:
            with Stopwatch() as sw:
                v = embedder.encode_queries([q])
            parts["query_encoding"].append(sw.seconds)
            with Stopwatch() as sw:
                engine.vector_index.search(v, 1000)
            parts["vector_search"].append(sw.seconds)

    vectors = qvecs = None
    if embedder is not None:
        from matching import embedding_store

        vectors = embedding_store.load_vectors(_store_folder(n, seed, folder, static_model))
        qvecs = embedder.encode_queries(qtexts)
    array_bytes = _engine_bytes(
        engine, _engine_folder(base, with_embedder or bool(static_model), static_model, vector_backend)
    )
    log("naive baselines")
    naive = _naive(engine, qtexts, vectors, qvecs)
    if vector_backend != "faiss":
        getattr(
            engine.vector_index, "close", lambda: None
        )()  # stops the embedded milvus-lite engine now rather than at exit
    return {
        "bench": "match",
        "n": n,
        "queries": len(qtexts),
        "k": SEARCH_K,
        "embedder": getattr(embedder, "name", None),
        "vector_backend": vector_backend if embedder is not None else None,
        "vector_kind": getattr(engine.vector_index, "kind", None),
        **build,
        "engine_bytes_per_firm": round(sum(array_bytes.values()) / n) if n else None,
        "engine_array_bytes_per_firm": {k: round(v / n) for k, v in array_bytes.items()} if n else {},
        "engine": figures,
        "parts_no_filter": {k: percentiles_ms(v) for k, v in parts.items() if v},
        "naive": naive,
        "speedup_p50_vs_naive": _ratio(naive, figures),
        "machine": machine_facts(),
    }


def _ratio(naive: dict, figures: dict) -> dict:
    base = naive.get("tfidf_plus_exact_scan_total_top100") or naive["tfidf_full_scan_top100"]
    out = {}
    for label, f in figures.items():
        p50 = f["search_top100"]["p50_ms"]
        out[label] = round(base["p50_ms"] / p50, 2) if p50 else None
    return out
