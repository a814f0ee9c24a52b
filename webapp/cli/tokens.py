"""`chainmatch tokens …`: create, list and revoke per-user API tokens (the token is printed once)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from webapp.extensions import db


@click.group("tokens")
def tokens_group() -> None:
    """Manage API tokens (Authorization: Bearer <token>)."""


@tokens_group.command("create")
@click.argument("username")
@click.option("--name", default="", help="A label for the token, e.g. the script that uses it.")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=None,
    help="Days the token is valid (default CHAINMATCH_API_TOKEN_DAYS; 0: never expires).",
)
@with_appcontext
def create(username: str, name: str, days: int | None) -> None:
    """Create an API token for USERNAME and print it once.

    Valid --days days (default CHAINMATCH_API_TOKEN_DAYS; 0: never expires); only the token's sha256 is stored.
    """
    from webapp.auth.models import User
    from webapp.auth.tokens import TokenError, create_token

    user = db.session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise click.ClickException(f"用户 {username} 不存在 (unknown user)")
    try:
        row, plaintext = create_token(db.session, user.id, name, days=days)
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    from webapp.services.audit import record

    db.session.flush()
    record("api_token.create", "api_token", row.id, username=username)  # never the token itself
    db.session.commit()
    click.echo(f"created token {row.id} for {username}")
    click.echo(f"token (shown once): {plaintext}")


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def revoke(token_id: int) -> None:
    """Revoke the API token with id TOKEN_ID."""
    from webapp.auth.tokens import TokenError, revoke_token

    try:
        revoke_token(db.session, token_id)
    except TokenError as exc:
        raise click.ClickException(f"{exc} (unknown token {token_id})") from None
    from webapp.services.audit import record

    record("api_token.revoke", "api_token", token_id)
    db.session.commit()
    click.echo(f"revoked token {token_id}")


@tokens_group.command("list")
@with_appcontext
def list_tokens() -> None:
    """List API tokens: id, user, name, prefix, created, last used, expires, status."""
    from webapp.auth.tokens import user_tokens

    for t in user_tokens(db.session):
        last = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "-"
        expires = t.expires_at.isoformat(timespec="seconds") if t.expires_at else "never"
        status = "revoked" if t.revoked_at else ("expired" if t.expired else "active")
        click.echo(
            f"{t.id}\t{t.user.username}\t{t.name or '-'}\tcm_{t.prefix}_…\t"
            f"{t.created_at.isoformat(timespec='seconds')}\t{last}\t{expires}\t{status}"
        )


COMMANDS = [tokens_group]
