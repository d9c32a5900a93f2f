"""request outcomes (for response metrics) and when each task's round was requested

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("info_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("close_code", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("first_reply_at", store.schema.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("ended_at", store.schema.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("requested_at", store.schema.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("requested_at")
    with op.batch_alter_table("info_requests", schema=None) as batch_op:
        batch_op.drop_column("ended_at")
        batch_op.drop_column("first_reply_at")
        batch_op.drop_column("close_code")
        batch_op.drop_column("outcome")
