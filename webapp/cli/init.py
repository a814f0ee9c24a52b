"""`chainmatch init`: migrate the database, load bundled data, build indexes. Safe to run again."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from flask_migrate import upgrade

INIT_STEPS: list = []  # (order, label, callable(app)) added by feature modules via `init_step`


def init_step(order: int, label: str):
    """Register a step of `chainmatch init` (lower order runs first)."""

    def decorator(fn):
        INIT_STEPS.append((order, label, fn))
        INIT_STEPS.sort(key=lambda s: s[0])
        return fn

    return decorator


@click.command("init")
@click.option(
    "--demo-accounts",
    is_flag=True,
    help="Also create demo accounts (one per role) and print their generated passwords once.",
)
@with_appcontext
def init_command(demo_accounts: bool) -> None:
    """Migrate the database, load bundled chains, clusters and demo firms, and build indexes (idempotent).

    Chain maps and clusters edited in the browser are kept (their bundled files are skipped). --demo-accounts also
    creates one demo account per role and prints their passwords once.
    """
    from flask import current_app

    click.echo("• 数据库迁移 (migrate) …")
    upgrade()
    for _, label, fn in INIT_STEPS:
        click.echo(f"• {label} …")
        fn(current_app, demo_accounts=demo_accounts)
    click.echo("完成 (done).")


COMMANDS = [init_command]
