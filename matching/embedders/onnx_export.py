"""Exporting a local sentence-transformers model to ONNX once, cached on disk by the fingerprint of its files.

The export happens once per model: the files go to `<cache_dir>/<fingerprint of the model's files>/`, written to a
temporary name and renamed, under a file lock so that several worker processes do not export the same model at once.
`pipeline.json` is written last and marks a complete export; a later start (same model files) only loads the
tokenizer and the ONNX file. The first export loads the model with torch once and checks the ONNX output against it.
Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from matching.embedders.base import ONNX, ONNX_INT8
from matching.embedders.local_models import load_torch_sentence_transformer
from matching.embedders.onnx_runtime import (
    OnnxEncoder,
    OnnxUnsupported,
    default_threads,
    load_tokenizer,
    read_pipeline,
    unit_rows,
)

logger = logging.getLogger(__name__)

ONNX_FILES = {ONNX: "model.onnx", ONNX_INT8: "model-int8.onnx"}
PIPELINE_FILE = "pipeline.json"
EXPORT_FORMAT = 2  # bump when the exported files or pipeline.json change meaning (2: per-channel int8)
OPSET = 17
MIN_AGREEMENT = {ONNX: 0.999, ONNX_INT8: 0.99}
PROBE_TEXTS = (
    "动力电池电芯制造",
    "锂离子电池正极材料 磷酸铁锂 三元材料",
    "船舶配套设备及海洋工程装备研发、生产、销售",
    "汽车电子控制器、车载传感器",
    "新能源汽车整车制造",
    "精密模具 注塑 冲压",
    "industrial robots, servo motors",
    "光伏组件 逆变器 储能系统集成" * 20,  # longer than the token limit: truncation must match
    "",
    "有限公司",
)

exports = 0  # ONNX exports done by this process (a later construction over a cached export adds nothing)


# ----------------------------------------------------------------------------- fingerprint and cache

# (folder, ((relative path, size, mtime_ns), …)) → fingerprint
_FINGERPRINTS: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
_WHOLE_FILE_MAX = 64 << 20  # bigger files are hashed by size + head, middle and tail
_SAMPLE = 8 << 20


def _model_files(folder: Path) -> list[Path]:
    out: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return out


def _hash_file(path: Path, size: int, digest: hashlib._Hash) -> None:
    with open(path, "rb") as fh:
        if size <= _WHOLE_FILE_MAX:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
            return
        for offset in (0, size // 2, size - _SAMPLE):
            fh.seek(offset)
            digest.update(fh.read(_SAMPLE))


def model_fingerprint(folder: Path) -> str:
    """sha256 over the model's files (relative path, size and content); memoised on their sizes and mtimes."""
    folder = Path(folder).resolve()
    files = _model_files(folder)
    stats = [(str(p.relative_to(folder)), p.stat()) for p in files]
    key = (str(folder), tuple((rel, st.st_size, st.st_mtime_ns) for rel, st in stats))
    if key in _FINGERPRINTS:
        return _FINGERPRINTS[key]
    digest = hashlib.sha256()
    for (rel, st), path in zip(stats, files):
        digest.update(f"{rel}\0{st.st_size}\0".encode("utf-8"))
        _hash_file(path, st.st_size, digest)
    _FINGERPRINTS[key] = digest.hexdigest()
    return _FINGERPRINTS[key]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder/.lock` (other processes exporting the same model wait)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+b") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock, the renames still keep files whole
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _temp_path(target: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(tmp)


def _replace_into(target: Path, write: Callable[[Path], object]) -> None:
    """Call write(tmp_path), then rename the temporary file onto `target`."""
    tmp = _temp_path(target)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the export is not secret
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_pipeline_file(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    try:
        spec: dict[str, Any] = json.loads((folder / PIPELINE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if spec.get("format") != EXPORT_FORMAT or spec.get("fingerprint") != fingerprint:
        return None
    return spec


def ensure_export(
    model_ref: str, folder: Path, cache_dir: Path, backend: str, max_seq_length: int
) -> tuple[Path, dict[str, Any]]:
    """(cache folder, pipeline spec) with the ONNX file for `backend`, exporting it first if it is not cached."""
    fingerprint = model_fingerprint(folder)
    target = Path(cache_dir) / fingerprint[:32]
    spec = _read_pipeline_file(target, fingerprint)
    if spec and backend in spec.get("files", {}) and (target / spec["files"][backend]).exists():
        return target, spec
    with _locked(target):
        spec = _read_pipeline_file(target, fingerprint)  # another process may have finished it meanwhile
        if spec and backend in spec.get("files", {}) and (target / spec["files"][backend]).exists():
            return target, spec
        spec = _export(model_ref, folder, target, fingerprint, backend, max_seq_length, spec)
    return target, spec


def _export(
    model_ref: str,
    folder: Path,
    target: Path,
    fingerprint: str,
    backend: str,
    max_seq_length: int,
    spec: dict[str, Any] | None,
) -> dict[str, Any]:
    global exports
    import torch

    began = time.perf_counter()
    logger.info("exporting %s to ONNX (%s) under %s — once per model", model_ref, backend, target)
    layout = read_pipeline(folder)
    model = load_torch_sentence_transformer(model_ref)
    transformer = model[0]
    tokenizer = load_tokenizer(folder / layout["transformer_path"])
    # The model's own token limit goes into the spec (each encoder truncates at its caller's limit up to it); the
    # export is checked against torch at the caller's limit.
    model_limit = int(getattr(model, "max_seq_length", 0) or getattr(tokenizer, "model_max_length", max_seq_length))
    seq_len = min(model_limit, max_seq_length)
    model.max_seq_length = seq_len
    sample = tokenizer(
        ["动力电池", "海洋工程装备制造"], padding=True, truncation=True, max_length=seq_len, return_tensors="pt"
    )
    bert = transformer.auto_model.eval()
    accepted = set(inspect.signature(bert.forward).parameters)
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample and k in accepted]
    if "input_ids" not in names or "attention_mask" not in names:
        raise OnnxUnsupported(f"the transformer does not take input_ids and attention_mask ({sorted(sample)})")
    spec = dict(spec or {})
    spec.update(
        format=EXPORT_FORMAT,
        fingerprint=fingerprint,
        model=model_ref,
        inputs=names,
        transformer_path=layout["transformer_path"],
        pooling=layout["pooling"],
        normalize=layout["normalize"],
        max_seq_length=model_limit,
        do_lower_case=bool(getattr(transformer, "do_lower_case", False)),
        dim=int(_embedding_dim(model)),
    )
    spec.setdefault("files", {})
    spec.setdefault("agreement_min_cosine", {})
    fp32 = target / ONNX_FILES[ONNX]
    if not fp32.exists() or ONNX not in spec["files"]:
        with contextlib.suppress(Exception):  # plain attention exports to an ONNX graph onnxruntime can fuse
            bert.set_attn_implementation("eager")

        class _Keywords(torch.nn.Module):  # keyword call: BertModel.forward's positional order changed in v5
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *args: torch.Tensor) -> torch.Tensor:
                hidden: torch.Tensor = self.inner(**dict(zip(names, args))).last_hidden_state
                return hidden

        axes: dict[str, dict[int, str]] = {k: {0: "batch", 1: "sequence"} for k in names}
        axes["last_hidden_state"] = {0: "batch", 1: "sequence"}

        def write_fp32(tmp: Path) -> None:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    _Keywords(bert),
                    tuple(sample[k] for k in names),
                    str(tmp),
                    input_names=names,
                    output_names=["last_hidden_state"],
                    dynamic_axes=axes,
                    opset_version=OPSET,
                    dynamo=False,
                )

        _replace_into(fp32, write_fp32)
        spec["files"][ONNX] = ONNX_FILES[ONNX]
    if backend == ONNX_INT8:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        def write_int8(tmp: Path) -> None:
            quiet = logging.getLogger()
            level = quiet.level
            quiet.setLevel(logging.ERROR)  # quantize_dynamic logs advice on the root logger
            try:
                # Per output channel: one scale per weight row instead of one per matrix. On multilingual-e5-small
                # (400 business scopes) per-tensor int8 reached mean cosine 0.987 to fp32 (min 0.980), per-channel
                # 0.997 (min 0.995), both at 40 texts/s on 2 cores (docs/matching.md).
                quantize_dynamic(
                    str(fp32),
                    str(tmp),
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                )
            finally:
                quiet.setLevel(level)

        _replace_into(target / ONNX_FILES[ONNX_INT8], write_int8)
        spec["files"][ONNX_INT8] = ONNX_FILES[ONNX_INT8]
    # Check the export against the torch model it came from, on a few texts (truncation included).
    reference = model.encode(
        list(PROBE_TEXTS), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    for kind in spec["files"]:
        encoder = OnnxEncoder(folder, target, spec, kind, threads=default_threads(), max_seq_length=seq_len)
        got = unit_rows(encoder.encode(list(PROBE_TEXTS)))
        agreement = float(np.min(np.sum(got * unit_rows(reference), axis=1)))
        spec["agreement_min_cosine"][kind] = round(agreement, 6)
        if agreement < MIN_AGREEMENT[kind]:
            message = (
                f"ONNX export of {model_ref} ({kind}) disagrees with torch: minimum cosine {agreement:.4f} "
                f"on the probe texts (expected ≥ {MIN_AGREEMENT[kind]})"
            )
            if kind == ONNX:
                (target / spec["files"].pop(kind)).unlink(missing_ok=True)
                raise OnnxUnsupported(message)
            logger.warning("%s; set CHAINMATCH_EMBEDDING_BACKEND=onnx or torch if rankings suffer", message)
    spec["exported_with"] = {"torch": torch.__version__, "onnx_opset": OPSET}
    spec["export_seconds"] = round(time.perf_counter() - began, 1)
    _replace_into(
        target / PIPELINE_FILE,
        lambda tmp: tmp.write_text(json.dumps(spec, ensure_ascii=False, indent=1), encoding="utf-8"),
    )
    exports += 1
    logger.info(
        "ONNX export of %s done in %.1f s: %s",
        model_ref,
        spec["export_seconds"],
        ", ".join(f"{k} {(target / f).stat().st_size / 1e6:.1f} MB" for k, f in spec["files"].items()),
    )
    return spec


def _embedding_dim(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
