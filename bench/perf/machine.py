"""Machine facts and small measuring helpers shared by the benchmarks."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

DEFAULT_WORK_DIR = Path(tempfile.gettempdir()) / "chainmatch-bench"


def _meminfo_gb(key: str) -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_facts() -> dict:
    """Cores, memory, CPU, load and library versions: printed with every benchmark's figures."""
    import faiss

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu": _cpu_model(),
        "memory_gb": _meminfo_gb("MemTotal"),
        "memory_available_gb": _meminfo_gb("MemAvailable"),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def rss_mb(kind: str = "VmRSS") -> float:
    """Resident memory of this process in MB (`VmRSS`, or `RssAnon` for memory not backed by files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(kind + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def percentiles_ms(seconds: list[float]) -> dict:
    """p50 / p95 / p99 / mean of a list of durations, in milliseconds."""
    if not seconds:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None, "samples": 0}
    arr = np.asarray(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "mean_ms": round(float(arr.mean()), 2),
        "samples": len(seconds),
    }


class Stopwatch:
    """`with Stopwatch() as sw: …` then `sw.seconds`."""

    def __enter__(self) -> "Stopwatch":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def work_dir(path: str | os.PathLike | None, name: str) -> Path:
    """A folder for one benchmark's generated data (never inside the repository)."""
    folder = Path(path) if path else DEFAULT_WORK_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def evict_from_page_cache(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache (pages mapped by a live process stay)."""
    for path in paths:
        path = Path(path)
        if not path.exists() or not hasattr(os, "posix_fadvise"):
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
