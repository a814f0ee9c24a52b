"""The content-addressed embedding cache: texts are encoded once, a stopped run resumes with what is missing."""

from __future__ import annotations

import numpy as np
import pytest

from matching.embedders.vector_cache import EncodingStopped, VectorCache, text_keys


class CountingEncoder:
    """A deterministic encoder (a text's vector comes from its content) that counts what it encodes."""

    dim = 8

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            out[i] = np.random.default_rng(int(text_keys([t])[0]) % (2**32)).normal(size=self.dim)
        return out


TEXTS = [f"企业{i}：锂电池正极材料研发生产" for i in range(300)]


def test_vectors_come_back_in_input_order_and_duplicates_are_encoded_once(tmp_path):
    encoder = CountingEncoder()
    cache = VectorCache(tmp_path, "enc", 8)
    texts = TEXTS[:50] + TEXTS[:10]
    result = cache.embed(texts, encoder)
    assert np.array_equal(result.vectors, encoder(texts))
    assert len(encoder.seen) == 50 + 60 and result.encoded == 50  # (the second call above re-encoded for the check)


def test_a_second_run_reuses_every_cached_text_and_encodes_only_new_ones(tmp_path):
    first, second = CountingEncoder(), CountingEncoder()
    VectorCache(tmp_path, "enc", 8).embed(TEXTS[:100], first)
    result = VectorCache(tmp_path, "enc", 8).embed(TEXTS[:120], second)  # another process, same folder
    assert second.seen == TEXTS[100:120]
    assert (result.encoded, result.reused) == (20, 100)
    assert np.array_equal(result.vectors, CountingEncoder()(TEXTS[:120]))


def test_a_stopped_run_keeps_its_finished_chunks_and_resumes_after_them(tmp_path):
    calls = {"n": 0}

    def stop_after_three_batches() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    encoder = CountingEncoder()
    with pytest.raises(EncodingStopped):
        VectorCache(tmp_path, "enc", 8).embed(TEXTS, encoder, should_stop=stop_after_three_batches, chunk_texts=64)
    assert len(encoder.seen) == 3 * 64  # three batches encoded; the chunks of the first three were stored
    resumed = CountingEncoder()
    progress: list[tuple[int, int]] = []
    result = VectorCache(tmp_path, "enc", 8).embed(
        TEXTS, resumed, progress=lambda d, t: progress.append((d, t)), chunk_texts=64
    )
    assert len(resumed.seen) == len(TEXTS) - 3 * 64 and not set(resumed.seen) & set(encoder.seen)
    assert progress[0] == (3 * 64, len(TEXTS)) and progress[-1] == (len(TEXTS), len(TEXTS))
    assert np.array_equal(result.vectors, CountingEncoder()(TEXTS))


def test_compaction_merges_chunks_and_drops_texts_no_longer_kept(tmp_path):
    cache = VectorCache(tmp_path, "enc", 8)
    cache.embed(TEXTS, CountingEncoder(), chunk_texts=50)
    assert cache.chunk_count() == 6
    kept = cache.compact(keep=text_keys(TEXTS[:40]))
    assert kept == 40 and cache.chunk_count() == 1 and len(list(tmp_path.glob("chunk-*"))) == 2
    vectors, found = cache.lookup(text_keys(TEXTS[:50]))
    assert found[:40].all() and not found[40:].any()
    assert np.array_equal(vectors[:40], CountingEncoder()(TEXTS[:40]))


def test_a_cache_folder_of_another_embedder_is_refused(tmp_path):
    VectorCache(tmp_path, "model-a", 8)
    with pytest.raises(ValueError, match="model-a"):
        VectorCache(tmp_path, "model-b", 8)
    with pytest.raises(ValueError):
        VectorCache(tmp_path, "model-a", 16)
