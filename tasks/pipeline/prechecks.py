"""The pre-run checks of a run (SPEC §4.0): the figures gathered from the billing database and the
meter store, graded by tasks/domain/prechecks.py, recorded in ``bua_precheck``. ``bua_monthly``
runs them before any phase and stops on a FAIL; ``bua check`` runs them alone."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl
import sqlalchemy as sa

from sql.schema import metadata
from tasks.adapters.db import engine_for, read_sql, require_tables
from tasks.adapters.meter_store import list_partitions, partition_scan, scan_interval
from tasks.domain.prechecks import Figures, Thresholds, evaluate
from tasks.pipeline.spec import RunSpec, default_run_date
from tasks.settings import Settings

COVERAGE_DAYS = 7


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        coverage_pass=settings.precheck_coverage_pass,
        coverage_fail=settings.precheck_coverage_fail,
        invoice_warn_days=settings.precheck_invoice_warn_days,
        invoice_fail_days=settings.precheck_invoice_fail_days,
        stale_basic_warn=settings.precheck_stale_basic_warn,
        stale_basic_fail=settings.precheck_stale_basic_fail,
    )


def _store(settings: Settings, spec: RunSpec) -> tuple[bool, dt.date | None, pl.DataFrame]:
    """Whether the store holds interval data, its newest day, and the (nmi, suffix) with data in the
    ``COVERAGE_DAYS`` days before the run date (every shard, only the newest months opened)."""
    parts = list_partitions(settings)
    if not parts:
        return False, None, pl.DataFrame(schema={"nmi": pl.Utf8, "suffix": pl.Utf8})
    latest = {shard: parts[(shard, month)] for shard, month in sorted(parts)}  # each shard's last month
    newest = (
        pl.concat([partition_scan(p, settings).select("read_date") for p in latest.values()])
        .select(pl.col("read_date").max())
        .collect()
        .item()
    )
    lo, hi = spec.run_date - dt.timedelta(days=COVERAGE_DAYS), spec.run_date - dt.timedelta(days=1)
    recent = pl.concat(
        [
            scan_interval(settings, s, lo, hi).select("nmi", "suffix").unique().collect()
            for s in range(spec.shards)
        ]
    ).unique()
    return True, newest, recent


PRECHECK_TABLES = (
    "account", "account_site", "site", "meter", "meter_register", "basic_read", "invoice", "plan", "plan_rate",
    "account_plan", "billing_record", "fx_rate",
)  # fmt: skip


PRECHECK_QUERIES: dict[str, dict[str, Any]] = {
    "precheck_interval_registers": {"nmi": pl.Utf8, "suffix": pl.Utf8},
    "precheck_basic_registers": {"meter_register_id": pl.Int64, "billing_cycle_months": pl.Int64,
                                 "last_read": pl.Date},
    "precheck_billing": {"open_accounts": pl.Int64, "newest_invoice": pl.Date},
    "precheck_plans": {"plan_id": pl.Int64, "plan_code": pl.Utf8, "accounts": pl.Int64, "rates": pl.Int64},
    "precheck_plans_period": {"plan_id": pl.Int64, "plan_code": pl.Utf8, "accounts": pl.Int64},
    "precheck_currencies": {"currency": pl.Utf8, "records": pl.Int64},
}  # fmt: skip


def gather(spec: RunSpec, settings: Settings) -> Figures:
    url = settings.db_url
    require_tables(url, PRECHECK_TABLES)  # a clear DatabaseError ("run bua db init") before any query
    last_day = spec.run_date - dt.timedelta(days=1)
    params = {"run_date": spec.run_date, "last_day": last_day, "period_start": spec.period_start}
    # the queries on their own connections at once, beside the store's scans (they wait on the
    # database, not on Python): the checks hold up the whole month end
    with ThreadPoolExecutor(3, thread_name_prefix="bua-precheck") as pool:
        store = pool.submit(_store, settings, spec)
        reads = {
            name: pool.submit(read_sql, url, name, params, schema)
            for name, schema in PRECHECK_QUERIES.items()
        }
        exists, newest, recent = store.result()
        q = {name: f.result() for name, f in reads.items()}
    interval = q["precheck_interval_registers"]
    covered = interval.join(recent, on=["nmi", "suffix"], how="semi").height
    basic = q["precheck_basic_registers"]
    allowed = pl.duration(days=pl.col("billing_cycle_months").fill_null(3) * 31 + 31)
    stale = basic.filter(
        pl.col("last_read").is_null() | (pl.col("last_read") < pl.lit(spec.run_date) - allowed)
    )
    billing, plans = q["precheck_billing"], q["precheck_plans"]
    no_rates = plans.filter(pl.col("plan_id").is_not_null() & (pl.col("rates") == 0))
    # and plans held earlier in the period without any rate in it (e.g. only by accounts closed since)
    unrated = q["precheck_plans_period"]
    no_rates = pl.concat([no_rates.select(unrated.columns), unrated]).unique("plan_id", keep="first")
    no_plan = plans.filter(pl.col("plan_id").is_null())["accounts"].sum()
    currencies = q["precheck_currencies"]
    return Figures(
        run_date=spec.run_date,
        today=default_run_date(settings.timezone),
        store_exists=exists,
        newest_meter_day=newest,
        interval_registers=interval.height,
        covered_registers=covered,
        basic_registers=basic.height,
        stale_basic_registers=stale.height,
        open_accounts=int(billing["open_accounts"][0] or 0),
        newest_invoice=billing["newest_invoice"][0],
        plans_without_rates=sorted(no_rates["plan_code"].fill_null("?").to_list()),
        accounts_on_them=int(no_rates["accounts"].sum()),
        accounts_without_plan=int(no_plan or 0),
        currencies_without_rate=sorted(currencies["currency"].to_list()),
    )


def run_prechecks(spec: RunSpec, settings: Settings) -> pl.DataFrame:
    """The graded checks of the run (tasks/domain/prechecks.py)."""
    return evaluate(gather(spec, settings), thresholds(settings))


def record(spec: RunSpec, settings: Settings, checks: pl.DataFrame) -> None:
    """Replace the run's rows of ``bua_precheck``."""
    tbl = metadata.tables["bua_precheck"]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    rows = [
        {"run_id": spec.run_id, "run_date": spec.run_date, "scenario": spec.scenario, "checked_at": now, **r}
        for r in checks.to_dicts()
    ]
    with engine_for(settings.db_url).begin() as conn:
        conn.execute(
            tbl.delete().where((tbl.c.run_date == spec.run_date) & (tbl.c.scenario == spec.scenario))
        )
        conn.execute(tbl.insert(), rows)


def recorded(settings: Settings, spec: RunSpec) -> pl.DataFrame:
    """The run's checks as recorded (the report's pre-run checks section)."""
    tbl = metadata.tables["bua_precheck"]
    cols = ["check", "status", "figure", "threshold", "detail"]
    with engine_for(settings.db_url).connect() as conn:
        rows = conn.execute(
            sa.select(*(tbl.c[c] for c in cols)).where(
                (tbl.c.run_date == spec.run_date) & (tbl.c.scenario == spec.scenario)
            )
        ).fetchall()
    return pl.DataFrame([tuple(r) for r in rows], schema=dict.fromkeys(cols, pl.Utf8), orient="row")
