"""background jobs: the task-queue message that runs the job

Imports, placement runs and the index's embedding run in the task worker (webapp.services.tasks); the job row records the
id of the queued task so that a queued job can be revoked and a worker starts only the run it was sent.

Revision ID: 9e4b2c7d1a35
Revises: 7c3e9a4d2b10
Create Date: 2026-12-06 00:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "9e4b2c7d1a35"
down_revision = "7c3e9a4d2b10"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("background_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_id", sa.String(length=64), server_default="", nullable=False))


def downgrade():
    with op.batch_alter_table("background_jobs", schema=None) as batch_op:
        batch_op.drop_column("task_id")
