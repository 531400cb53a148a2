"""Warm-up on SQLite, MariaDB and PostgreSQL: every table the extract reads is analysed, then read once
through its primary key and each of its indexes (names from sql/schema.py's naming convention)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tasks.adapters.db import engine_for, init_db
from tasks.adapters.extract import SOURCE_TABLES_USED
from tasks.adapters.warmup import warm_up


def test_warm_up_analyses_and_reads_every_extract_table_and_index(db_url: str) -> None:
    init_db(db_url)
    with engine_for(db_url).begin() as c:
        c.execute(
            sa.text("INSERT INTO jurisdiction (id, code, timezone) VALUES (1, 'NSW', 'Australia/Sydney')")
        )
    started = dt.datetime.now() - dt.timedelta(seconds=2)
    report = warm_up(db_url, progress=lambda s: None)
    analysed = report.filter(report["step"] == "analyze")["table"].to_list()
    assert analysed == list(SOURCE_TABLES_USED)  # 17 tables, in the extract's order
    reads = set(
        zip(*report.filter(report["step"] == "read").select("table", "index").to_dict().values(), strict=True)
    )
    dialect = engine_for(db_url).dialect.name
    if dialect == "postgresql":
        # without pg_prewarm: one sequential read per table
        assert reads == {(t, "PRIMARY") for t in SOURCE_TABLES_USED}
    else:
        assert {("meter", "PRIMARY"), ("meter", "ix_meter_site_id"), ("invoice", "ix_invoice_account_id"),
                ("meter_register", "ix_meter_register_meter_id"), ("plan_rate", "ix_plan_rate_plan_id")} <= reads  # fmt: skip
    if dialect in ("mysql", "mariadb"):
        with engine_for(db_url).connect() as c:
            db = c.execute(sa.text("SELECT DATABASE()")).scalar_one()
            fresh = c.execute(
                sa.text(
                    "SELECT COUNT(*) FROM mysql.innodb_table_stats WHERE database_name = :d AND last_update >= :t"
                ),
                {"d": db, "t": started},
            ).scalar_one()
        assert fresh >= len(SOURCE_TABLES_USED)  # ANALYZE TABLE refreshed every table's persistent statistics
