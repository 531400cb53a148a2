"""Pre-run checks (SPEC §4.0) graded by hand from figures: each threshold's both sides."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl

from tasks.domain.prechecks import FAIL, PASS, WARN, Figures, Thresholds, blocking, evaluate

R = dt.date(2026, 11, 1)
GOOD = Figures(
    run_date=R, today=dt.date(2026, 12, 6), store_exists=True, newest_meter_day=dt.date(2026, 10, 31),
    interval_registers=1000, covered_registers=990, basic_registers=200, stale_basic_registers=4,
    open_accounts=1500, newest_invoice=dt.date(2026, 10, 31), plans_without_rates=[], accounts_on_them=0,
    accounts_without_plan=0, currencies_without_rate=[],
)  # fmt: skip


def statuses(f: Figures) -> dict[str, str]:
    return dict(evaluate(f, Thresholds()).select("check", "status").iter_rows())


def test_good_inputs_pass_every_check():
    assert set(statuses(GOOD).values()) == {PASS}


def test_run_date_after_the_newest_meter_day_plus_one_fails():
    # data to 31 Oct: R = 1 Nov passes (31 Oct + 1), R = 2 Nov fails
    assert statuses(dataclasses.replace(GOOD, run_date=dt.date(2026, 11, 2)))["run_date"] == FAIL
    future = dataclasses.replace(GOOD, run_date=dt.date(2027, 6, 1))
    row = evaluate(future, Thresholds()).row(0, named=True)
    assert row["status"] == FAIL and "in the future" in row["detail"]
    assert statuses(dataclasses.replace(GOOD, newest_meter_day=None))["run_date"] == FAIL


def test_meter_coverage_thresholds():
    # 950 / 1000 = 95.0 % PASS; 949 → 94.9 % WARN; 800 → 80.0 % WARN; 799 → 79.9 % FAIL
    for covered, status in ((950, PASS), (949, WARN), (800, WARN), (799, FAIL)):
        assert statuses(dataclasses.replace(GOOD, covered_registers=covered))["meter_data_coverage"] == status
    missing = dataclasses.replace(GOOD, store_exists=False, newest_meter_day=None, covered_registers=0)
    checks = evaluate(missing, Thresholds())
    row = checks.filter(pl.col("check") == "meter_data_coverage").row(0, named=True)
    assert row["status"] == FAIL and row["figure"] == "store missing" and "BUA_METER_STORE" in row["detail"]


def test_stale_basic_reads_and_invoice_age_thresholds():
    # 10 / 200 = 5.0 % PASS (not above 5 %); 11 → 5.5 % WARN; 51 → 25.5 % FAIL
    for stale, status in ((10, PASS), (11, WARN), (50, WARN), (51, FAIL)):
        assert statuses(dataclasses.replace(GOOD, stale_basic_registers=stale))["basic_read_age"] == status
    # newest invoice 3 days before R passes, 4 WARN, 11 FAIL
    for days, status in ((3, PASS), (4, WARN), (10, WARN), (11, FAIL)):
        newest = R - dt.timedelta(days=days)
        assert statuses(dataclasses.replace(GOOD, newest_invoice=newest))["billing_data"] == status
    assert statuses(dataclasses.replace(GOOD, open_accounts=0))["billing_data"] == FAIL


def test_a_plan_without_rates_fails_and_accounts_without_plan_warn():
    no_tariff = dataclasses.replace(GOOD, plans_without_rates=["FLAT-NSW"], accounts_on_them=42)
    row = evaluate(no_tariff, Thresholds()).filter(pl.col("check") == "tariffs").row(0, named=True)
    assert row["status"] == FAIL and "FLAT-NSW" in row["detail"] and "42 accounts" in row["detail"]
    assert statuses(dataclasses.replace(GOOD, accounts_without_plan=3))["tariffs"] == WARN
    assert statuses(dataclasses.replace(GOOD, currencies_without_rate=["NZD"]))["fx_rates"] == WARN


def test_blocking_is_fails_or_also_warnings_when_they_are_not_accepted():
    checks = evaluate(
        dataclasses.replace(GOOD, covered_registers=900, plans_without_rates=["X"]), Thresholds()
    )
    assert blocking(checks, accept_warnings=True)["check"].to_list() == ["tariffs"]
    assert blocking(checks, accept_warnings=False)["check"].to_list() == ["meter_data_coverage", "tariffs"]
