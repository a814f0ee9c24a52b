"""enterprises: contacts from the registry export (法定代表人, 电话, 邮箱, 网址)

Investment-promotion staff contact the firms they target; registry exports (企查查, 天眼查) carry these columns and the
import now keeps them.

Revision ID: c4d8e2f1a6b3
Revises: 9e4b2c7d1a35
Create Date: 2026-12-07 21:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c4d8e2f1a6b3"
down_revision = "9e4b2c7d1a35"
branch_labels = None
depends_on = None

CONTACT_COLUMNS = (("legal_representative", 64), ("phone", 128), ("email", 255), ("website", 255))


def upgrade():
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        for name, length in CONTACT_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), server_default="", nullable=False))


def downgrade():
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        for name, _ in reversed(CONTACT_COLUMNS):
            batch_op.drop_column(name)
