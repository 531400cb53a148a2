"""estimates as the market writes them, and weather (issue 15)

- ``estimated_basic_read.method_flag``: the AEMO method flag of each estimated index (SPEC §4.3);
- ``basic_read.update_datetime``: the NEM13 record's UpdateDateTime, so that across files the
  latest update wins (SPEC §3, as for NEM12);
- ``weather_daily``: daily observations per station (SPEC §2, §4.3).

Columns are added nullable (rows written before this migration have none), so the same
``add_column`` works on SQLite, MariaDB and PostgreSQL without rebuilding a table.

Revision ID: 0005_estimates_weather
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_estimates_weather"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("estimated_basic_read", sa.Column("method_flag", sa.String(length=2), nullable=True))
    op.add_column("basic_read", sa.Column("update_datetime", sa.DateTime(), nullable=True))
    op.create_table(
        "weather_daily",
        sa.Column("jurisdiction_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=16), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("min_temp_c", sa.Numeric(precision=5, scale=1), nullable=True),
        sa.Column("max_temp_c", sa.Numeric(precision=5, scale=1), nullable=True),
        sa.ForeignKeyConstraint(
            ["jurisdiction_id"],
            ["jurisdiction.id"],
            name=op.f("fk_weather_daily_jurisdiction_id_jurisdiction"),
        ),
        sa.PrimaryKeyConstraint("station_id", "date", name=op.f("pk_weather_daily")),
    )


def downgrade() -> None:
    op.drop_table("weather_daily")
    with op.batch_alter_table("basic_read") as batch:
        batch.drop_column("update_datetime")
    with op.batch_alter_table("estimated_basic_read") as batch:
        batch.drop_column("method_flag")
