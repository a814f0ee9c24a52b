"""`chainmatch users …`: create and list accounts (the first admin is created here)."""
from __future__ import annotations

import secrets

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from webapp.auth.models import MIN_PASSWORD_LENGTH, ROLES, User
from webapp.extensions import db


@click.group("users")
def users_group() -> None:
    """Manage user accounts."""


@users_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(sorted(ROLES)), required=True, help="admin, staff (招商人员), manager (集聚区管理者) or firm (链主企业).")
@click.option("--cluster", "clusters", multiple=True, help="Cluster id the user may access (repeatable).")
@click.option("--enterprise-id", type=int, help="For a firm account: the enterprise it acts for.")
@click.option("--name", "display_name", default="", help="Display name.")
@click.option("--password", envvar="CHAINMATCH_NEW_PASSWORD", default=None,
              help="Password (or env CHAINMATCH_NEW_PASSWORD); generated and printed once when omitted.")
@with_appcontext
def create_user(username: str, role: str, clusters: tuple[str, ...], enterprise_id: int | None,
                display_name: str, password: str | None) -> None:
    """Create a user account with a role."""
    from chains.cluster_models import Cluster

    if db.session.scalars(select(User).where(User.username == username)).first():
        raise click.ClickException(f"用户 {username} 已存在 (user exists)")
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符 (password too short)")
    user = User(username=username, role=role, display_name=display_name, enterprise_id=enterprise_id)
    user.set_password(password)
    for cid in clusters:
        cluster = db.session.get(Cluster, cid)
        if cluster is None:
            raise click.ClickException(f"集聚区 {cid} 不存在 (unknown cluster)")
        user.clusters.append(cluster)
    db.session.add(user)
    db.session.commit()
    click.echo(f"created {role} user {username}")
    if generated:
        click.echo(f"password (shown once): {password}")


@users_group.command("list")
@with_appcontext
def list_users() -> None:
    """List user accounts and their roles."""
    for user in db.session.scalars(select(User).order_by(User.username)):
        click.echo(f"{user.username}\t{user.role}\t{','.join(sorted(user.cluster_ids()))}")


COMMANDS = [users_group]
