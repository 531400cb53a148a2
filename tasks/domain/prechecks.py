"""Pre-run checks (SPEC §4.0): is what the month end would read complete and plausible enough to book?

Each check turns figures gathered from the billing database and the meter store into one row:
check, status (PASS, WARN or FAIL), figure, threshold, detail (what was found and what to do). A
FAIL stops the run before anything is written (``force`` overrides, and is recorded); a WARN is
reported and recorded (``accept_warnings=False`` makes it stop the run too). The thresholds are
Settings (``BUA_PRECHECK_*``), documented in docs/METHOD.md "Pre-run checks".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
COLUMNS = {"check": pl.Utf8, "status": pl.Utf8, "figure": pl.Utf8, "threshold": pl.Utf8, "detail": pl.Utf8}


@dataclass(frozen=True)
class Thresholds:
    coverage_pass: float = 0.95  # share of interval registers with data in the 7 days before R
    coverage_fail: float = 0.80
    invoice_warn_days: int = 3  # days since the newest invoice
    invoice_fail_days: int = 10
    stale_basic_warn: float = (
        0.05  # share of basic registers whose last read is older than their cycle allows
    )
    stale_basic_fail: float = 0.25


@dataclass(frozen=True)
class Figures:
    """What the checks look at (gathered by tasks/pipeline/prechecks.py)."""

    run_date: dt.date
    today: dt.date  # in the retailer's timezone
    store_exists: bool
    newest_meter_day: dt.date | None
    interval_registers: int  # in service on R - 1
    covered_registers: int  # of those, with data in R - 7 … R - 1
    basic_registers: int
    stale_basic_registers: int
    open_accounts: int
    newest_invoice: dt.date | None
    plans_without_rates: list[
        str
    ]  # plan codes held on R - 1 with no rate valid that day, or in the period with none
    accounts_on_them: int
    accounts_without_plan: int
    currencies_without_rate: list[str]


def _row(check: str, status: str, figure: object, threshold: str, detail: str) -> dict[str, str]:
    return {"check": check, "status": status, "figure": str(figure), "threshold": threshold, "detail": detail}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def check_run_date(f: Figures) -> dict[str, str]:
    if f.run_date > f.today + dt.timedelta(days=1):
        return _row("run_date", FAIL, f.run_date, f"<= today + 1 ({f.today + dt.timedelta(days=1)})",
                    f"the run date {f.run_date} is in the future; accrue as at a day that has passed")  # fmt: skip
    if f.newest_meter_day is None:
        return _row("run_date", FAIL, "no meter data", "<= newest meter day + 1",
                    "the meter store holds no interval data: check BUA_METER_STORE and ingest the NEM12 files")  # fmt: skip
    limit = f.newest_meter_day + dt.timedelta(days=1)
    if f.run_date > limit:
        return _row("run_date", FAIL, f.run_date, f"<= {limit}",
                    f"the newest meter data is of {f.newest_meter_day}: ingest the data up to "
                    f"{f.run_date - dt.timedelta(days=1)} or run as at {limit} at the latest")  # fmt: skip
    return _row("run_date", PASS, f.run_date, f"<= {limit}", f"meter data up to {f.newest_meter_day}")


def check_meter_coverage(f: Figures, t: Thresholds) -> dict[str, str]:
    threshold = f"PASS >= {_pct(t.coverage_pass)}, FAIL < {_pct(t.coverage_fail)}"
    if not f.store_exists:
        return _row("meter_data_coverage", FAIL, "store missing", threshold,
                    "the meter store does not exist or holds no interval data: check BUA_METER_STORE")  # fmt: skip
    if f.interval_registers == 0:
        return _row("meter_data_coverage", PASS, "no interval registers", threshold, "nothing to cover")
    share = f.covered_registers / f.interval_registers
    status = PASS if share >= t.coverage_pass else FAIL if share < t.coverage_fail else WARN
    detail = (f"{f.covered_registers:,} of {f.interval_registers:,} interval registers in service have data in "
              f"the 7 days before the run date")  # fmt: skip
    if status != PASS:
        detail += "; ingest the missing NEM12 deliveries (or check BUA_METER_STORE) before booking"
    return _row("meter_data_coverage", status, _pct(share), threshold, detail)


def check_basic_reads(f: Figures, t: Thresholds) -> dict[str, str]:
    threshold = f"WARN > {_pct(t.stale_basic_warn)}, FAIL > {_pct(t.stale_basic_fail)}"
    if f.basic_registers == 0:
        return _row("basic_read_age", PASS, "no basic registers", threshold, "nothing to check")
    share = f.stale_basic_registers / f.basic_registers
    status = FAIL if share > t.stale_basic_fail else WARN if share > t.stale_basic_warn else PASS
    detail = (f"{f.stale_basic_registers:,} of {f.basic_registers:,} basic registers have no read within their "
              f"billing cycle plus a month")  # fmt: skip
    if status != PASS:
        detail += "; ingest the NEM13 reads (or check the meter reading schedule)"
    return _row("basic_read_age", status, _pct(share), threshold, detail)


def check_invoices(f: Figures, t: Thresholds) -> dict[str, str]:
    threshold = f"WARN > {t.invoice_warn_days} days, FAIL > {t.invoice_fail_days} days"
    if f.open_accounts == 0:
        return _row("billing_data", FAIL, "no accounts", threshold,
                    "the billing database has no open account: check BUA_DATABASE_URL and the source tables")  # fmt: skip
    if f.newest_invoice is None:
        return _row("billing_data", WARN, "no invoice", threshold, "no invoice issued before the run date")
    age = (f.run_date - f.newest_invoice).days
    status = FAIL if age > t.invoice_fail_days else WARN if age > t.invoice_warn_days else PASS
    detail = f"newest invoice issued {f.newest_invoice}, {age} days before the run date"
    if status != PASS:
        detail += "; billing may be behind (check the invoice runs) — the accrual would include billed days"
    return _row("billing_data", status, f"{age} days", threshold, detail)


def check_plans(f: Figures) -> dict[str, str]:
    if f.plans_without_rates:
        codes = ", ".join(f.plans_without_rates[:5]) + (" …" if len(f.plans_without_rates) > 5 else "")
        return _row("tariffs", FAIL, f"{len(f.plans_without_rates)} plans", "every plan in use has rates",
                    f"plan(s) {codes} have no rate valid on the day before the run date (or none in the accrual period); {f.accounts_on_them:,} "
                    f"accounts hold them and could not be valued: load their rates")  # fmt: skip
    if f.accounts_without_plan:
        return _row("tariffs", WARN, f"{f.accounts_without_plan:,} accounts", "every open account has a plan",
                    "open accounts without a plan: only their volume is accrued (NO_PLAN exceptions)")  # fmt: skip
    return _row(
        "tariffs", PASS, "0", "every open account has a plan with rates", "every plan in use has rates"
    )


def check_currencies(f: Figures) -> dict[str, str]:
    if f.currencies_without_rate:
        return _row("fx_rates", WARN, ", ".join(f.currencies_without_rate), "every currency has an FX rate",
                    "billing records in a currency without an FX rate (not in the accrual; the billing "
                    "aggregation cannot convert them): load fx_rate")  # fmt: skip
    return _row("fx_rates", PASS, "0", "every currency has an FX rate", "every currency has an FX rate")


def evaluate(f: Figures, t: Thresholds) -> pl.DataFrame:
    """The checks' rows, in a fixed order."""
    rows = [
        check_run_date(f),
        check_meter_coverage(f, t),
        check_basic_reads(f, t),
        check_invoices(f, t),
        check_plans(f),
        check_currencies(f),
    ]
    return pl.DataFrame(rows, schema=COLUMNS)


def blocking(checks: pl.DataFrame, accept_warnings: bool) -> pl.DataFrame:
    """The rows that stop the run: FAILs, and WARNs unless warnings are accepted."""
    stop = [FAIL] if accept_warnings else [FAIL, WARN]
    return checks.filter(pl.col("status").is_in(stop))
