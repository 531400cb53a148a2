"""companion flows: billing CSV bookkeeping, daily per-account billing report and its history

Revision ID: 0003_companion
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_companion"
down_revision = "0001"
branch_labels = None
depends_on = None

MONEY_COLUMNS = (
    "invoiced_day",
    "external_day",
    "payments_day",
    "write_offs_day",
    "charges_to_date",
    "payments_to_date",
    "write_offs_to_date",
    "balance",
    "debt_not_due",
    "debt_0_30",
    "debt_31_60",
    "debt_61_90",
    "debt_90_plus",
)


def _report_columns() -> list[sa.Column]:
    return [
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("account_key", sa.String(length=160), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("account_number", sa.String(length=32), nullable=True),
        sa.Column("company_name", sa.String(length=128), nullable=True),
        *[sa.Column(name, sa.Numeric(precision=14, scale=2), nullable=False) for name in MONEY_COLUMNS],
        sa.Column("created_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "billing_csv_file",
        sa.Column("source_url", sa.String(length=512), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_loaded", sa.Integer(), nullable=False),
        sa.Column("rows_duplicate", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("rejects_url", sa.String(length=512), nullable=True),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source_url", name=op.f("pk_billing_csv_file")),
    )
    op.create_table("billing_account_daily", *_report_columns())
    op.create_index("ix_bad_report_date_account", "billing_account_daily", ["report_date", "account_key"])
    op.create_table(
        "billing_account_daily_history",
        sa.Column("snapshot_date", sa.Date(), nullable=False),
        *_report_columns(),
    )
    op.create_index(
        "ix_badh_snapshot_account", "billing_account_daily_history", ["snapshot_date", "account_key"]
    )


def downgrade() -> None:
    op.drop_index("ix_badh_snapshot_account", table_name="billing_account_daily_history")
    op.drop_table("billing_account_daily_history")
    op.drop_index("ix_bad_report_date_account", table_name="billing_account_daily")
    op.drop_table("billing_account_daily")
    op.drop_table("billing_csv_file")
