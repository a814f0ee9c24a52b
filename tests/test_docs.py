"""The README documents every configuration option and every CLI command."""
from __future__ import annotations

from pathlib import Path

import click

from webapp.config import ENV_PREFIX, OPTIONS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_names_every_config_option():
    missing = [ENV_PREFIX + opt.env for opt in OPTIONS if ENV_PREFIX + opt.env not in README]
    assert not missing, f"README lacks: {missing}"


def _command_paths(group: click.Group, ctx: click.Context, prefix: str) -> list[tuple[str, click.Command]]:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        path = f"{prefix} {name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(_command_paths(command, ctx, path))
    return found


def test_readme_lists_every_command_and_each_has_help(app):
    from webapp.cli import cli

    builtins = {"shell", "routes", "db", "limiter"}  # Flask's and extensions' own commands
    with app.app_context():
        ctx = click.Context(cli, obj=None)
        ctx.ensure_object(dict)
        paths = [(p, c) for p, c in _command_paths(app.cli, ctx, "chainmatch") if p.split()[1] not in builtins]
    paths.append(("chainmatch run", cli.get_command(ctx, "run")))
    missing = [p for p, _ in paths if f"`{p}" not in README]
    assert not missing, f"README lacks: {missing}"
    without_help = [p for p, c in paths if not (c.help or c.short_help)]
    assert not without_help, f"commands without --help text: {without_help}"
