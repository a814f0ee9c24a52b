"""`chainmatch bench vector|web` and the embedding backends: smoke tests at a tiny size (not timed)."""

from __future__ import annotations

import pytest

from bench.perf.pool import synthetic_pool
from tests.worlds.bench import MACHINE_KEYS, run_bench


def test_bench_vector_ivfpq_reports_recall_memory_and_build_time(tmp_path):
    data = run_bench(
        [
            "vector",
            "--n",
            "2000",
            "--queries",
            "5",
            "--kind",
            "ivfpq",
            "--refine",
            "fp32",
            "--refine",
            "sq8",
            "--work",
            str(tmp_path),
            "--json",
        ]
    )
    assert data["index_kind"] == "ivfpq" and data["n"] == 2000
    assert set(data["refines"]) == {"fp32", "sq8"}
    for build in data["refines"].values():
        assert set(build["modes"]) == {"in_ram", "mmap_refine"}
        for mode in build["modes"].values():
            assert 0.0 <= mode["recall@10"] <= mode["recall@10_score_eps"] <= 1.0
            assert mode["search_top100"]["samples"] == 5 and "province" in mode["filtered_recall@10"]
            assert mode["search_top1000"]["samples"] == 5 and mode["search_top100_cpu"]["samples"] == 5
            assert mode["fresh_process"]["resident_bytes_per_firm"] >= 0
        assert build["modes"]["mmap_refine"]["search_top100_cold_first_pass"]["samples"] == 5
        assert build["build_seconds_from_stored_embeddings"] >= 0 and build["files_mb"]["refine_store"] > 0
    # float32 refine rows take four times the bytes of SQ8 copies (plus the ids)
    assert data["refines"]["fp32"]["files_mb"]["refine_store"] > 3 * data["refines"]["sq8"]["files_mb"]["refine_store"]
    modes = {refine: build["modes"]["mmap_refine"] for refine, build in data["refines"].items()}
    assert modes["fp32"]["recall@10"] >= modes["sq8"]["recall@10"]  # same PQ candidates, exact re-scoring
    assert MACHINE_KEYS <= set(data["machine"])


def test_sentence_transformer_backends_compare_torch_and_onnx(tmp_path):
    from bench.perf.embed_bench import st_backends  # onnxruntime is a main dependency: never skipped

    out = st_backends(synthetic_pool(40, seed=2).texts, tmp_path, shape=(32, 1, 2, 64))
    assert out["torch_texts_per_s"] > 0 and out["onnx_int8_texts_per_s"] > 0
    assert out["onnx_fp32_mean_cosine_to_torch"] > 0.99  # the exported model computes the same embeddings


@pytest.mark.slow
def test_bench_web_serves_both_pages_to_concurrent_clients(tmp_path, monkeypatch):
    # The server processes inherit the environment: the built-in embedder spares them converting and running the
    # bundled transformer on the demo firms, which the harness does not depend on (a minute of the suite's time).
    monkeypatch.setenv("CHAINMATCH_EMBEDDING_MODEL", "builtin")
    data = run_bench(["web", "--n", "0", "--clients", "2", "--seconds", "1", "--work", str(tmp_path), "--json"])
    for page in ("chain_map", "candidates_fragment"):
        assert data["pages"][page]["samples"] > 0 and data["pages"][page]["errors"] == 0
    assert MACHINE_KEYS <= set(data["machine"])
