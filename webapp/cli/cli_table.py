"""`chainmatch cli-table` (hidden): the README's command table, generated from the commands' arguments and help."""

from __future__ import annotations

from collections.abc import Iterator

import click

# Flask's and its extensions' own commands, documented by them; `run` (Flask's too) is the one the README lists.
NOT_LISTED = frozenset({"shell", "routes", "db", "limiter"})
TABLE_HEADER = "| command | what it does |\n|---|---|"


def command_paths(
    group: click.Group, ctx: click.Context, prefix: str = "chainmatch"
) -> Iterator[tuple[str, click.Command]]:
    """Every command and subcommand below `group` as ("chainmatch users create", command), hidden ones included."""
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None:
            continue
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from command_paths(command, ctx, path)


def listed_commands(root: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    """The commands of the README's table: all but hidden ones and Flask's own (except `run`)."""
    return [
        (path, command)
        for path, command in command_paths(root, ctx)
        if not command.hidden and (path.split()[1] not in NOT_LISTED)
    ]


def _synopsis(path: str, command: click.Command, ctx: click.Context) -> str:
    """`chainmatch users create USERNAME --role admin|staff|… [--cluster ID …]`, from the command's parameters."""
    parts = [path]
    for param in command.params:
        if isinstance(param, click.Argument):
            name = param.human_readable_name
            parts.append(name + (" …" if param.nargs == -1 else "") if param.required else f"[{name}]")
        elif isinstance(param, click.Option) and not param.hidden and param.name != "help":
            flag = max(param.opts, key=len)
            if param.is_flag:
                text = flag if not param.secondary_opts else f"{flag}/{max(param.secondary_opts, key=len)}"
            elif isinstance(param.type, click.Choice):
                text = f"{flag} {'|'.join(str(c) for c in param.type.choices)}"
            else:
                text = f"{flag} {param.metavar or param.name.upper()}"
            if param.multiple:
                text += " …"
            parts.append(text if param.required else f"[{text}]")
    if isinstance(command, click.Group):
        parts.append("COMMAND")
    return " ".join(parts)


def _help(command: click.Command) -> str:
    """The command's help on one line for Markdown: paragraphs joined, click's no-rewrap marks dropped, <> escaped."""
    text = (command.help or command.short_help or "").replace("\b\n", "").replace("\b", "")
    return " ".join(text.split()).replace("<", "&lt;").replace(">", "&gt;")


def cli_table(root: click.Group, ctx: click.Context) -> str:
    """The Markdown table: one row per command with its synopsis and help (pipes escaped for the table)."""
    rows = [TABLE_HEADER]
    for path, command in listed_commands(root, ctx):
        cell = f"`{_synopsis(path, command, ctx)}`: {_help(command)}".replace("|", "\\|")
        rows.append(f"| `{path}` | {cell} |")
    return "\n".join(rows) + "\n"


@click.command("cli-table", hidden=True)
@click.pass_context
def cli_table_command(ctx: click.Context) -> None:
    """Print the README's command table (README.md, "Command line"), generated from the commands themselves."""
    root = ctx.find_root()
    click.echo(cli_table(root.command, root), nl=False)  # type: ignore[arg-type]


COMMANDS = [cli_table_command]
