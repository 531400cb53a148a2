"""run lock and attempts: a lease per run date held in the billing database, every attempt recorded
(tasks/adapters/run_lock.py)

Revision ID: 0005_run_lock
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_run_lock"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bua_run_lock",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("attempt_id", sa.String(length=36), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "bua_run_attempt",
        sa.Column("attempt_id", sa.String(length=36), primary_key=True),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("scenario", sa.String(length=40), nullable=False),
        sa.Column("flow_run_id", sa.String(length=36), nullable=True),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
    )
    op.create_index("ix_bua_run_attempt_run_id", "bua_run_attempt", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_bua_run_attempt_run_id", table_name="bua_run_attempt")
    op.drop_table("bua_run_attempt")
    op.drop_table("bua_run_lock")
