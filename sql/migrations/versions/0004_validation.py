"""validation outputs: back-test and true-up (SPEC §4.6)

Revision ID: 0004_validation
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_validation"
down_revision = "0001"
branch_labels = None
depends_on = None

QTY = sa.Numeric(precision=18, scale=3)
MONEY = sa.Numeric(precision=14, scale=2)
PCT = sa.Numeric(precision=12, scale=2)


def upgrade() -> None:
    op.create_table(
        "bua_backtest",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("backtest_date", sa.Date(), nullable=False),
        sa.Column("window_to", sa.Date(), nullable=False),
        sa.Column("fuel", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=12), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("registers", sa.Integer(), nullable=False),
        sa.Column("register_days", sa.Integer(), nullable=False),
        sa.Column("actual_volume", QTY, nullable=False),
        sa.Column("estimated_volume", QTY, nullable=False),
        sa.Column("bias_pct", PCT, nullable=True),
        sa.Column("mape_pct", PCT, nullable=True),
        sa.Column("wape_pct", PCT, nullable=True),
    )
    op.create_index(op.f("ix_bua_backtest_run_date"), "bua_backtest", ["run_date"], unique=False)
    op.create_table(
        "bua_trueup",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("accrual_run_date", sa.Date(), nullable=False),
        sa.Column("fuel", sa.String(length=16), nullable=False),
        sa.Column("segment", sa.String(length=32), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("accounts_billed", sa.Integer(), nullable=False),
        sa.Column("covered_days", sa.Integer(), nullable=False),
        sa.Column("accrued_volume", QTY, nullable=True),
        sa.Column("billed_volume", QTY, nullable=True),
        sa.Column("volume_difference", QTY, nullable=True),
        sa.Column("volume_difference_pct", PCT, nullable=True),
        sa.Column("accrued_net", MONEY, nullable=False),
        sa.Column("billed_net", MONEY, nullable=False),
        sa.Column("net_difference", MONEY, nullable=False),
        sa.Column("net_difference_pct", PCT, nullable=True),
        sa.Column("accrued_net_total", MONEY, nullable=False),
    )
    op.create_index(op.f("ix_bua_trueup_run_date"), "bua_trueup", ["run_date"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_bua_trueup_run_date"), table_name="bua_trueup")
    op.drop_table("bua_trueup")
    op.drop_index(op.f("ix_bua_backtest_run_date"), table_name="bua_backtest")
    op.drop_table("bua_backtest")
