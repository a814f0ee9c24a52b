"""The README documents every configuration option and every CLI command (its table generated from the CLI)."""

from __future__ import annotations

from pathlib import Path

import click

from webapp.cli.cli_table import command_paths, listed_commands
from webapp.config import ENV_PREFIX, OPTIONS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_names_every_config_option():
    missing = [ENV_PREFIX + opt.env for opt in OPTIONS if ENV_PREFIX + opt.env not in README]
    assert not missing, f"README lacks: {missing}"


def _command_paths(group: click.Group, ctx: click.Context, prefix: str) -> list[tuple[str, click.Command]]:
    return list(command_paths(group, ctx, prefix))


def test_readme_lists_every_command_and_each_has_help(app):
    from webapp.cli.main import cli

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


def _readme_cli_table() -> str:
    start = README.index("<!-- cli-table:")
    start = README.index("\n", start) + 1
    return README[start : README.index("<!-- /cli-table -->")].strip() + "\n"


def test_readme_command_table_is_the_generated_one(app):
    """README.md's command table is `chainmatch cli-table`'s output: regenerate it when a command changes."""
    from webapp.cli.main import cli

    result = app.test_cli_runner().invoke(cli, args=["cli-table"])
    assert result.exit_code == 0, result.output
    assert _readme_cli_table() == result.output, "README command table is stale: paste `chainmatch cli-table`'s output"


def test_readme_command_table_has_a_row_for_every_command(app):
    from webapp.cli.main import cli

    with app.app_context():
        ctx = click.Context(cli, obj=None)
        ctx.ensure_object(dict)
        root = click.Group(commands={**app.cli.commands, "run": cli.get_command(ctx, "run")})
        listed = [path for path, _ in listed_commands(root, ctx)]
    rows = [line.split("`")[1] for line in _readme_cli_table().splitlines() if line.startswith("| `chainmatch ")]
    assert sorted(rows) == sorted(listed), f"README command table differs from the CLI: {set(rows) ^ set(listed)}"
