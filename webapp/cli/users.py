"""`chainmatch users …`: create, list, set passwords, disable/enable and assign clusters (first admin is created here).

There is no default account or password anywhere: passwords are given by the operator or generated and printed once.
Every change is written to the audit log with username "cli".
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from webapp.auth.models import MIN_PASSWORD_LENGTH, ROLE_FIRM, ROLES, User, generate_password, username_problem
from webapp.auth.passwords import change_password
from webapp.extensions import db
from webapp.services.audit import record

PASSWORD_HELP = "Password (or env CHAINMATCH_NEW_PASSWORD); generated and printed once when omitted."


@click.group("users")
def users_group() -> None:
    """Manage user accounts."""


def _user_or_fail(username: str) -> User:
    user = db.session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise click.ClickException(f"用户 {username} 不存在 (no such user)")
    return user


def _clusters_or_fail(cluster_ids: tuple[str, ...]) -> list:
    from chains.cluster_models import Cluster

    clusters = []
    for cid in cluster_ids:
        cluster = db.session.get(Cluster, cid)
        if cluster is None:
            raise click.ClickException(f"集聚区 {cid} 不存在 (unknown cluster)")
        clusters.append(cluster)
    return clusters


def _password_or_generate(password: str | None) -> tuple[str, bool]:
    if password is None:
        return generate_password(), True
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符 (password too short)")
    return password, False


@users_group.command("create")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(sorted(ROLES)),
    required=True,
    help="admin, staff (招商人员), manager (集聚区管理者) or firm (链主企业).",
)
@click.option("--cluster", "clusters", multiple=True, help="Cluster id the user may access (repeatable).")
@click.option("--enterprise-id", type=int, help="For a firm account: the enterprise it acts for.")
@click.option("--name", "display_name", default="", help="Display name.")
@click.option("--password", envvar="CHAINMATCH_NEW_PASSWORD", default=None, help=PASSWORD_HELP)
@with_appcontext
def create_user(
    username: str,
    role: str,
    clusters: tuple[str, ...],
    enterprise_id: int | None,
    display_name: str,
    password: str | None,
) -> None:
    """Create a user account with a role."""
    from chains.enterprise_models import Enterprise

    if db.session.scalars(select(User).where(User.username == username)).first():
        raise click.ClickException(f"用户 {username} 已存在 (user exists)")
    password, generated = _password_or_generate(password)
    problem = username_problem(username)
    if problem:
        raise click.ClickException(f"{problem} (invalid user name)")
    if enterprise_id is not None and db.session.get(Enterprise, enterprise_id) is None:
        raise click.ClickException(f"企业 {enterprise_id} 不存在 (unknown enterprise)")
    if role == ROLE_FIRM and enterprise_id is None:
        click.echo("warning: a firm account without --enterprise-id cannot use the supplier pages", err=True)
    user = User(username=username, role=role, display_name=display_name, enterprise_id=enterprise_id)
    user.set_password(password)
    user.clusters.extend(_clusters_or_fail(clusters))
    db.session.add(user)
    db.session.flush()
    record(
        "user.create",
        "user",
        user.id,
        username=username,
        role=role,
        clusters=sorted(clusters),
        enterprise_id=enterprise_id,
    )
    db.session.commit()
    click.echo(f"created {role} user {username}")
    if generated:
        click.echo(f"password (shown once): {password}")


@users_group.command("list")
@with_appcontext
def list_users() -> None:
    """List user accounts: username, role, clusters, enterprise, state."""
    for user in db.session.scalars(select(User).order_by(User.username)):
        state = "active" if user.active else "disabled"
        click.echo(
            f"{user.username}\t{user.role}\t{','.join(sorted(user.cluster_ids()))}\t{user.enterprise_id or ''}\t{state}"
        )


@users_group.command("set-password")
@click.argument("username")
@click.option("--password", envvar="CHAINMATCH_NEW_PASSWORD", default=None, help=PASSWORD_HELP)
@with_appcontext
def set_password(username: str, password: str | None) -> None:
    """Set a new password (ends the user's open sessions, revokes their API tokens, clears lock-outs)."""
    user = _user_or_fail(username)
    password, generated = _password_or_generate(password)
    revoked = change_password(db.session, user, password)
    record("user.set_password", "user", user.id, username=username, tokens_revoked=revoked)
    db.session.commit()
    click.echo(f"password changed for {username}")
    if generated:
        click.echo(f"password (shown once): {password}")


def _set_active(username: str, active: bool) -> None:
    user = _user_or_fail(username)
    user.active = active
    record("user.enable" if active else "user.disable", "user", user.id, username=username)
    db.session.commit()
    click.echo(f"{username} {'enabled' if active else 'disabled'}")


@users_group.command("disable")
@click.argument("username")
@with_appcontext
def disable_user(username: str) -> None:
    """Disable an account: it can no longer log in, its sessions and API tokens stop working."""
    _set_active(username, False)


@users_group.command("enable")
@click.argument("username")
@with_appcontext
def enable_user(username: str) -> None:
    """Enable a disabled account again."""
    _set_active(username, True)


@users_group.command("assign")
@click.argument("username")
@click.option("--cluster", "clusters", multiple=True, required=True, help="Cluster id (repeatable).")
@click.option("--replace", is_flag=True, help="Replace the user's clusters instead of adding to them.")
@click.option("--remove", is_flag=True, help="Remove these clusters from the user instead of adding them.")
@with_appcontext
def assign_clusters(username: str, clusters: tuple[str, ...], replace: bool, remove: bool) -> None:
    """Add (default), replace or remove the clusters a staff or manager account may access."""
    if replace and remove:
        raise click.ClickException("--replace 与 --remove 不能同时使用 (choose one)")
    user = _user_or_fail(username)
    wanted = _clusters_or_fail(clusters)
    before = sorted(user.cluster_ids())
    if replace:
        user.clusters = wanted
    elif remove:
        user.clusters = [c for c in user.clusters if c.id not in set(clusters)]
    else:
        user.clusters.extend(c for c in wanted if c.id not in user.cluster_ids())
    after = sorted(c.id for c in user.clusters)
    record("user.assign", "user", user.id, username=username, old=before, new=after)
    db.session.commit()
    click.echo(f"{username}: {','.join(after) or '(no clusters)'}")


COMMANDS = [users_group]
