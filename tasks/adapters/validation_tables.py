"""The validation phase's database side (SPEC §4.6): the previous run's accrual and what has been
billed since (the true-up's inputs), and the run's bua_backtest / bua_trueup rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from sql.schema import VALIDATION_TABLES, metadata
from tasks.adapters.db import insert_frame, read_sql, require_tables, transaction


@dataclass(frozen=True)
class PreviousAccrual:
    """The latest booked run before this run date (None: no earlier run) and its true-up inputs (what-if
    runs are never trued up)."""

    run_date: dt.date | None
    accounts: pl.DataFrame
    accrued: pl.DataFrame
    billed: pl.DataFrame


def previous_run_fingerprint(url: str, run_date: dt.date) -> list[str]:
    """The previous run's rows the true-up reads, as a short content fingerprint (empty: no earlier
    run): no other input fingerprint covers earlier runs' outputs."""
    n, f = pl.Int64, pl.Float64
    schema = {"run_date": pl.Date, "account_rows": n, "net_amount": f, "volume": f, "unbilled_days": n}
    rows = read_sql(url, "validation_previous_fingerprint", {"run_date": run_date}, schema)
    return [str(v) for v in rows.row(0)] if rows.height else []


def read_previous_accrual(url: str, run_date: dt.date) -> PreviousAccrual:
    """The previous run's accounts and monthly lines, and the invoice lines issued since."""
    prev = read_sql(url, "validation_previous_run", {"run_date": run_date}, {"run_date": pl.Date})
    previous = prev["run_date"][0] if prev.height else None
    if previous is None:
        empty = pl.DataFrame()
        return PreviousAccrual(None, empty, empty, empty)
    d, n, f, t = pl.Date, pl.Int64, pl.Float64, pl.Utf8
    accounts = read_sql(
        url,
        "validation_accrued_accounts",
        {"run_date": previous},
        {"account_id": n, "service_type": t, "jurisdiction": t, "customer_class": t, "journal_segment": t,
         "unbilled_from": d, "unbilled_to": d},
    )  # fmt: skip
    accrued = read_sql(
        url,
        "validation_accrued_lines",
        {"run_date": previous},
        {"account_id": n, "year_mnth": n, "volume": f, "supply_net": f, "usage_net": f},
    )
    billed = read_sql(
        url,
        "validation_billed_lines",
        {"since": previous, "run_date": run_date},
        {"account_id": n, "item_type": t, "period_start": d, "period_end": d, "quantity": f,
         "net_amount": f, "discount_amount": f},
    )  # fmt: skip
    return PreviousAccrual(previous, accounts, accrued, billed)


def write_validation(
    url: str, run_id: str, run_date: dt.date, frames: dict[str, pl.DataFrame], scenario: str = ""
) -> dict[str, int]:
    """Replace the run date's (and scenario's) rows of bua_backtest and bua_trueup in one transaction."""
    require_tables(url, VALIDATION_TABLES)
    counts = {}
    with transaction(url) as conn:
        for name in VALIDATION_TABLES:
            tbl = metadata.tables[name]
            conn.execute(tbl.delete().where((tbl.c.run_date == run_date) & (tbl.c.scenario == scenario)))
            df = frames[name].with_columns(
                pl.lit(run_id).alias("run_id"),
                pl.lit(run_date, pl.Date).alias("run_date"),
                pl.lit(scenario).alias("scenario"),
            )
            counts[name] = insert_frame(conn, name, df)
    return counts
