"""Prepare (SPEC §4.5): outputs replace a run date atomically on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

from tasks.adapters.db import init_db
from tasks.adapters.prepare import read_outputs, write_outputs

R = dt.date(2026, 11, 1)


def _lines(n_accounts: int, amount: float) -> pl.DataFrame:
    # per account: one SUPPLY row (30 days) and one USAGE row (100 kWh), both in 202610
    ids = list(range(1, n_accounts + 1))
    base = {
        "account_id": ids,
        "account_number": [f"A{i}" for i in ids],
        "year_mnth": [202610] * n_accounts,
        "ili_state": ["UNBILLED_NOT_DUE"] * n_accounts,
        "discount_state": ["NONE"] * n_accounts,
    }
    supply = pl.DataFrame(
        {
            **base,
            "plan_item_type_name": ["DAILY_RETAIL"] * n_accounts,
            "feature_type_name": ["SUPPLY"] * n_accounts,
            "time_class_name": ["ANYTIME"] * n_accounts,
            "unit": ["DAY"] * n_accounts,
            "quantity": [30.0] * n_accounts,
            "quantity_actual": [30.0] * n_accounts,
            "quantity_estimated": [0.0] * n_accounts,
            "net_amount": [30.0] * n_accounts,
            "discount_net": [0.0] * n_accounts,
            "discount_net_propensity": [0.0] * n_accounts,
            "gst_amount": [3.0] * n_accounts,
        }
    )
    usage = supply.with_columns(
        pl.lit("USAGE_RETAIL").alias("plan_item_type_name"),
        pl.lit("USAGE").alias("feature_type_name"),
        pl.lit("KWH").alias("unit"),
        pl.lit(100.0).alias("quantity"),
        pl.lit(60.0).alias("quantity_actual"),
        pl.lit(40.0).alias("quantity_estimated"),
        pl.lit(amount).alias("net_amount"),
        pl.lit(1.25).alias("discount_net"),
        pl.lit(0.625).alias("discount_net_propensity"),
    )
    return pl.concat([supply, usage])


def _summary(n_accounts: int) -> pl.DataFrame:
    ids = list(range(1, n_accounts + 1))
    return pl.DataFrame(
        {
            "account_id": ids,
            "account_number": [f"A{i}" for i in ids],
            "service_type": ["ELECTRICITY"] * n_accounts,
            "jurisdiction": ["NSW" if i % 2 else "VIC" for i in ids],
            "network": ["AUSGRID"] * n_accounts,
            "journal_segment": ["RESIDENTIAL"] * n_accounts,
            "customer_class": ["RES"] * n_accounts,
            "billing_cycle_months": [1] * n_accounts,
            "billed_to": [dt.date(2026, 9, 30)] * n_accounts,
            "unbilled_from": [dt.date(2026, 10, 1)] * n_accounts,
            "unbilled_to": [dt.date(2026, 10, 31)] * n_accounts,
            "unbilled_days": [31] * n_accounts,
            "ili_state": ["UNBILLED_NOT_DUE"] * n_accounts,
            "estimation_method": ["INTERVAL"] * n_accounts,
            "volume": [100.0] * n_accounts,
            "volume_actual": [60.0] * n_accounts,
            "volume_estimated": [40.0] * n_accounts,
            "net_amount": [55.5] * n_accounts,
            "discount_net": [1.25] * n_accounts,
            "discount_net_propensity": [0.63] * n_accounts,
            "net_amount_less_discount": [54.87] * n_accounts,
            "exception_count": [0] * n_accounts,
        }
    )


def _exceptions() -> pl.DataFrame:
    return pl.DataFrame(
        {"account_id": [1], "meter_register_id": [None], "code": ["NO_PLAN"], "detail": ["x"]},
        schema_overrides={"meter_register_id": pl.Int64},
    )


def test_prepare_replaces_run_date_and_computes_accrual_summary(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_db(db_url)
    _check_read_sql(db_url, monkeypatch)
    run = {
        "period_start": dt.date(2025, 11, 1),
        "period_end": dt.date(2026, 10, 31),
        "status": "COMPLETED",
        "started_at": dt.datetime(2026, 11, 1, 2),
        "finished_at": dt.datetime(2026, 11, 1, 2, 5),
        "parameters": {"basic_method": "seasonal"},
        "code_version": "test",
    }
    # first run: 600 accounts (bulk path), usage $25.00 each
    write_outputs(
        db_url,
        "run-1",
        R,
        {
            "invoice_line_item_monthly": _lines(600, 25.0),
            "bua_account_summary": _summary(600),
            "bua_exception": _exceptions(),
        },
        run,
    )
    # second run of the same date: 300 accounts, usage $25.50 → only the second run's rows remain
    counts = write_outputs(
        db_url,
        "run-2",
        R,
        {
            "invoice_line_item_monthly": _lines(300, 25.5),
            "bua_account_summary": _summary(300),
            "bua_exception": _exceptions(),
        },
        run,
    )
    assert counts["invoice_line_item_monthly"] == 600
    # the run rows are written in the same transaction, typed like the table (one per run id)
    runs = _runs(db_url)
    assert sorted(runs) == ["run-1", "run-2"]
    assert runs["run-2"]["started_at"] == dt.datetime(2026, 11, 1, 2)
    assert runs["run-2"]["finished_at"] == dt.datetime(2026, 11, 1, 2, 5)
    assert runs["run-2"]["run_date"] == R and runs["run-2"]["parameters"] == '{"basic_method": "seasonal"}'
    out = read_outputs(db_url, R)
    ilim = out["invoice_line_item_monthly"]
    assert ilim.height == 600 and set(ilim["run_id"]) == {"run-2"}
    assert out["bua_exception"].height == 1
    s = out["accrual_summary"].sort("state", "feature_type_name")
    # 300 accounts: 150 NSW (odd ids), 150 VIC. NSW USAGE: 150 × 25.50 = 3825.00, volume 150 × 100 = 15000;
    # discount_net 150 × 1.25 = 187.50 (the propensity column is stored at the database's own scale, so only its identity is checked)
    nsw_usage = s.filter((pl.col("state") == "NSW") & (pl.col("feature_type_name") == "USAGE")).row(
        0, named=True
    )
    assert nsw_usage["net_amount"] == Decimal("3825.00")
    assert nsw_usage["volume"] == Decimal("15000.000")
    assert nsw_usage["accounts"] == 150 and nsw_usage["days"] == 0
    assert nsw_usage["discount_net"] == Decimal("187.50")
    assert (
        nsw_usage["net_amount_less_discount"]
        == nsw_usage["net_amount"] - nsw_usage["discount_net_propensity"]
    )
    nsw_supply = s.filter((pl.col("state") == "NSW") & (pl.col("feature_type_name") == "SUPPLY")).row(
        0, named=True
    )
    # days = 150 accounts × 30 days = 4500; volume counts only USAGE_RETAIL → 0
    assert (nsw_supply["days"], nsw_supply["volume"], nsw_supply["net_amount"]) == (
        4500,
        Decimal("0.000"),
        Decimal("4500.00"),
    )
    assert s.height == 4 and set(s["run_id"]) == {"run-2"}

    # a failing write (NOT NULL violated in the last table) leaves the previous run's rows untouched
    bad = _summary(2).with_columns(
        pl.lit(None, pl.String).alias("ili_state")
    )  # NOT NULL column → the insert fails
    with pytest.raises(Exception):  # noqa: B017 — the driver's own integrity error type differs per database
        write_outputs(
            db_url, "run-3", R, {"invoice_line_item_monthly": _lines(3, 30.0), "bua_account_summary": bad}
        )
    after = read_outputs(db_url, R)
    assert after["invoice_line_item_monthly"].height == 600 and set(
        after["invoice_line_item_monthly"]["run_id"]
    ) == {"run-2"}
    assert after["accrual_summary"].height == 4


def _runs(db_url: str) -> dict[str, dict]:
    import sqlalchemy as sa

    from sql.schema import metadata
    from tasks.adapters.db import engine_for

    tbl = metadata.tables["bua_run"]
    with engine_for(db_url).connect() as c:
        return {r.run_id: r._asdict() for r in c.execute(sa.select(tbl))}


def _check_read_sql(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """sql/plan_rates.sql read with explicit types; connectorx (PostgreSQL/MariaDB) equals SQLAlchemy."""
    import sqlalchemy as sa

    import tasks.adapters.db as db
    from tasks.adapters.extract import SCHEMAS

    with db.transaction(db_url) as c:
        c.execute(sa.text("INSERT INTO plan (id, code, name, service_type, tou_scheme_id, holidays_as_weekend) "
                          "VALUES (1, 'P1', 'Plan 1', 'ELECTRICITY', NULL, TRUE)"))  # fmt: skip
        c.execute(sa.text("INSERT INTO plan_rate (plan_id, item_type, time_class, block_limit_per_day, rate, valid_from, valid_to) "
                          "VALUES (1, 'USAGE', 'ANYTIME', 10.5, 0.287654, '2025-07-01', '2026-06-30'), "
                          "(1, 'USAGE', 'ANYTIME', NULL, 0.3, '2026-07-01', NULL), "
                          "(1, 'SUPPLY', 'ANYTIME', NULL, 1.1, '2020-01-01', '2024-12-31')"))  # fmt: skip
    params = {"period_start": dt.date(2025, 11, 1), "period_end": dt.date(2026, 10, 31)}
    fast = db.read_sql(db_url, "plan_rates", params, SCHEMAS["plan_rates"], sqlite_connectorx=True).sort(
        "valid_from"
    )
    # connectorx reads the query on every database (SQLite files when asked, as extract does)
    # (a SQLite file only ever in a child process: connectorx's own SQLite must not open it here)
    jobs = {"plan_rates": (db.sql_text("plan_rates"), params)}
    reads = (
        db._in_child(db._connectorx_reads, db_url, jobs, 1)
        if "sqlite" in db_url
        else db._connectorx_reads(db_url, jobs, 1)
    )
    assert reads["plan_rates"] is not None
    monkeypatch.setattr(db, "_read_connectorx", lambda *a: None)
    slow = db.read_sql(db_url, "plan_rates", params, SCHEMAS["plan_rates"]).sort("valid_from")
    assert fast.equals(slow)
    # the 2020–2024 supply rate ends before period_start: not read
    assert fast.select("rate", "block_limit_per_day", "valid_from", "valid_to").rows() == [
        (0.287654, 10.5, dt.date(2025, 7, 1), dt.date(2026, 6, 30)),
        (0.3, None, dt.date(2026, 7, 1), None),
    ]
