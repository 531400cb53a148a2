"""Billing CSV ingest (SPEC §7.1): conversion, rejects, idempotency on id on all three databases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from tasks.adapters.db import engine_for, init_db
from tasks.companion.billing_csv import BillingCsvError, parse_billing_csv
from tasks.companion.billing_ingest import load_billing_csv, load_fx_rates
from tasks.settings import load_settings

HEADER = "id,company_name,country,city,product_line,item,bill_date,currency,bill_amount\n"
ROWS = (
    "B-001,Acme,US,Austin,Solar,Panel,2025-02-15,USD,100.00\n"  # line 2: USD rate of 2025-01-01 (1.50) -> 150.00
    "B-002,Acme,US,Austin,Solar,Panel,2025-03-01,usd,10.01\n"  # line 3: rate from 2025-03-01 (1.60): 16.016 -> 16.02
    "B-003,Bolt,AU,Sydney,Gas,Supply,2025-03-02,AUD,55.55\n"  # line 4: reporting currency at 1 -> 55.55
    "B-004,Crux,FR,Paris,Solar,Panel,2025-03-02,EUR,20\n"  # line 5: 20 * 1.65 = 33.00
    "B-005,Dyne,UK,Leeds,Solar,Panel,2025-03-02,GBP,5\n"  # line 6: unknown currency
    "B-006,Acme,US,Austin,Solar,Panel,2025-02-30,USD,5\n"  # line 7: bad date
    "B-007,Acme,US,Austin,Solar,Panel,2025-03-02,USD,abc\n"  # line 8: non-numeric amount
    "B-008,Acme,US,Austin,Solar,Panel,2024-12-31,USD,1\n"  # line 9: no USD rate before 2025-01-01
)
FX = pl.DataFrame(
    {
        "currency": ["USD", "USD", "EUR"],
        "valid_from": [dt.date(2025, 1, 1), dt.date(2025, 3, 1), dt.date(2025, 1, 1)],
        "rate_to_base": [1.50, 1.60, 1.65],
    }
)
# accepted: 150.00 + 16.02 + 55.55 + 33.00 = 254.57
EXPECTED_BASE = {"B-001": 150.00, "B-002": 16.02, "B-003": 55.55, "B-004": 33.00}


def _records(url: str) -> dict[str, tuple[float, float]]:
    with engine_for(url).connect() as c:
        rows = c.execute(sa.text("SELECT id, bill_amount, bill_amount_base FROM billing_record")).all()
    return {r[0]: (float(r[1]), float(r[2])) for r in rows}


def test_parse_picks_rate_valid_on_bill_date_and_names_line_and_reason():
    parsed = parse_billing_csv((HEADER + ROWS).encode(), "in/b.csv", FX, "AUD")
    assert dict(zip(parsed.accepted["id"], parsed.accepted["bill_amount_base"], strict=True)) == EXPECTED_BASE
    reasons = dict(zip(parsed.rejects["line"], parsed.rejects["reason"], strict=True))
    assert reasons == {
        6: "unknown currency 'GBP'",
        7: "bad bill_date '2025-02-30' (expected YYYY-MM-DD)",
        8: "non-numeric bill_amount 'abc'",
        9: "no fx rate for USD valid on 2024-12-31",
    }
    # the original row is kept as it was written
    assert parsed.rejects.filter(pl.col("line") == 8)["bill_amount"].item() == "abc"


def test_parse_rejects_repeated_id_and_missing_columns():
    text = HEADER + "X1,A,US,B,P,I,2025-03-02,AUD,1\n\nX1,A,US,B,P,I,2025-03-02,AUD,2\n"
    parsed = parse_billing_csv(text.encode(), "f.csv", FX, "AUD")
    assert parsed.accepted["bill_amount"].to_list() == [1.0]
    # the blank line 3 keeps its number
    assert parsed.rejects.select("line", "reason").rows() == [(4, "duplicate id X1 (first at line 2)")]
    with pytest.raises(BillingCsvError, match=r"f.csv: line 1: missing column\(s\) currency, bill_amount"):
        parse_billing_csv(b"id,company_name,country,city,product_line,item,bill_date\n", "f.csv", FX, "AUD")


def test_reupload_inserts_nothing_twice(db_url, tmp_path: Path):
    init_db(db_url)
    load_fx_rates(db_url, FX)
    settings = load_settings(database_url=db_url, billing_rejects_url=str(tmp_path / "rejects"))
    src = tmp_path / "inbox" / "billing-2025-03-02.csv"
    src.parent.mkdir()
    src.write_text(HEADER + ROWS)

    first = load_billing_csv(str(src), db_url, settings)
    assert (first.status, first.rows_read, first.rows_loaded, first.rows_duplicate, first.rows_rejected) == (
        "LOADED",
        8,
        4,
        0,
        4,
    )
    assert {k: v[1] for k, v in _records(db_url).items()} == EXPECTED_BASE
    rejects = pl.read_csv(first.rejects_url, infer_schema=False)
    assert rejects["line"].to_list() == ["6", "7", "8", "9"]
    assert rejects.columns[:5] == ["file", "line", "column", "reason", "id"]
    assert rejects["column"].to_list() == ["currency", "bill_date", "bill_amount", "currency"]
    assert rejects["file"].unique().to_list() == [str(src)]

    again = load_billing_csv(str(src), db_url, settings)
    assert (again.rows_loaded, again.rows_duplicate, again.rows_rejected) == (0, 4, 4)
    assert len(_records(db_url)) == 4

    # a later file repeating B-001 with another amount: B-001 keeps its first version, B-009 loads
    later = tmp_path / "inbox" / "billing-2025-03-03.csv"
    later.write_text(
        HEADER
        + "B-001,Acme,US,Austin,Solar,Panel,2025-02-15,USD,999\nB-009,Bolt,AU,Sydney,Gas,Supply,2025-03-03,AUD,1.10\n"
    )
    third = load_billing_csv(str(later), db_url, settings)
    assert (third.rows_loaded, third.rows_duplicate) == (1, 1)
    records = _records(db_url)
    assert records["B-001"] == (100.00, 150.00)
    assert records["B-009"] == (1.10, 1.10)
    assert sum(v[1] for v in records.values()) == pytest.approx(254.57 + 1.10)
    with engine_for(db_url).connect() as c:
        files = c.execute(
            sa.text(
                "SELECT source_url, rows_loaded, rows_duplicate FROM billing_csv_file ORDER BY source_url"
            )
        ).all()
    assert [(Path(f[0]).name, f[1], f[2]) for f in files] == [
        ("billing-2025-03-02.csv", 0, 4),
        ("billing-2025-03-03.csv", 1, 1),
    ]


def test_unreadable_file_is_rejected_whole_and_kept(sqlite_url, tmp_path: Path):
    init_db(sqlite_url)
    settings = load_settings(database_url=sqlite_url, billing_rejects_url=str(tmp_path / "rejects"))
    src = tmp_path / "bad.csv"
    src.write_text("id,amount\n1,2\n")
    result = load_billing_csv(str(src), sqlite_url, settings)
    assert result.status == "REJECTED"
    assert (
        result.reason
        == f"{src}: line 1: missing column(s) company_name, country, city, product_line, item, bill_date, currency, bill_amount"
    )
    kept = sorted(p.name for p in (tmp_path / "rejects").iterdir())
    assert len(kept) == 2 and kept[0].startswith("bad.csv.") and kept[1].endswith(".reason.txt")
    assert (tmp_path / "rejects" / kept[0]).read_text() == "id,amount\n1,2\n"
