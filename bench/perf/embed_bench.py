"""Embedding the pool: throughput, resumability, and the sentence-transformers backends (torch vs ONNX vs ONNX int8).

The built-in embedder is measured on the synthetic pool through the resumable store (a run is stopped halfway, as a
crash would stop it, and resumed). No pretrained model is available offline here, so the backend comparison uses a
randomly initialised BERT built locally with the architecture of a small Chinese embedding model (hidden 512,
4 layers, 8 heads, like bge-small-zh): speed depends on the architecture, not on the weights; the figures say so.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from bench.perf.machine import Stopwatch, machine_facts, work_dir
from bench.perf.pool import synthetic_pool
from matching import embedding_store

ST_HIDDEN, ST_LAYERS, ST_HEADS, ST_FFN = 512, 4, 8, 2048  # bge-small-zh-v1.5's shape
ST_MAX_SEQ = 128


def build_local_bert(
    folder: Path,
    texts: list[str],
    hidden: int = ST_HIDDEN,
    layers: int = ST_LAYERS,
    heads: int = ST_HEADS,
    ffn: int = ST_FFN,
) -> Path:
    """A randomly initialised sentence-transformers BERT with a character vocabulary of `texts` (no download)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    raw = folder / "raw-bert"
    raw.mkdir(parents=True, exist_ok=True)
    chars = sorted({c for t in texts for c in t.lower() if not c.isspace()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    BertTokenizer(vocab={tok: i for i, tok in enumerate(vocab)}).save_pretrained(raw)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(raw)
    model = SentenceTransformer(
        modules=[Transformer(str(raw), max_seq_length=ST_MAX_SEQ), Pooling(hidden, "mean")], device="cpu"
    )
    out = folder / "st-model"
    model.save(str(out))
    return out


ROUNDS = 4  # the texts are encoded in this many slices, each slice by every backend in turn


def _interleaved(encoders: dict, texts: list[str], rounds: int = ROUNDS) -> dict:
    """Wall and CPU seconds plus vectors per backend, each slice of `texts` run by every backend in turn.

    Interleaving spreads a shared machine's changing load evenly over the backends compared; CPU seconds (all
    threads of this process) are less sensitive to other processes than wall time.
    """
    for encode in encoders.values():
        encode(texts[:64])  # warm-up
    wall = dict.fromkeys(encoders, 0.0)
    cpu = dict.fromkeys(encoders, 0.0)
    parts: dict[str, list] = {name: [] for name in encoders}
    step = -(-len(texts) // rounds)
    for start in range(0, len(texts), step):
        chunk = texts[start : start + step]
        for name, encode in encoders.items():
            began, began_cpu = time.perf_counter(), time.process_time()
            parts[name].append(encode(chunk))
            wall[name] += time.perf_counter() - began
            cpu[name] += time.process_time() - began_cpu
    return {name: (wall[name], cpu[name], np.vstack(parts[name])) for name in encoders}


def st_backends(
    texts: list[str],
    folder: Path,
    log=lambda m: None,
    shape: tuple[int, int, int, int] = (ST_HIDDEN, ST_LAYERS, ST_HEADS, ST_FFN),
) -> dict:
    """Texts per second of the product's `SentenceTransformerEmbedder` with each backend, on the same texts.

    torch runs the model with sentence-transformers; "onnx" and "onnx-int8" run the transformer exported by
    `matching.embedders.onnx_export` (torch.onnx, int8 dynamic quantisation) with onnxruntime. The export cache starts empty,
    so the first construction of each ONNX backend includes its export; a second construction shows the reuse.
    """
    import os

    import torch

    os.environ["HF_HUB_OFFLINE"] = "1"
    from matching.embedders import SentenceTransformerEmbedder, onnx_export, onnx_runtime

    threads = torch.get_num_threads()
    model_dir = build_local_bert(folder, texts, *shape)
    out: dict = {
        "model": f"random-init BERT built locally: hidden {shape[0]}, {shape[1]} layers, {shape[2]} heads"
        + (" (bge-small-zh shape)" if shape == (ST_HIDDEN, ST_LAYERS, ST_HEADS, ST_FFN) else ""),
        "path": "matching.embedders.SentenceTransformerEmbedder(model, backend=…).encode(texts)",
        "texts": len(texts),
        "max_seq_length": ST_MAX_SEQ,
        "threads": threads,
        "method": f"texts in {ROUNDS} slices, each encoded by every backend in turn (interleaved)",
    }
    with Stopwatch() as start:
        embedders = {"torch": SentenceTransformerEmbedder(str(model_dir), backend="torch")}
    out["torch_start_seconds"] = round(start.seconds, 2)
    missing = onnx_runtime.runtime_missing()
    labels = {"torch": "torch", "onnx": "onnx_fp32", "onnx-int8": "onnx_int8"}
    if missing:
        out["onnx"] = f"unavailable: {missing} (pip install onnxruntime onnx)"
    else:
        cache = folder / "onnx-cache"
        shutil.rmtree(cache, ignore_errors=True)  # measure the first export, then its reuse
        exports_before = onnx_export.exports
        for backend in ("onnx", "onnx-int8"):
            log(f"{backend}: export")
            with Stopwatch() as first:
                SentenceTransformerEmbedder(str(model_dir), backend=backend, threads=threads, cache_dir=cache)
            with Stopwatch() as again:
                embedders[backend] = SentenceTransformerEmbedder(
                    str(model_dir), backend=backend, threads=threads, cache_dir=cache
                )
            label = labels[backend]
            out[f"{label}_first_start_seconds"] = round(first.seconds, 2)  # export (int8: quantisation) + check
            out[f"{label}_cached_start_seconds"] = round(again.seconds, 2)
            out[f"{label}_file_mb"] = round(embedders[backend]._onnx.path.stat().st_size / 1e6, 1)
        out["exports"] = onnx_export.exports - exports_before
    log("encoding, backends interleaved")
    timed = _interleaved({name: embedder.encode for name, embedder in embedders.items()}, texts)
    torch_wall, torch_cpu, reference = timed["torch"]
    out["torch_texts_per_s"] = round(len(texts) / torch_wall, 1)
    out["torch_texts_per_cpu_s"] = round(len(texts) / torch_cpu, 1)
    for backend, (wall, cpu, vectors) in timed.items():
        if backend == "torch":
            continue
        label = labels[backend]
        cosines = np.sum(vectors * reference, axis=1)
        out[f"{label}_texts_per_s"] = round(len(texts) / wall, 1)
        out[f"{label}_texts_per_cpu_s"] = round(len(texts) / cpu, 1)
        out[f"speedup_{label}_vs_torch"] = round(torch_wall / wall, 2)
        out[f"speedup_{label}_vs_torch_cpu"] = round(torch_cpu / cpu, 2)
        out[f"{label}_mean_cosine_to_torch"] = round(float(cosines.mean()), 5)
        out[f"{label}_min_cosine_to_torch"] = round(float(cosines.min()), 5)
    if "onnx-int8" in embedders:  # dynamic quantisation scales activations per batch: one text alone vs batched
        alone = np.vstack([embedders["onnx-int8"].encode([t]) for t in texts[:100]])
        out["onnx_int8_min_cosine_alone_vs_batched"] = round(
            float(np.sum(alone * timed["onnx-int8"][2][:100], axis=1).min()), 5
        )
    return out


def run(
    n: int,
    seed: int = 1,
    chunk: int | None = None,
    folder: str | None = None,
    st_texts: int = 2000,
    backends: bool = True,
    progress=None,
    log=lambda m: None,
) -> dict:
    from bench.perf.vector_bench import fitted_builtin

    base = work_dir(folder, f"embed-{n}-{seed}")
    store = base / "embeddings"
    shutil.rmtree(store, ignore_errors=True)  # measure a cold run, stopped halfway and resumed
    pool = synthetic_pool(n, seed)
    chunk = chunk or max(1000, n // 10)
    total_chunks = -(-n // chunk)
    with Stopwatch() as fit:
        embedder = fitted_builtin(pool.texts)
    first = embedding_store.embed_pool(
        pool.texts, embedder, store, chunk, progress, stop_after_chunks=total_chunks // 2
    )
    second = embedding_store.embed_pool(pool.texts, embedder, store, chunk, progress)
    vectors = embedding_store.load_vectors(store)
    out = {
        "bench": "embed",
        "n": n,
        "embedder": embedder.name,
        "dim": int(vectors.shape[1]),
        "fit_seconds_on_sample": round(fit.seconds, 1),
        "builtin_texts_per_s": round(n / (first.seconds + second.seconds), 1),
        "resume": {
            "chunk_size": chunk,
            "chunks": total_chunks,
            "first_run_chunks": first.chunks,
            "second_run_reused": second.chunks_reused,
            "second_run_encoded": second.chunks - second.chunks_reused,
            "complete": embedding_store.is_complete(store),
        },
        "store_mb": round(sum(p.stat().st_size for p in store.glob("chunk-*.npy")) / 1e6, 1),
    }
    if backends:
        log("sentence-transformers backends")
        out["sentence_transformers"] = st_backends(pool.texts[:st_texts], base / "st", log)
    out["machine"] = machine_facts()
    return out
