"""Demo accounts for `chainmatch init --demo-accounts`: one per role, passwords generated and printed once."""

from __future__ import annotations

import click
from sqlalchemy import select

from webapp.auth.models import ROLE_ADMIN, ROLE_FIRM, ROLE_MANAGER, ROLE_STAFF, User, generate_password
from webapp.cli.init import init_step
from webapp.extensions import db

DEMO_USERS = (
    ("demo-admin", ROLE_ADMIN, "演示管理员"),
    ("demo-staff", ROLE_STAFF, "演示招商人员"),
    ("demo-manager", ROLE_MANAGER, "演示集聚区管理者"),
    ("demo-firm", ROLE_FIRM, "演示链主企业"),
)


@init_step(90, "演示账号")
def create_demo_accounts(app, demo_accounts: bool = False) -> None:
    """Create the demo accounts when asked; existing accounts are left as they are."""
    from chains.cluster_models import Cluster

    if not demo_accounts:
        click.echo("  跳过（需要时使用 --demo-accounts）")
        return
    clusters = list(db.session.scalars(select(Cluster).order_by(Cluster.id)))
    first = clusters[0] if clusters else None
    for username, role, label in DEMO_USERS:
        if db.session.scalars(select(User).where(User.username == username)).first():
            click.echo(f"  {username} 已存在，未修改")
            continue
        password = generate_password()
        user = User(username=username, role=role, display_name=label)
        user.set_password(password)
        if role == ROLE_STAFF:
            user.clusters.extend(clusters)
        elif role == ROLE_MANAGER and first is not None:
            user.clusters.append(first)
        elif role == ROLE_FIRM and first is not None:
            user.enterprise_id = first.chain_leader_id
            user.clusters.append(first)
        db.session.add(user)
        db.session.flush()
        from webapp.services.audit import record

        record(
            "user.create", "user", user.id, username=username, role=role, demo=True, clusters=sorted(user.cluster_ids())
        )
        db.session.commit()
        click.echo(f"  {username} ({label}) 密码（仅显示一次）: {password}")
