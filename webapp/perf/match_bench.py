"""The match query end to end inside the engine: query encoding + vector search + lexical channels + fusion + filters.

Measured with two fusion settings: "all_channels" (the dense channel on at the pretrained-model weight, so query
encoding and vector search are part of every query) and "default" (the product's weights with the built-in
embedder: lexical channels only in the ranking). Naive baselines in the same run: a plain TF-IDF scan (sparse
product over every document, full sort) and an exact float32 flat scan of the same vectors.
"""
from __future__ import annotations

import gc

import numpy as np

from webapp.perf.machine import Stopwatch, machine_facts, percentiles_ms, rss_mb
from webapp.perf.pool import filter_cases, link_queries, synthetic_pool

SEARCH_K = 100
# Engine memory per firm measured at 100,000 synthetic firms (see docs/performance.md); used to refuse a run that
# would not fit in the available memory instead of pushing the shared machine into swapping or the OOM killer.
ENGINE_BYTES_PER_FIRM_ESTIMATE = 40_000
MEMORY_SHARE = 0.8


def _available_bytes() -> int:
    from pathlib import Path

    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _naive(engine, pool_texts_tokens, queries, vectors, qvecs) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from matching.text import tokenize

    vec = TfidfVectorizer(analyzer=lambda toks: toks, sublinear_tf=True, dtype=np.float32)
    matrix = vec.fit_transform(pool_texts_tokens).tocsr()
    lex, dense = [], []
    for q, qv in zip(queries, qvecs):
        with Stopwatch() as sw:
            qx = vec.transform([tokenize(q)])
            scores = np.asarray((matrix @ qx.T).todense()).ravel()
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


def run(n: int, seed: int = 1, queries: int = 200, exact_max: int | None = None, with_embedder: bool = True,
        progress=None, log=lambda m: None, force: bool = False) -> dict:
    from matching.engine import MatchEngine
    from matching.fusion import PRETRAINED_DENSE_WEIGHT, FusionWeights
    from matching.vector_index import DEFAULT_EXACT_MAX

    need = n * ENGINE_BYTES_PER_FIRM_ESTIMATE
    if not force and need > MEMORY_SHARE * _available_bytes():
        return {"bench": "match", "n": n, "skipped": True,
                "reason": (f"the engine needs about {need / 1e9:.0f} GB at {ENGINE_BYTES_PER_FIRM_ESTIMATE} bytes per "
                           f"firm; {_available_bytes() / 1e9:.0f} GB available (use --force to try anyway)"),
                "machine": machine_facts()}
    log(f"generating {n} synthetic firms")
    pool = synthetic_pool(n, seed)
    docs = pool.documents()
    qtexts = link_queries(queries, seed)
    filters = filter_cases(pool, len(qtexts), seed)
    embedder = None
    if with_embedder:
        from matching.builtin_embedder import BuiltinEmbedder

        embedder = BuiltinEmbedder()
    engine = MatchEngine(embedder=embedder, weights=FusionWeights(dense=PRETRAINED_DENSE_WEIGHT if embedder else 0.0),
                         exact_max=DEFAULT_EXACT_MAX if exact_max is None else exact_max)
    gc.collect()
    before = rss_mb()
    log("building the engine")
    with Stopwatch() as build:
        engine.build(docs, progress=progress)
    del docs
    gc.collect()
    engine_mb = rss_mb() - before

    settings = {"all_channels": engine.weights}
    if embedder is not None:
        settings["default"] = FusionWeights()
    figures = {}
    for label, weights in settings.items():
        engine.weights = weights
        engine.search(qtexts[0], SEARCH_K)  # warm-up (first query loads jieba state, allocates)
        total, by_filter = [], {}
        for q, (flabel, allowed, excluded) in zip(qtexts, filters):
            # The product hands the engine plain lists of ids (resolved in SQL, cached per filter set).
            allowed = None if allowed is None else allowed.tolist()
            excluded = excluded.tolist()
            with Stopwatch() as sw:
                hits = engine.search(q, SEARCH_K, allowed_ids=allowed, excluded_ids=excluded)
            total.append(sw.seconds)
            by_filter.setdefault(flabel, []).append(sw.seconds)
            assert len(hits) > 0
        figures[label] = {"weights": {k: v for k, v in weights.as_dict().items() if k != "extra"},
                          "search_top100": percentiles_ms(total),
                          "by_filter": {k: percentiles_ms(v) for k, v in by_filter.items()}}
    engine.weights = settings["all_channels"]

    # Parts of a query, timed apart (no filter): lexical channel scores, query encoding, vector search.
    parts: dict[str, list[float]] = {"lexical_channels": [], "query_encoding": [], "vector_search": []}
    for q in qtexts:
        with Stopwatch() as sw:
            engine.channel_scores(q, FusionWeights())
        parts["lexical_channels"].append(sw.seconds)
        if embedder is not None:
            with Stopwatch() as sw:
                v = embedder.encode([q])
            parts["query_encoding"].append(sw.seconds)
            with Stopwatch() as sw:
                engine._vindex.search(v, 1000)
            parts["vector_search"].append(sw.seconds)

    vectors = qvecs = None
    if embedder is not None:
        vectors = engine._vindex._main.index.reconstruct_n(0, n) if engine._vindex.kind == "flat" else None
        if vectors is None:
            vectors = engine._vindex._store.index.reconstruct_n(0, n)
        qvecs = embedder.encode(qtexts)
    log("naive baselines")
    naive = _naive(engine, [engine._tokens[i].words for i in range(n)], qtexts, vectors, qvecs)
    return {
        "bench": "match", "n": n, "queries": len(qtexts), "k": SEARCH_K,
        "embedder": getattr(embedder, "name", None), "vector_kind": getattr(engine._vindex, "kind", None),
        "build_seconds": round(build.seconds, 1), "engine_rss_mb": round(engine_mb, 1),
        "engine_bytes_per_firm": round(engine_mb * 1e6 / n),
        "engine": figures, "parts_no_filter": {k: percentiles_ms(v) for k, v in parts.items() if v},
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
