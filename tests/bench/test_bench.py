"""`chainmatch bench …` smoke tests: each benchmark runs at a tiny size and prints its JSON figures (not timed)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.perf.pool import synthetic_pool
from matching import embedding_store
from matching.embedders import BuiltinEmbedder
from tests.worlds.bench import MACHINE_KEYS, run_bench


def test_bench_match_prints_latency_and_naive_baseline(tmp_path):
    data = run_bench(["match", "--n", "300", "--queries", "4", "--work", str(tmp_path), "--json"])
    assert data["bench"] == "match" and data["n"] == 300
    for label in ("all_channels", "default"):
        figures = data["engine"][label]["search_top100"]
        assert figures["samples"] == 4 and figures["p50_ms"] > 0 and figures["p95_ms"] >= figures["p50_ms"]
        assert set(data["engine"][label]["by_filter"]) == {"none", "province", "other_city_active", "roster_excluded"}
    assert {"tfidf_full_scan_top100", "exact_float32_scan_top100"} <= set(data["naive"])
    assert data["engine_bytes_per_firm"] > 0 and MACHINE_KEYS <= set(data["machine"])
    # From the engine's own arrays, not an RSS delta (which other work on the machine can make negative).
    parts = data["engine_array_bytes_per_firm"]
    assert min(parts.values()) >= 0 and abs(data["engine_bytes_per_firm"] - sum(parts.values())) <= len(parts)
    assert data["build_seconds"] > 0 and "load_seconds" not in data
    # A second run loads the engine the first one saved (nothing is tokenised again) and measures the same way.
    again = run_bench(["match", "--n", "300", "--queries", "4", "--work", str(tmp_path), "--json"])
    assert again["load_seconds"] >= 0 and again["build_seconds"] == data["build_seconds"]
    assert again["engine"]["default"]["search_top100"]["samples"] == 4


def test_bench_match_on_milvus_ranks_as_on_faiss(tmp_path, monkeypatch):
    from matching.engine import channels, dense

    # Search as pools above the statistics sample do (MaxScore, the dense channel's candidate search limited to a few
    # hits), so that Milvus's own filtered search takes part.
    monkeypatch.setattr(channels, "STATS_SAMPLE", 50)
    monkeypatch.setattr(dense, "DENSE_CANDIDATES", 8)
    args = ["match", "--n", "300", "--queries", "4", "--json"]
    faiss = run_bench([*args, "--work", str(tmp_path / "faiss")])
    milvus = run_bench([*args, "--work", str(tmp_path / "milvus"), "--vector-backend", "milvus"])
    assert faiss["vector_backend"] == "faiss" and milvus["vector_backend"] == "milvus"
    assert milvus["build_seconds"] > 0 and MACHINE_KEYS <= set(milvus["machine"])
    for label in ("all_channels", "default"):
        by_filter = milvus["engine"][label]["by_filter"]
        assert set(by_filter) == {"none", "province", "other_city_active", "roster_excluded"}
        assert all(f["samples"] == 1 and f["p95_ms"] >= f["p50_ms"] > 0 for f in by_filter.values())
        # Region and status as a field filter inside Milvus give the top hits the id lists give on faiss.
        assert milvus["engine"][label]["top10_sha1"] == faiss["engine"][label]["top10_sha1"], label


def test_bench_import_prints_rows_per_second():
    data = run_bench(["import", "--n", "200", "--json"])
    (sqlite,) = data["results"]
    assert sqlite["backend"] == "sqlite" and sqlite["counts"]["inserted"] == 200
    assert sqlite["reimport_counts"]["unchanged"] == 200 and sqlite["rows_per_s"] > 0


def test_bench_embed_resumes_a_stopped_run(tmp_path):
    data = run_bench(["embed", "--n", "400", "--chunk", "100", "--st-texts", "0", "--work", str(tmp_path), "--json"])
    resume = data["resume"]
    assert resume["chunks"] == 4 and resume["first_run_chunks"] == 2
    assert resume["second_run_reused"] == 2 and resume["second_run_encoded"] == 2 and resume["complete"]
    assert data["builtin_texts_per_s"] > 0 and MACHINE_KEYS <= set(data["machine"])


def test_bench_embed_backends_measure_the_product_embedder(tmp_path):
    from bench.perf.embed_bench import st_backends

    texts = synthetic_pool(80, seed=2).texts
    data = st_backends(texts, tmp_path / "st", shape=(32, 2, 2, 64))  # tiny BERT: a smoke test, not a timing
    assert "SentenceTransformerEmbedder" in data["path"] and data["texts"] == 80
    for label in ("onnx_fp32", "onnx_int8"):
        assert data[f"{label}_texts_per_s"] > 0 and data[f"speedup_{label}_vs_torch"] > 0
        assert data[f"{label}_cached_start_seconds"] >= 0
    assert data["onnx_fp32_min_cosine_to_torch"] >= 0.999 and data["onnx_int8_min_cosine_to_torch"] >= 0.99
    assert data["onnx_int8_min_cosine_alone_vs_batched"] >= 0.99
    assert data["exports"] == 2  # fp32 once, int8 once; the second construction of each reused the cache


def test_embedding_store_resume_gives_the_same_vectors_as_one_run(tmp_path):
    texts = synthetic_pool(300, seed=3).texts
    embedder = BuiltinEmbedder(dim=32)
    embedder.fit(texts)
    embedding_store.embed_pool(texts, embedder, tmp_path / "a", chunk_size=50, stop_after_chunks=2)
    assert not embedding_store.is_complete(tmp_path / "a")
    with pytest.raises(ValueError):
        embedding_store.load_vectors(tmp_path / "a")
    resumed = embedding_store.embed_pool(texts, embedder, tmp_path / "a", chunk_size=50)
    assert resumed.chunks_reused == 2 and resumed.chunks == 6
    embedding_store.embed_pool(texts, embedder, tmp_path / "b", chunk_size=50)
    np.testing.assert_array_equal(
        embedding_store.load_vectors(tmp_path / "a"), embedding_store.load_vectors(tmp_path / "b")
    )
    # Another pool in the same folder starts over instead of mixing vectors.
    other = embedding_store.embed_pool(texts[:120], embedder, tmp_path / "a", chunk_size=50)
    assert other.chunks_reused == 0 and embedding_store.load_vectors(tmp_path / "a").shape == (120, embedder.dim)
