"""`chainmatch worker`: the task worker that runs imports, placement runs and the index's embedding."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from webapp.services import tasks


@click.command("worker")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Jobs run at once (threads; default CHAINMATCH_TASK_WORKERS, 2).",
)
@click.option(
    "--parent",
    type=int,
    default=None,
    hidden=True,
    help="Stop when this process (the web server that started the worker) has gone.",
)
@with_appcontext
def worker_command(workers: int | None, parent: int | None) -> None:
    """Run background jobs from the task queue (CHAINMATCH_TASK_QUEUE: sqlite or redis) until stopped.

    `chainmatch serve` and `chainmatch run` start one beside the web server; run it yourself to put the jobs on
    another machine (with CHAINMATCH_TASK_QUEUE=redis and the same database).
    """
    from webapp.services.tasks.worker import run_consumer

    app = current_app._get_current_object()
    if tasks.queue_kind(app) == tasks.QUEUE_THREAD:
        click.echo(
            "CHAINMATCH_TASK_QUEUE=thread：后台任务在网页进程的线程中运行，无需任务进程 (no worker needed).", err=True
        )
        return
    click.echo(f"chainmatch worker: {tasks.queue_kind(app)} queue", err=True)
    run_consumer(app, workers, parent)


COMMANDS = [worker_command]
