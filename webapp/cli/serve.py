"""`chainmatch serve`: the production web server — gunicorn with several worker processes."""

from __future__ import annotations

import os
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from webapp.web.server import default_workers, gunicorn_argv


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True, help="Port to listen on.")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Worker processes (default CHAINMATCH_WEB_WORKERS; 0 or unset: one per CPU core).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads per worker process (default CHAINMATCH_WEB_THREADS, 4).",
)
@click.option("--print-command", is_flag=True, help="Print the gunicorn command line instead of running it.")
@with_appcontext
def serve_command(host: str, port: int, workers: int | None, threads: int | None, print_command: bool) -> None:
    """Serve the web app with gunicorn: several worker processes, each loading the saved match index once.

    Run `chainmatch init` (or `chainmatch index build`) first so the workers find a saved index. Background
    jobs (imports, placement runs, the index's embedding) run in the task worker (`chainmatch worker`), which
    gunicorn's arbiter starts beside the web workers; their state is in the database, so any worker answers the
    status polls.
    """
    config = current_app.config
    workers = default_workers(workers if workers is not None else int(config.get("WEB_WORKERS") or 0))
    threads = threads or int(config.get("WEB_THREADS") or 4)
    argv = gunicorn_argv(host, port, workers, threads)
    if print_command:
        click.echo(" ".join(argv))
        return
    click.echo(f"chainmatch serve: http://{host}:{port} — {workers} worker process(es) × {threads} thread(s)", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # gunicorn replaces this process: signals (TERM, HUP) reach its arbiter


COMMANDS = [serve_command]
