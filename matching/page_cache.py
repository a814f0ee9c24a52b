"""Reading an engine's memory-mapped files into the OS page cache before searches touch them.

A saved engine's vector rows (matching.vectors.row_store), and in the web workers its lexical matrices, stay in their
files, memory-mapped. After a restart, or once the OS has dropped their pages, a search reads what it touches from
disk a page at a time: a province filter at 1M firms scores ~29k scattered 1.5 kB rows of the 1.5 GB vectors file, a
disk read for nearly every one. With that file out of the page cache, the bench's 200 queries right after a load took
138 ms at p95 (a province 201 ms), and 44 ms with the engine warming up beside them (docs/performance-history.md). One
sequential read brings a file in at disk speed (1.5 GB in 1.3 s on the 2-core machine); `posix_fadvise(WILLNEED)` is
not enough, Linux reads ahead only a few MB for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

PREFETCH_CHUNK_BYTES = 8 << 20  # read per call (the buffer is reused; the GIL is released while reading)
# Files are read only while their total stays within this share of the memory available: reading more than fits
# would evict the pages read first, or other processes' pages, and gain nothing.
PREFETCH_MAX_SHARE = 0.5


def mapped_file(array: Any) -> Path | None:
    """The file an array (or a view of one) is memory-mapped from, else None."""
    while isinstance(array, np.ndarray):
        if isinstance(array, np.memmap) and array.filename:
            return Path(array.filename)
        array = array.base
    return None


def mapped_files(values: Iterable[Any]) -> list[Path]:
    """The distinct files that arrays and scipy sparse matrices among `values` are memory-mapped from, in order."""
    found: dict[Path, None] = {}
    for value in values:
        parts = [value.data, value.indices, value.indptr] if sp.issparse(value) else [value]
        for part in parts:
            path = mapped_file(part)
            if path is not None:
                found.setdefault(path, None)
    return list(found)


def available_bytes() -> int:
    """Memory the OS can give without swapping (MemAvailable; free pages where /proc/meminfo is missing)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))


def prefetch_budget() -> int:
    """Bytes worth reading ahead now: PREFETCH_MAX_SHARE of the available memory."""
    return int(PREFETCH_MAX_SHARE * available_bytes())


def prefetch(paths: Iterable[Path], budget: int | None = None) -> int:
    """Read `paths` start to end, in order, so that their pages are cached; returns the bytes read.

    Stops before a file that would take the total past `budget` (default: `prefetch_budget()`); skips a file that
    cannot be read (replaced by a rebuild meanwhile: nothing of it left to warm)."""
    budget = prefetch_budget() if budget is None else budget
    buffer = bytearray(PREFETCH_CHUNK_BYTES)
    total = 0
    for path in paths:
        try:
            with open(path, "rb", buffering=0) as fh:
                if total + os.fstat(fh.fileno()).st_size > budget:
                    break
                while True:
                    got = fh.readinto(buffer)
                    if not got:
                        break
                    total += got
        except OSError:
            continue
    return total
