"""Uploaded import files and their row reports are kept for CHAINMATCH_UPLOAD_RETENTION_DAYS, then deleted."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains.enterprise_models import ImportJob
from webapp.imports.jobs import FINISHED

SECONDS_PER_DAY = 86_400
UPLOAD_PATTERN = "import-*"

logger = logging.getLogger("chainmatch.imports")


def purge_old_uploads(session: Session, upload_dir: str | Path, days: float, now: float | None = None) -> int:
    """Delete upload files older than `days` unless their import is still queued or running; returns how many."""
    if days <= 0:
        return 0
    cutoff = (time.time() if now is None else now) - days * SECONDS_PER_DAY
    in_use = set()
    for stored, report in session.execute(
        select(ImportJob.stored_path, ImportJob.report_path).where(ImportJob.status.not_in(FINISHED))
    ):
        in_use.update(str(Path(p).resolve()) for p in (stored, report) if p)
    removed = 0
    for path in Path(upload_dir).glob(UPLOAD_PATTERN):
        try:
            if not path.is_file() or path.stat().st_mtime >= cutoff or str(path.resolve()) in in_use:
                continue
            path.unlink()
            removed += 1
        except OSError as exc:  # another worker removed it first, or it cannot be removed: try again next time
            logger.warning("could not remove old upload %s: %s", path.name, exc)
    if removed:
        logger.info("removed %d upload files older than %s days", removed, days)
    return removed
