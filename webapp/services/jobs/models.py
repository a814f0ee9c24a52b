"""Background job state shared by every worker process: status, progress and a heartbeat, one row per job."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from chains.db import Base, utcnow


class BackgroundJob(Base):
    """A job run by the task worker (an enterprise import, a cluster's placement run, the index's embedding).

    Any worker reads it: the status poll of a page may reach another process than the one running the job. The
    running process writes `heartbeat_at` every few seconds; a running job whose heartbeat stopped and whose
    owner process is gone is stale (see webapp.services.jobs.is_stale).
    """

    __tablename__ = "background_jobs"
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # "import" (key: ImportJob.id) / "placement" (key: cluster id)
    key: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued/running/done/failed/cancelled
    message: Mapped[str] = mapped_column(Text, default="")
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str] = mapped_column(String(160), default="")  # host:pid:process start of the running process
    # The task-queue message that runs the job (webapp.services.tasks); "" for a job run outside the queue (CLI).
    task_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
