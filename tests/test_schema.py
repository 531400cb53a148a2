"""The schema of SPEC §2/§4.5 on SQLite, MariaDB and PostgreSQL, through `bua db init`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sql.schema import metadata
from tasks.adapters.db import engine_for, init_db

# SPEC §2 names, typed out here from the spec table (not read from sql/schema.py) so a rename fails.
SPEC_COLUMNS = {
    "account": {
        "id",
        "account_number",
        "customer_class",
        "journal_segment_id",
        "service_type",
        "billing_cycle_months",
        "open_date",
        "close_date",
    },
    "site": {"id", "identifier", "service_type", "network_id", "tni_id", "jurisdiction_id"},
    "meter_register": {
        "id",
        "meter_id",
        "suffix",
        "stream",
        "time_class",
        "unit",
        "dial_digits",
        "multiplier",
        "start_date",
        "end_date",
    },
    "plan_rate": {
        "id",
        "plan_id",
        "item_type",
        "time_class",
        "block_limit_per_day",
        "rate",
        "valid_from",
        "valid_to",
    },
    "invoice": {
        "id",
        "account_id",
        "invoice_number",
        "issue_date",
        "period_start",
        "period_end",
        "status",
        "net_amount",
        "gst_amount",
        "due_date",
        "paid_date",
    },
    "tou_window": {"tou_scheme_id", "time_class", "day_type", "start_minute", "end_minute"},
    "invoice_line_item_monthly": {
        "run_id",
        "run_date",
        "account_id",
        "account_number",
        "year_mnth",
        "ili_state",
        "discount_state",
        "plan_item_type_name",
        "feature_type_name",
        "time_class_name",
        "unit",
        "quantity",
        "quantity_actual",
        "quantity_estimated",
        "net_amount",
        "discount_net",
        "discount_net_propensity",
        "gst_amount",
    },
    "bua_exception": {"run_id", "account_id", "meter_register_id", "code", "detail"},
    "estimated_basic_read": {
        "run_id",
        "meter_register_id",
        "read_date",
        "index_value",
        "consumption",
        "method",
    },
}


def _script_heads() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from tasks.adapters.db import SQL_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(SQL_DIR / "migrations"))
    return set(ScriptDirectory.from_config(cfg).get_heads())


def test_db_init_creates_spec_schema_and_is_idempotent(db_url):
    applied = init_db(db_url)
    # a new database is brought to every head of the migration graph (0001 and what builds on it)
    assert set(applied) == _script_heads() and applied
    insp = sa.inspect(engine_for(db_url))
    tables = set(insp.get_table_names())
    assert set(metadata.tables) <= tables
    for table, cols in SPEC_COLUMNS.items():
        have = {c["name"] for c in insp.get_columns(table)}
        assert cols <= have, f"{table} lacks {cols - have}"
    # second run: nothing applied, no schema difference between migrations and metadata
    assert init_db(db_url) == []
    with engine_for(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), metadata)
    assert diff == [], diff


def test_money_keeps_cents_and_dates_round_trip(db_url):
    init_db(db_url)
    eng = engine_for(db_url)
    with eng.begin() as c:
        c.execute(
            sa.text("INSERT INTO jurisdiction (id, code, timezone) VALUES (1, 'NSW', 'Australia/Sydney')")
        )
        c.execute(
            sa.text(
                "INSERT INTO fx_rate (currency, valid_from, rate_to_base) VALUES ('USD', '2025-07-01', 1.52345678)"
            )
        )
    with eng.connect() as c:
        rate = c.execute(sa.text("SELECT rate_to_base FROM fx_rate")).scalar_one()
    assert str(rate).startswith("1.52345678")
