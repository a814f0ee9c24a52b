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

from matching import embedding_store
from webapp.perf.machine import Stopwatch, machine_facts, work_dir
from webapp.perf.pool import synthetic_pool

ST_HIDDEN, ST_LAYERS, ST_HEADS, ST_FFN = 512, 4, 8, 2048  # bge-small-zh-v1.5's shape
ST_MAX_SEQ = 128


def build_local_bert(folder: Path, texts: list[str], hidden: int = ST_HIDDEN, layers: int = ST_LAYERS,
                     heads: int = ST_HEADS, ffn: int = ST_FFN) -> Path:
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
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=512)
    BertModel(config).save_pretrained(raw)
    model = SentenceTransformer(modules=[Transformer(str(raw), max_seq_length=ST_MAX_SEQ), Pooling(hidden, "mean")],
                                device="cpu")
    out = folder / "st-model"
    model.save(str(out))
    return out


def _onnx_encoder(path: Path, tokenizer, threads: int):
    """encode(texts) with onnxruntime: the exported BERT, then mean pooling and L2 normalisation (as the model)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}

    def encode(texts: list[str], batch: int = 64) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch):
            enc = tokenizer(texts[start:start + batch], padding=True, truncation=True, max_length=ST_MAX_SEQ,
                            return_tensors="np")
            feeds = {k: v.astype(np.int64) for k, v in enc.items() if k in wanted}
            hidden = session.run(None, feeds)[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
            out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        return np.vstack(out).astype(np.float32)

    return encode


def _rate(encode, texts: list[str]) -> tuple[float, np.ndarray]:
    encode(texts[:64])  # warm-up
    start = time.perf_counter()
    vectors = encode(texts)
    return len(texts) / (time.perf_counter() - start), vectors


def st_backends(texts: list[str], folder: Path, log=lambda m: None,
                shape: tuple[int, int, int, int] = (ST_HIDDEN, ST_LAYERS, ST_HEADS, ST_FFN)) -> dict:
    """Texts per second of torch, ONNX Runtime (fp32) and ONNX Runtime int8 (dynamic quantisation), same texts.

    The ONNX model is exported with torch.onnx and run with onnxruntime directly: sentence-transformers' own
    `backend="onnx"` needs optimum-onnx, which pins transformers < 4.58 (this project uses transformers 5).
    """
    import os

    import torch

    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    threads = torch.get_num_threads()
    model_dir = build_local_bert(folder, texts, *shape)
    out: dict = {"model": f"random-init BERT built locally: hidden {shape[0]}, {shape[1]} layers, {shape[2]} heads"
                          + (" (bge-small-zh shape)" if shape == (ST_HIDDEN, ST_LAYERS, ST_HEADS, ST_FFN) else ""),
                 "texts": len(texts), "max_seq_length": ST_MAX_SEQ, "threads": threads}
    model = SentenceTransformer(str(model_dir), device="cpu")
    rate, ref = _rate(lambda t: model.encode(t, batch_size=64, normalize_embeddings=True, convert_to_numpy=True),
                      texts)
    out["torch_texts_per_s"] = round(rate, 1)
    try:
        import onnxruntime  # noqa: F401
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        out["onnx"] = f"unavailable: {exc} (pip install onnxruntime onnx)"
        return out
    log("exporting ONNX")
    bert = model[0].auto_model.eval()
    tokenizer = model.tokenizer
    sample = tokenizer(texts[:2], padding=True, truncation=True, max_length=ST_MAX_SEQ, return_tensors="pt")
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
    fp32 = folder / "model.onnx"
    axes = {k: {0: "batch", 1: "seq"} for k in names}
    axes["last_hidden_state"] = {0: "batch", 1: "seq"}
    class _Wrapped(torch.nn.Module):  # keyword call: BertModel.forward's positional order changed in transformers 5
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(names, args))).last_hidden_state

    with torch.no_grad():
        torch.onnx.export(_Wrapped(bert), tuple(sample[k] for k in names), str(fp32), input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
    int8 = folder / "model_int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    for label, path in (("onnx_fp32", fp32), ("onnx_int8", int8)):
        rate, vec = _rate(_onnx_encoder(path, tokenizer, threads), texts)
        out[f"{label}_texts_per_s"] = round(rate, 1)
        out[f"{label}_mean_cosine_to_torch"] = round(float(np.mean(np.sum(vec * ref, axis=1))), 4)
        out[f"speedup_{label}_vs_torch"] = round(rate / out["torch_texts_per_s"], 2)
        out[f"{label}_file_mb"] = round(path.stat().st_size / 1e6, 1)
    return out


def run(n: int, seed: int = 1, chunk: int | None = None, folder: str | None = None, st_texts: int = 2000,
        backends: bool = True, progress=None, log=lambda m: None) -> dict:
    from webapp.perf.vector_bench import fitted_builtin

    base = work_dir(folder, f"embed-{n}-{seed}")
    store = base / "embeddings"
    shutil.rmtree(store, ignore_errors=True)  # measure a cold run, stopped halfway and resumed
    pool = synthetic_pool(n, seed)
    chunk = chunk or max(1000, n // 10)
    total_chunks = -(-n // chunk)
    with Stopwatch() as fit:
        embedder = fitted_builtin(pool.texts)
    first = embedding_store.embed_pool(pool.texts, embedder, store, chunk, progress, stop_after_chunks=total_chunks // 2)
    second = embedding_store.embed_pool(pool.texts, embedder, store, chunk, progress)
    vectors = embedding_store.load_vectors(store)
    out = {
        "bench": "embed", "n": n, "embedder": embedder.name, "dim": int(vectors.shape[1]),
        "fit_seconds_on_sample": round(fit.seconds, 1),
        "builtin_texts_per_s": round(n / (first.seconds + second.seconds), 1),
        "resume": {"chunk_size": chunk, "chunks": total_chunks, "first_run_chunks": first.chunks,
                   "second_run_reused": second.chunks_reused, "second_run_encoded": second.chunks - second.chunks_reused,
                   "complete": embedding_store.is_complete(store)},
        "store_mb": round(sum(p.stat().st_size for p in store.glob("chunk-*.npy")) / 1e6, 1),
    }
    if backends:
        log("sentence-transformers backends")
        out["sentence_transformers"] = st_backends(pool.texts[:st_texts], base / "st", log)
    out["machine"] = machine_facts()
    return out
