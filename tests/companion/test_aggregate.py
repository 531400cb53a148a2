"""Daily billing aggregation (SPEC §7.2): figures hand-computed on a small fixture, on three databases.

Report day D = 2025-03-02 in Australia/Sydney (AEDT, UTC+11): the local day is
[2025-03-01 13:00, 2025-03-02 13:00) UTC. Invoices count gross (net + GST).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from flows.aggregate import PreCheckFailed, build_report, daily_billing_aggregation, pre_checks, write_report
from tasks.adapters.db import engine_for
from tasks.companion.aggregate import check_counts_within_tolerance, check_rows_for_day
from tasks.settings import load_settings
from tests.companion.seed import D, T, insert, seed_reference

DAY = D(2025, 3, 2)
INVOICES = [
    # id, account, issue, due, net, gst, status, paid
    (1, 1, D(2024, 12, 1), D(2024, 12, 15), 100, 10, "ISSUED", None),  # 77 days past due -> 61–90: 110
    (2, 1, D(2025, 2, 1), D(2025, 2, 15), 200, 20, "ISSUED", D(2025, 2, 20)),  # paid: not owed
    (3, 1, D(2025, 3, 2), D(2025, 3, 16), 50, 5, "ISSUED", None),  # issued on D, not due: 55
    (4, 2, D(2024, 10, 1), D(2024, 10, 15), 300, 30, "ISSUED", None),  # 138 days -> 90+: 330
    (5, 2, D(2025, 2, 10), D(2025, 2, 24), 40, 4, "ISSUED", None),  # 6 days -> 0–30: 44
    (6, 2, D(2025, 3, 2), D(2025, 3, 16), 1000, 100, "REVERSED", None),  # never counts
    (
        7,
        3,
        D(2025, 1, 1),
        D(2025, 1, 15),
        60,
        6,
        "ISSUED",
        D(2025, 3, 5),
    ),  # paid after D: 46 days -> 31–60: 66
    (8, 3, D(2025, 3, 3), D(2025, 3, 17), 70, 7, "ISSUED", None),  # issued after D: ignored
    (9, 3, D(2025, 3, 1), D(2025, 3, 15), 10, 1, "ISSUED", None),  # not due: 11
    (10, 2, D(2025, 3, 1), D(2025, 3, 15), 20, 2, "ISSUED", None),  # not due: 22
]
PAYMENTS = [
    # id, account, UTC time, amount, status, method
    (1, 1, T(2025, 2, 20, 3), 220, "SUCCESS", "CARD"),  # before D
    (2, 1, T(2025, 3, 1, 13), 30, "SUCCESS", "CARD"),  # 00:00 local on D
    (3, 2, T(2025, 3, 2, 12, 59, 59), 40, "SUCCESS", "BPAY"),  # 23:59:59 local on D
    (4, 2, T(2025, 3, 2, 13), 500, "SUCCESS", "CARD"),  # 00:00 local on D+1: ignored
    (5, 3, T(2025, 3, 1, 12), 20, "SUCCESS", "CARD"),  # 23:00 local on D-1
    (6, 2, T(2025, 3, 2, 2), 300, "SUCCESS", "WRITE_OFF"),  # a write-off on D
    (7, 3, T(2025, 3, 2, 3), 15, "FAILED", "CARD"),  # not successful
    (8, 1, T(2025, 2, 28, 14), 5, "SUCCESS", "CARD"),  # 01:00 local on D-1
    (9, 2, T(2025, 3, 1, 5), 7, "SUCCESS", "CARD"),  # D-1
    (10, 3, T(2025, 3, 1, 6), 8, "SUCCESS", "CARD"),  # D-1
]
RECORDS = [
    ("E1", "Acme Pty Ltd", D(2025, 3, 2), 150.00),
    ("E2", "Acme Pty Ltd", D(2025, 2, 15), 16.02),
    ("E3", "Bolt Co", D(2025, 3, 1), 55.55),
    ("E4", "Bolt Co", D(2025, 3, 2), 33.00),
    ("E5", "Bolt Co", D(2025, 3, 3), 99.00),  # after D: ignored
    ("E6", "Acme Pty Ltd", D(2025, 3, 1), 4.00),
]
COLUMNS = ("account_key", "invoiced_day", "external_day", "payments_day", "write_offs_day", "charges_to_date",
           "payments_to_date", "write_offs_to_date", "balance", "debt_not_due", "debt_0_30", "debt_31_60",
           "debt_61_90", "debt_90_plus")  # fmt: skip
EXPECTED = [
    # charges 110 + 220 + 55 = 385; paid 220 + 30 + 5 = 255; balance 130; not due 55; 61–90 110
    ("A-001", 55.00, 0, 30.00, 0, 385.00, 255.00, 0, 130.00, 55.00, 0, 0, 110.00, 0),
    # charges 330 + 44 + 22 = 396 (invoice 6 reversed); paid 40 + 7 = 47; written off 300;
    #        balance 396 - 47 - 300 = 49; not due 22; 0–30 44; 90+ 330
    ("A-002", 0, 0, 40.00, 300.00, 396.00, 47.00, 300.00, 49.00, 22.00, 44.00, 0, 0, 330.00),
    # charges 66 + 11 = 77; paid 20 + 8 = 28; balance 49; not due 11; 31–60 66
    ("A-003", 0, 0, 0, 0, 77.00, 28.00, 0, 49.00, 11.00, 0, 66.00, 0, 0),
    # external customers: Acme 150 on D, 150 + 16.02 + 4 = 170.02 to date; Bolt 33 on D, 55.55 + 33 = 88.55
    ("EXT:Acme Pty Ltd", 0, 150.00, 0, 0, 170.02, 0, 0, 170.02, 0, 0, 0, 0, 0),
    ("EXT:Bolt Co", 0, 33.00, 0, 0, 88.55, 0, 0, 88.55, 0, 0, 0, 0, 0),
]


def seed_billing_day(url: str) -> None:
    seed_reference(url)
    keys = ("id", "account_id", "issue_date", "due_date", "net_amount", "gst_amount", "status", "paid_date")
    insert(
        url,
        "invoice",
        [
            dict(zip(keys, r, strict=True))
            | {"invoice_number": f"INV{r[0]}", "period_start": r[2], "period_end": r[2]}
            for r in INVOICES
        ],
    )
    keys = ("id", "account_id", "payment_date", "amount", "status", "method")
    insert(url, "payment", [dict(zip(keys, r, strict=True)) for r in PAYMENTS])
    keys = ("id", "company_name", "bill_date", "bill_amount_base")
    insert(
        url,
        "billing_record",
        [dict(zip(keys, r, strict=True)) | {"currency": "AUD", "bill_amount": r[3]} for r in RECORDS],
    )


def _settings(url: str, tmp_path: Path, **extra: object):
    return load_settings(
        database_url=url, output_url=str(tmp_path / "out"), timezone="Australia/Sydney", **extra
    )


def _table(url: str, table: str, order: str = "account_key") -> list[tuple]:
    with engine_for(url).connect() as c:
        rows = c.execute(sa.text(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY {order}")).all()
    return [(r[0], *(float(v) for v in r[1:])) for r in rows]


def test_account_figures_on_three_databases(db_url, tmp_path):
    seed_billing_day(db_url)
    settings = _settings(db_url, tmp_path)
    checks = pre_checks.fn(settings, DAY)
    # counts on D vs D-1: invoice 2 vs 2, payment 4 (2, 3, 6, 7) vs 4 (5, 8, 9, 10), billing_record 2 vs 2
    assert checks[2].detail == "2025-03-02: invoice 2→2, payment 4→4, billing_record 2→2 within ±50%"
    report = build_report.fn(settings, DAY)
    assert report.rows.select(COLUMNS).rows() == EXPECTED
    write_report.fn(settings, report.rows, DAY, 2)
    assert _table(db_url, "billing_account_daily") == EXPECTED
    # the same day again replaces, never duplicates; the history keeps one copy per day
    write_report.fn(settings, report.rows, DAY, 2)
    assert _table(db_url, "billing_account_daily_history") == EXPECTED


def test_history_is_kept_for_the_configured_days_and_backfill_keeps_the_newest_report(sqlite_url, tmp_path):
    seed_billing_day(sqlite_url)
    settings = _settings(sqlite_url, tmp_path)
    rows = build_report.fn(settings, DAY).rows
    for day in (D(2025, 2, 27), D(2025, 2, 28), D(2025, 3, 1), DAY):
        write_report.fn(settings, rows.with_columns(pl.lit(day).alias("report_date")), day, 3)
    older = write_report.fn(
        settings, rows.with_columns(pl.lit(D(2025, 3, 1)).alias("report_date")), D(2025, 3, 1), 3
    )
    assert older["current"] is False
    with engine_for(sqlite_url).connect() as c:
        snaps = c.execute(
            sa.text(
                "SELECT snapshot_date, COUNT(*) FROM billing_account_daily_history GROUP BY snapshot_date ORDER BY 1"
            )
        ).all()
        current = c.execute(sa.text("SELECT DISTINCT report_date FROM billing_account_daily")).scalars().all()
    # 3 days kept back from the newest (2025-03-02): 02-28, 03-01, 03-02; five rows each
    assert [(str(s)[:10], n) for s, n in snaps] == [("2025-02-28", 5), ("2025-03-01", 5), ("2025-03-02", 5)]
    assert [str(d)[:10] for d in current] == ["2025-03-02"]


def test_precheck_figures():
    fail = check_rows_for_day(
        {"invoice": 2, "payment": 0, "billing_record": 1}, ["invoice", "payment", "billing_record"], DAY
    )
    assert (fail.ok, fail.detail) == (
        False,
        "no rows for 2025-03-02 in payment (rows: invoice 2, payment 0, billing_record 1)",
    )
    jump = check_counts_within_tolerance(
        {"payment": 9, "invoice": 2}, {"payment": 4, "invoice": 0}, ["invoice", "payment"], 0.5, DAY
    )
    # (9 - 4) / 4 = +125% > 50%; invoice had no rows the day before: nothing to compare
    assert (jump.ok, jump.detail) == (
        False,
        "2025-03-02: payment 9 rows vs 4 the day before (+125%); tolerance ±50%",
    )


def test_flow_exports_split_files_and_a_failed_precheck_writes_nothing(
    prefect_harness, tmp_path, monkeypatch
):
    url = f"sqlite:///{tmp_path}/bua.db"
    seed_billing_day(url)
    monkeypatch.setenv("BUA_TIMEZONE", "Australia/Sydney")
    monkeypatch.setenv("BUA_DATABASE_URL", url)  # the worker's setting: never a flow parameter
    out = tmp_path / "out"
    result = daily_billing_aggregation(day="2025-03-02", output_url=str(out), max_rows_per_file=2)
    folder = out / "export" / "billing-daily" / "2025-03-02"
    # 5 rows at 2 per file: 2 + 2 + 1
    assert sorted(p.name for p in folder.iterdir()) == [
        f"billing_account_daily-000{i}.csv" for i in (1, 2, 3)
    ]
    parts = [pl.read_csv(folder / f"billing_account_daily-000{i}.csv", infer_schema=False) for i in (1, 2, 3)]
    assert [p.height for p in parts] == [2, 2, 1]
    assert pl.concat(parts)["balance"].cast(pl.Float64).to_list() == [e[8] for e in EXPECTED]
    assert result["rows"] == 5

    # 2025-03-03 (local) has payment 4 plus six new ones = 7 rows; 2025-03-02 had 4 (2, 3, 6, 7): +75% > 50%
    new = [
        dict(
            id=20 + i,
            account_id=1,
            payment_date=T(2025, 3, 2, 14 + i),
            amount=1,
            status="SUCCESS",
            method="CARD",
        )
        for i in range(6)
    ]
    insert(url, "payment", new)
    expected = r"pre-check counts_within_tolerance failed: 2025-03-03: payment 7 rows vs 4 the day before \(\+75%\); tolerance ±50%"
    with pytest.raises(PreCheckFailed, match=expected):
        daily_billing_aggregation(day="2025-03-03", output_url=str(out))
    with engine_for(url).connect() as c:
        days = c.execute(sa.text("SELECT DISTINCT report_date FROM billing_account_daily")).scalars().all()
    assert [str(d)[:10] for d in days] == ["2025-03-02"]
    assert not (out / "export" / "billing-daily" / "2025-03-03").exists()
