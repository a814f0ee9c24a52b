"""Metadata JSON written beside every saved index file, and the checks done when loading it back."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

META_FORMAT = 1  # bump when the layout of saved index files changes


class IndexMismatchError(RuntimeError):
    """A saved index does not fit what the caller expects (other embedder, dim, database) or is damaged."""


def meta_path(index_path: Path) -> Path:
    """The metadata file that belongs to `index_path` (`<file>.json`)."""
    index_path = Path(index_path)
    return index_path.with_name(index_path.name + ".json")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_meta(path: Path, meta: Mapping[str, Any]) -> None:
    """Write `meta` as JSON (UTF-8, readable Chinese) to `path` atomically."""
    data = {"format": META_FORMAT, **meta}
    atomic_write_bytes(Path(path), json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8"))


def read_meta(path: Path) -> dict[str, Any]:
    """Read a metadata JSON file; a missing or unreadable file raises IndexMismatchError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexMismatchError(f"index metadata missing: {path}") from exc
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(f"index metadata unreadable: {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise IndexMismatchError(f"index metadata is not an object: {path}")
    return data


def mismatches(meta: Mapping[str, Any], expected: Mapping[str, Any] | None) -> list[str]:
    """Human-readable differences between saved metadata and the expected values (empty when they fit)."""
    problems = []
    if meta.get("format") != META_FORMAT:
        problems.append(f"format {meta.get('format')!r} != {META_FORMAT}")
    for key, want in (expected or {}).items():
        have = meta.get(key)
        if _normalise(have) != _normalise(want):
            problems.append(f"{key}: saved {have!r}, expected {want!r}")
    return problems


def check_meta(meta: Mapping[str, Any], expected: Mapping[str, Any] | None) -> None:
    """Raise IndexMismatchError when `meta` does not fit `expected`."""
    problems = mismatches(meta, expected)
    if problems:
        raise IndexMismatchError("index does not match: " + "; ".join(problems))


def _normalise(value: Any) -> Any:
    # JSON turns tuples into lists; compare them alike.
    if isinstance(value, tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value
