"""Bar charts as PNG images for reports, drawn with numpy and written with zlib (no fonts: labels go in the caption)."""

from __future__ import annotations

import struct
import zlib
from typing import Sequence

import numpy as np

WIDTH, HEIGHT = 720, 300  # pixels
MARGIN = 24
BACKGROUND = (255, 255, 255)
GRID = (222, 226, 230)
PALETTE = ("#c0392b", "#e67e22", "#9fb3c8", "#2e8540", "#0b5cad", "#7c3aed")


def hex_rgb(color: str) -> tuple[int, int, int]:
    """`#rrggbb` → (r, g, b)."""
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an H×W×3 uint8 array as a PNG file."""
    height, width, _ = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def stacked_bars(
    groups: Sequence[Sequence[float]], colors: Sequence[str], width: int = WIDTH, height: int = HEIGHT
) -> bytes:
    """One bar per group, each stacked from its series values (bottom first), with horizontal grid lines."""
    image = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    top = max([sum(g) for g in groups] + [1.0])
    plot_h = height - 2 * MARGIN
    for i in range(5):  # grid at 0, 25, 50, 75, 100 %
        y = height - MARGIN - int(plot_h * i / 4)
        image[y, MARGIN : width - MARGIN] = GRID
    slot = (width - 2 * MARGIN) / max(len(groups), 1)
    bar = max(int(slot * 0.6), 2)
    for index, values in enumerate(groups):
        x0 = MARGIN + int(slot * index + (slot - bar) / 2)
        base = height - MARGIN
        for value, color in zip(values, colors):
            size = int(round(plot_h * value / top))
            if size > 0:
                image[base - size : base, x0 : x0 + bar] = hex_rgb(color)
                base -= size
    return png_bytes(image)
