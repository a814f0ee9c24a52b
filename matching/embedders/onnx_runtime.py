"""ONNX Runtime backend for local sentence-transformers models: choose the backend, read the model's pipeline, encode
without torch.

sentence-transformers' own `backend="onnx"` needs optimum-onnx, which pins transformers < 4.58 (this project uses
transformers 5), so the model's transformer is exported with `torch.onnx` (matching.embedders.onnx_export) and run
with `onnxruntime` directly; tokenisation uses the model's own tokenizer (transformers `AutoTokenizer` from the local
folder) and pooling follows the model's `Pooling` (and `Normalize`) modules. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from matching.embedders.base import AUTO, BACKENDS, ONNX_INT8, TORCH
from matching.embedders.local_models import model_folder

ONNX_MAX_BATCH = 64  # texts per onnxruntime call: larger batches only grow the padded attention tensors
SUPPORTED_POOLING = ("mean", "cls", "max", "mean_sqrt_len_tokens")
_LEGACY_POOLING = {  # sentence-transformers < 5 pooling config keys
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# Minimum cosine to the torch embeddings on the probe texts, checked right after the export.


class OnnxUnsupported(RuntimeError):
    """The model's sentence-transformers pipeline is not one this backend reproduces (torch is used instead)."""


def check_backend(value: str | None) -> str:
    """The backend name for a config value ('' means auto); unknown names raise ValueError."""
    backend = (value or AUTO).strip().lower()
    if backend not in BACKENDS:
        raise ValueError(
            f"未知的嵌入后端 {value!r}，可选 {', '.join(BACKENDS)} "
            f"(unknown embedding backend {value!r}; choose one of {', '.join(BACKENDS)})"
        )
    return backend


def runtime_missing() -> str | None:
    """Why ONNX Runtime cannot be used here (onnxruntime or onnx not importable), or None."""
    try:
        import onnx  # noqa: F401  (needed to quantise an export)
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def default_threads() -> int:
    """One thread per CPU available to this process (torch's default too)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def default_cache_dir() -> Path:
    """Where exports go when the caller names no folder (the web app uses `<MODEL_DIR>/onnx-cache`)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chainmatch" / "onnx"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OnnxUnsupported(f"cannot read {path.name}: {exc}") from exc


def read_pipeline(folder: Path) -> dict[str, Any]:
    """The model's module layout from its files: Transformer, Pooling (modes), optional Normalize.

    Anything else (Dense layers, prompts applied by default, weighted-mean / last-token pooling …) raises
    OnnxUnsupported: the torch backend handles those.
    """
    folder = Path(folder)
    modules = _read_json(folder / "modules.json")
    if not isinstance(modules, list) or not modules:
        raise OnnxUnsupported("modules.json lists no modules")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise OnnxUnsupported(f"module pipeline {kinds} is not Transformer → Pooling (→ Normalize)")
    pooling = _read_json(folder / modules[1].get("path", "") / "config.json")
    modes = pooling.get("pooling_mode")
    if modes is None:
        modes = [mode for key, mode in _LEGACY_POOLING.items() if pooling.get(key)]
    modes = [modes] if isinstance(modes, str) else list(modes or [])
    if not modes or any(m not in SUPPORTED_POOLING for m in modes):
        raise OnnxUnsupported(f"pooling {modes} not supported (supported: {', '.join(SUPPORTED_POOLING)})")
    st_config = folder / "config_sentence_transformers.json"
    if st_config.exists():
        config = _read_json(st_config)
        prompt_name = config.get("default_prompt_name")
        if prompt_name and (config.get("prompts") or {}).get(prompt_name):
            raise OnnxUnsupported(f"the model applies the prompt {prompt_name!r} by default")
    return {"transformer_path": modules[0].get("path", "") or "", "pooling": modes, "normalize": len(kinds) == 3}


def resolve_backend(model_ref: str, requested: str) -> tuple[str, str | None]:
    """(backend to use, why the requested one cannot be used or None). Cheap: no model is loaded.

    `auto` means onnx-int8 when onnxruntime (and onnx) can be imported, else torch. A missing runtime or a
    model pipeline ONNX does not reproduce falls back to torch; the embedder logs the reason.
    """
    requested = check_backend(requested)
    if requested == TORCH:
        return TORCH, None
    wanted = ONNX_INT8 if requested == AUTO else requested
    missing = runtime_missing()
    if missing:
        return TORCH, f"onnxruntime is not available ({missing}; pip install onnxruntime onnx)"
    folder = model_folder(model_ref)
    if folder is None:
        return TORCH, "the model has no local folder"
    try:
        read_pipeline(folder)
    except OnnxUnsupported as exc:
        return TORCH, str(exc)
    return wanted, None


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    unit: np.ndarray = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    return unit


# ----------------------------------------------------------------------------- inference


def pool(hidden: np.ndarray, mask: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """sentence-transformers' Pooling over token embeddings (batch × tokens × dim) and the attention mask."""
    mask = mask.astype(np.float32)[..., None]
    parts = []
    for mode in modes:
        if mode == "cls":  # the first attended token, as Pooling does (left padding included)
            first = np.argmax(mask[..., 0], axis=1)
            parts.append(hidden[np.arange(len(hidden)), first])
        elif mode == "max":
            parts.append(np.where(mask > 0, hidden, -np.inf).max(axis=1))
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            total = (hidden * mask).sum(axis=1)
            count = np.maximum(mask.sum(axis=1), 1e-9)
            parts.append(total / (count if mode == "mean" else np.sqrt(count)))
        else:  # read_pipeline refuses other modes
            raise OnnxUnsupported(f"pooling mode {mode}")
    return np.concatenate(parts, axis=1).astype(np.float32)


class OnnxEncoder:
    """Tokenizer + ONNX Runtime session + pooling for one exported model file."""

    def __init__(
        self,
        folder: Path,
        cache: Path,
        spec: dict[str, Any],
        backend: str,
        threads: int = 0,
        max_seq_length: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.spec = spec
        limit = int(spec["max_seq_length"])
        self.max_seq_length = min(limit, int(max_seq_length)) if max_seq_length else limit
        self.backend = backend
        self.path = Path(cache) / spec["files"][backend]
        self.dim = int(spec["dim"])
        self.tokenizer = load_tokenizer(Path(folder) / spec["transformer_path"])
        self.threads = int(threads) if threads and int(threads) > 0 else default_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: on a busy (shared) machine spinning measured slower
        # (int8 13.5 vs 12.2 texts/s, bge-small shape, load 7) and it burns CPU the web server needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._tokenizer_lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = ONNX_MAX_BATCH) -> np.ndarray:
        """Pooled (and, with a Normalize module, unit) float32 rows; texts run in length order to pad little."""
        texts = [t or "" for t in texts]
        if self.spec.get("do_lower_case"):
            texts = [t.lower() for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = max(1, min(int(batch_size or ONNX_MAX_BATCH), ONNX_MAX_BATCH))
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), step):
            rows = order[start : start + step]
            with self._tokenizer_lock:  # a fast tokenizer's padding/truncation state is not safe across threads
                batch = self.tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_seq_length,
                    return_tensors="np",
                )
            ids = batch["input_ids"].astype(np.int64)
            feeds = {
                name: (batch[name].astype(np.int64) if name in batch else np.zeros_like(ids)) for name in self._inputs
            }
            hidden = self.session.run(None, feeds)[0]
            out[rows] = pool(hidden, batch["attention_mask"], self.spec["pooling"])
        return unit_rows(out) if self.spec.get("normalize") else out
