"""hardening: per-address login throttles, API token expiry

Lock-outs move from the user row (which let anyone lock any account) to pairs of client address and user name;
API tokens get an expiry, given to existing tokens too (DEFAULT_TOKEN_DAYS from the upgrade).

Revision ID: 7c3e9a4d2b10
Revises: bd9b4e7a7486
Create Date: 2026-12-05 21:30:00

"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "7c3e9a4d2b10"
down_revision = "bd9b4e7a7486"
branch_labels = None
depends_on = None

DEFAULT_TOKEN_DAYS = 90


def upgrade():
    op.create_table(
        "login_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_throttles")),
        sa.UniqueConstraint("address", "username", name="uq_login_throttles_address_username"),
    )
    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_throttles_username"), ["username"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_throttles_window_started"), ["window_started"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_logins")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    tokens = sa.table("api_tokens", sa.column("expires_at", sa.DateTime(timezone=True)))
    op.execute(tokens.update().values(expires_at=datetime.now(UTC) + timedelta(days=DEFAULT_TOKEN_DAYS)))


def downgrade():
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_throttles_window_started"))
        batch_op.drop_index(batch_op.f("ix_login_throttles_username"))

    op.drop_table("login_throttles")
