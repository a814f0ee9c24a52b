"""chain map editing: who/why/changes of a chain version, map reviews per cluster chain

Revision ID: 5b7e2c9d4a10
Revises: 31f2153e199c
Create Date: 2026-12-05 21:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5b7e2c9d4a10"
down_revision = "31f2153e199c"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("chain_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="import"))
        batch_op.add_column(sa.Column("author_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("author", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_chain_versions_author_id_users"), "users", ["author_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("cluster_chains", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("review_snapshot", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("cluster_chains", schema=None) as batch_op:
        batch_op.drop_column("review_snapshot")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("reviewed_at")
    with op.batch_alter_table("chain_versions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_chain_versions_author_id_users"), type_="foreignkey")
        batch_op.drop_column("changes")
        batch_op.drop_column("reason")
        batch_op.drop_column("author")
        batch_op.drop_column("author_id")
        batch_op.drop_column("kind")
