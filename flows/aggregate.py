"""Daily billing aggregation flow (SPEC §7.2): pre-checks, per-account report, history, CSV export.

Phases: pre-checks (nothing is written unless all pass; a failure names the check and its figures)
→ read sources → aggregate (tasks/companion/aggregate.py) → write the report and its dated history copy in
one transaction → export CSV split at ``max_rows_per_file`` (tasks/adapters/export.py, shared with the
accrual). ``billing_account_daily`` holds the newest report day only (replaced whole when a day at
least as new is written; a back-fill of an older day only refreshes its history copy);
``billing_account_daily_history`` keeps one dated copy per day for ``aggregate_history_days``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import sqlalchemy as sa
from prefect import flow, get_run_logger, task

from flows.runtime import run_settings
from sql.schema import metadata
from tasks.adapters.db import engine_for, insert_frame, read_sql, transaction
from tasks.adapters.export import export_tables
from tasks.companion import aggregate as agg
from tasks.settings import Settings, join_url

SOURCE_TABLES = ("account", "invoice", "payment", "billing_record")
REPORT_TABLE = "billing_account_daily"
HISTORY_TABLE = "billing_account_daily_history"


class PreCheckFailed(RuntimeError):
    """A pre-check failed: nothing was written."""


def day_bounds_utc(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """Naive-UTC [start, end) of the local calendar day."""
    tz = ZoneInfo(timezone)

    def utc(d: dt.date) -> dt.datetime:
        return dt.datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(dt.UTC).replace(tzinfo=None)

    return utc(day), utc(day + dt.timedelta(days=1))


def report_day(day: dt.date | str | None, timezone: str) -> dt.date:
    """The day asked for, or yesterday in ``timezone``."""
    if isinstance(day, dt.date):
        return day
    if day:
        return dt.date.fromisoformat(day)
    return dt.datetime.now(ZoneInfo(timezone)).date() - dt.timedelta(days=1)


def day_counts(url: str, day: dt.date, timezone: str) -> dict[str, int]:
    start, end = day_bounds_utc(day, timezone)
    df = read_sql(url, "companion_day_counts", {"day": day, "start_utc": start, "end_utc": end})
    return {k: int(v) for k, v in df.row(0, named=True).items()}


@task(name="aggregation-pre-checks")
def pre_checks(settings: Settings, day: dt.date) -> list[agg.CheckResult]:
    """Source tables exist, have rows for the day, counts plausible vs the previous day; else stop."""
    url, tz = settings.db_url, settings.timezone
    present = set(sa.inspect(engine_for(url)).get_table_names())
    missing = [t for t in SOURCE_TABLES if t not in present]
    if missing:
        raise PreCheckFailed(f"pre-check source_tables_exist failed: missing table(s) {', '.join(missing)}")
    today, previous = day_counts(url, day, tz), day_counts(url, day - dt.timedelta(days=1), tz)
    required = list(settings.aggregate_fresh_tables)
    results = [
        agg.CheckResult("source_tables_exist", True, f"{', '.join(SOURCE_TABLES)} present"),
        agg.check_rows_for_day(today, required, day),
        agg.check_counts_within_tolerance(today, previous, required, settings.aggregate_count_tolerance, day),
    ]
    for r in results:
        if not r.ok:
            raise PreCheckFailed(f"pre-check {r.name} failed: {r.detail}")
    return results


@task(name="aggregate-billing-day")
def build_report(settings: Settings, day: dt.date) -> agg.DailyReport:
    url, tz = settings.db_url, settings.timezone
    _, end = day_bounds_utc(day, tz)
    return agg.account_daily(
        day,
        read_sql(url, "companion_agg_accounts", schema=agg.ACCOUNT_SCHEMA),
        read_sql(url, "companion_agg_invoices", {"day": day}, schema=agg.INVOICE_SCHEMA),
        read_sql(url, "companion_agg_payments", {"end_utc": end}, schema=agg.PAYMENT_SCHEMA),
        read_sql(url, "companion_agg_billing_records", {"day": day}, schema=agg.RECORD_SCHEMA),
        tz,
        list(settings.successful_payment_statuses),
        settings.write_off_method,
    )


@task(name="write-billing-report")
def write_report(settings: Settings, rows: pl.DataFrame, day: dt.date, history_days: int) -> dict[str, Any]:
    """Report (if ``day`` is the newest) and history copy of ``day``, old history pruned: one transaction."""
    report, history = metadata.tables[REPORT_TABLE], metadata.tables[HISTORY_TABLE]
    stamped = rows.with_columns(
        pl.lit(dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)).alias("created_at")
    )
    with transaction(settings.db_url) as conn:
        newest = conn.execute(sa.select(sa.func.max(report.c.report_date))).scalar()
        newest = dt.date.fromisoformat(str(newest)[:10]) if newest is not None else None
        current = newest is None or day >= newest
        if current:
            conn.execute(report.delete())
            insert_frame(conn, REPORT_TABLE, stamped)
        conn.execute(history.delete().where(history.c.snapshot_date == day))
        insert_frame(conn, HISTORY_TABLE, stamped.with_columns(pl.lit(day).alias("snapshot_date")))
        keep_from = max(day, newest or day) - dt.timedelta(days=history_days - 1)
        pruned = conn.execute(history.delete().where(history.c.snapshot_date < keep_from)).rowcount
    return {"current": current, "history_pruned_rows": pruned, "history_kept_from": keep_from.isoformat()}


def export_url(settings: Settings, day: dt.date) -> str:
    return join_url(settings.output_url, "export", "billing-daily", day.isoformat())


@flow(name="daily-billing-aggregation")
def daily_billing_aggregation(
    day: str | None = None,
    output_url: str | None = None,
    max_rows_per_file: int | None = None,
    count_tolerance: float | None = None,
    history_days: int | None = None,
) -> dict[str, Any]:
    """Aggregate the billing day (default: yesterday in BUA_TIMEZONE) per account."""
    settings = run_settings(output_url=output_url, aggregate_count_tolerance=count_tolerance)
    logger = get_run_logger()
    the_day = report_day(day, settings.timezone)
    checks = pre_checks(settings, the_day)
    for c in checks:
        logger.info("pre-check %s passed: %s", c.name, c.detail)
    report = build_report(settings, the_day)
    written = write_report(settings, report.rows, the_day, history_days or settings.aggregate_history_days)
    files = export_tables(
        {REPORT_TABLE: report.rows}, export_url(settings, the_day), settings, max_rows_per_file
    )
    if report.bad_payment_amounts:
        logger.warning("%d payment(s) with an unreadable amount were not counted", report.bad_payment_amounts)
    return {
        "day": the_day.isoformat(),
        "rows": report.rows.height,
        "files": files,
        "bad_payment_amounts": report.bad_payment_amounts,
        **written,
    }
