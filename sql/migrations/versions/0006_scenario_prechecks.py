"""scenario on every output table (booked '' vs what-if runs, SPEC §4.5) and bua_precheck (SPEC §4.0)

Revision ID: 0006_scenario_prechecks
Revises: 0005_run_lock, 0004_validation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_scenario_prechecks"
down_revision = ("0005_run_lock", "0004_validation")  # a merge: the scenario column goes on both's tables
branch_labels = None
depends_on = None

TABLES = (
    "bua_run", "invoice_line_item_monthly", "bua_account_summary", "accrual_summary", "bua_exception",
    "estimated_basic_read", "bua_backtest", "bua_trueup",
)  # fmt: skip


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("scenario", sa.String(length=40), nullable=False, server_default=""))
    op.create_table(
        "bua_precheck",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("scenario", sa.String(length=40), nullable=False, server_default=""),
        sa.Column("check", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=4), nullable=False),
        sa.Column("figure", sa.String(length=64), nullable=False),
        sa.Column("threshold", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_bua_precheck_run_date", "bua_precheck", ["run_date"])


def downgrade() -> None:
    op.drop_index("ix_bua_precheck_run_date", table_name="bua_precheck")
    op.drop_table("bua_precheck")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("scenario")
