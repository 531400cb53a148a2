"""Unbilled window per account (SPEC §4.1), each case with its dates worked out."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.domain.unbilled import account_days, unbilled_windows

D = dt.date
R = D(2026, 11, 1)
PERIOD_START = D(2025, 11, 1)
PERIOD_END = D(2026, 10, 31)


def _accounts(**over: object) -> pl.DataFrame:
    row = {
        "account_id": 1,
        "billing_cycle_months": 1,
        "open_date": D(2024, 1, 1),
        "close_date": None,
        "site_start": D(2024, 1, 1),
        "site_end": None,
    }
    row.update(over)
    return pl.DataFrame(
        [row],
        schema={
            "account_id": pl.Int64,
            "billing_cycle_months": pl.Int64,
            "open_date": pl.Date,
            "close_date": pl.Date,
            "site_start": pl.Date,
            "site_end": pl.Date,
        },
    )


def _invoices(*rows: tuple[D, D, str]) -> pl.DataFrame:
    """(issue_date, period_end, status) for account 1."""
    return pl.DataFrame(
        {
            "account_id": [1] * len(rows),
            "issue_date": [r[0] for r in rows],
            "period_end": [r[1] for r in rows],
            "status": [r[2] for r in rows],
        },
        schema={"account_id": pl.Int64, "issue_date": pl.Date, "period_end": pl.Date, "status": pl.String},
    )


def _one(accounts: pl.DataFrame, invoices: pl.DataFrame) -> dict:
    windows, _ = unbilled_windows(accounts, invoices, R, PERIOD_START, PERIOD_END, grace_days=7)
    assert windows.height == 1
    return windows.row(0, named=True)


def test_never_billed_starts_at_open_date() -> None:
    # opened 2026-10-10, no invoice: billed_to = 2026-10-09; unbilled 10-10..10-31 = 22 days;
    # next bill due 2026-11-09 + 7 = 2026-11-16 >= R → not due
    w = _one(_accounts(open_date=D(2026, 10, 10), site_start=D(2026, 10, 10)), _invoices())
    assert w["billed_to"] == D(2026, 10, 9)
    assert (w["unbilled_from"], w["unbilled_to"], w["unbilled_days"]) == (
        D(2026, 10, 10),
        D(2026, 10, 31),
        22,
    )
    assert w["ili_state"] == "UNBILLED_NOT_DUE"


def test_billed_mid_month() -> None:
    # billed to 2026-10-14: unbilled 10-15..10-31 = 17 days; due 11-14 + 7 = 11-21 → not due
    w = _one(_accounts(), _invoices((D(2026, 10, 20), D(2026, 10, 14), "ISSUED")))
    assert (w["unbilled_from"], w["unbilled_days"], w["ili_state"]) == (
        D(2026, 10, 15),
        17,
        "UNBILLED_NOT_DUE",
    )


def test_reversed_invoice_is_ignored() -> None:
    # the REVERSED bill to 10-14 does not count: billed_to stays 09-30 → 31 October days
    w = _one(
        _accounts(),
        _invoices((D(2026, 10, 5), D(2026, 9, 30), "ISSUED"), (D(2026, 10, 20), D(2026, 10, 14), "REVERSED")),
    )
    assert (w["billed_to"], w["unbilled_days"]) == (D(2026, 9, 30), 31)


def test_invoice_issued_on_or_after_run_date_is_ignored() -> None:
    w = _one(
        _accounts(), _invoices((D(2026, 10, 5), D(2026, 9, 30), "ISSUED"), (R, D(2026, 10, 31), "ISSUED"))
    )
    assert w["billed_to"] == D(2026, 9, 30)


def test_quarterly_not_yet_due() -> None:
    # quarterly, billed to 2026-08-31: next bill 2026-11-30 + 7 = 12-07 >= R → not due; 61 days
    w = _one(_accounts(billing_cycle_months=3), _invoices((D(2026, 9, 3), D(2026, 8, 31), "ISSUED")))
    assert (w["unbilled_days"], w["next_bill_due"], w["ili_state"]) == (
        61,
        D(2026, 12, 7),
        "UNBILLED_NOT_DUE",
    )


def test_monthly_overdue() -> None:
    # monthly, billed to 2026-08-31: next bill 09-30 + 7 = 10-07 < R and no bill since → overdue
    w = _one(_accounts(), _invoices((D(2026, 9, 3), D(2026, 8, 31), "ISSUED")))
    assert (w["unbilled_days"], w["ili_state"]) == (61, "UNBILLED_OVERDUE")


def test_grace_boundary_due_exactly_on_run_date_is_not_due() -> None:
    # billed to 2026-09-25: 10-25 + 7 = 11-01 = R → due on R → not due
    w = _one(_accounts(), _invoices((D(2026, 9, 28), D(2026, 9, 25), "ISSUED")))
    assert w["ili_state"] == "UNBILLED_NOT_DUE"


def test_closed_without_final_bill() -> None:
    # closed 2026-10-20, billed to 09-30: unbilled 10-01..10-20 = 20 days, final bill outstanding
    w = _one(_accounts(close_date=D(2026, 10, 20)), _invoices((D(2026, 10, 2), D(2026, 9, 30), "ISSUED")))
    assert (w["unbilled_to"], w["unbilled_days"], w["ili_state"]) == (D(2026, 10, 20), 20, "FINAL_UNBILLED")


def test_closed_and_finally_billed_has_no_window() -> None:
    windows, _ = unbilled_windows(
        _accounts(close_date=D(2026, 10, 20)),
        _invoices((D(2026, 10, 25), D(2026, 10, 20), "ISSUED")),
        R,
        PERIOD_START,
        PERIOD_END,
    )
    assert windows.height == 0


def test_move_in_after_period_start_starts_at_site_start() -> None:
    # account opened long ago but moved into this site on 2026-10-18: 10-18..10-31 = 14 days
    w = _one(_accounts(site_start=D(2026, 10, 18)), _invoices((D(2026, 10, 2), D(2026, 9, 30), "ISSUED")))
    assert (w["unbilled_from"], w["unbilled_days"]) == (D(2026, 10, 18), 14)


def test_stale_beyond_look_back_is_capped_with_exception() -> None:
    # billed to 2025-06-30: unbilled since 2025-07-01, capped at period_start 2025-11-01 →
    # 365 days accrued (2025-11-01..2026-10-31); 123 days (Jul 31 + Aug 31 + Sep 30 + Oct 31) left out
    windows, exc = unbilled_windows(
        _accounts(), _invoices((D(2025, 7, 5), D(2025, 6, 30), "ISSUED")), R, PERIOD_START, PERIOD_END
    )
    w = windows.row(0, named=True)
    assert (w["unbilled_from"], w["unbilled_days"], w["ili_state"]) == (PERIOD_START, 365, "UNBILLED_OVERDUE")
    assert exc["code"].to_list() == ["STALE_UNBILLED"]
    assert "123 day(s)" in exc["detail"][0]


def test_account_days_month_keys() -> None:
    windows = pl.DataFrame(
        {"account_id": [1], "unbilled_from": [D(2026, 9, 29)], "unbilled_to": [D(2026, 10, 2)]}
    )
    days = account_days(windows)
    assert days["year_mnth"].to_list() == [202609, 202609, 202610, 202610]
