"""CLI commands: a module here exposes `COMMANDS`, a list of click commands, and/or registers `chainmatch init` steps;
COMMAND_MODULES lists the modules `chainmatch` loads (tests/test_architecture.py checks that none is left out)."""

from __future__ import annotations

import click

from webapp.cli import (
    bench,
    chains,
    cli_table,
    demo_accounts,
    embedder,
    eval_matching,
    firms,
    init,
    leads,
    match,
    report,
    serve,
    tokens,
    users,
    worker,
)

COMMAND_MODULES = (
    bench,
    chains,
    cli_table,
    demo_accounts,
    embedder,
    eval_matching,
    firms,
    init,
    leads,
    match,
    report,
    serve,
    tokens,
    users,
    worker,
)


def all_commands() -> list[click.Command]:
    """Every command of COMMAND_MODULES, in their order."""
    return [command for module in COMMAND_MODULES for command in getattr(module, "COMMANDS", ())]
