"""The `chainmatch` console script: a Flask FlaskGroup over `create_app`."""

from __future__ import annotations

import os

import click
from flask.cli import FlaskGroup, ScriptInfo, run_command
from flask.helpers import get_debug_flag

from webapp import create_app


def _app():
    return create_app()


cli = FlaskGroup(
    create_app=_app,
    add_version_option=False,
    load_dotenv=False,
    help="chainmatch — 产业链精准招商匹配平台 (industrial-chain investment-promotion matching).",
)


@click.command(
    "run",
    params=run_command.params,
    help=("Run the development server, with the task worker (`chainmatch worker`) beside it for background jobs."),
)
@click.pass_context
def run_with_worker(ctx: click.Context, **options) -> None:
    """Flask's `run`, plus the task worker as a child process stopped when the server stops."""
    from webapp.services.match import ensure_index_async
    from webapp.services.tasks import worker

    process = None
    app = ctx.ensure_object(ScriptInfo).load_app()  # cached: the app run_command serves
    reloader_child = os.environ.get("WERKZEUG_RUN_MAIN") == "true"
    if not reloader_child:  # the reloader's child processes share the parent's worker
        process = worker.start_beside_server(app)
    reload = options.get("reload")
    if reloader_child or not (get_debug_flag() if reload is None else reload):  # this process serves
        # Load the saved match index now, in the background, so that the first candidate page after a start is
        # ranked by the full matcher rather than the keyword fallback (gunicorn workers preload the same way).
        ensure_index_async(app)
    try:
        ctx.invoke(run_command, **options)
    finally:
        worker.stop(process)


cli.add_command(run_with_worker)


def main() -> None:
    cli(prog_name="chainmatch")


if __name__ == "__main__":  # pragma: no cover
    main()
