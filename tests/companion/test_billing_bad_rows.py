"""Billing CSV rows that no column can hold are refused in Python before the insert, the same on
SQLite, MariaDB and PostgreSQL (issue 17 item 5; docs/BAD-INPUTS.md "Billing CSV"): the good rows
load, each bad row is in the rejects file with file, line, column and reason, a copy of the source
is kept, the source stays, and a database error never shows row values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from tasks.adapters.db import engine_for, init_db, transaction
from tasks.companion.billing_csv import parse_billing_csv
from tasks.companion.billing_ingest import database_refusal, insert_new_records, load_billing_csv
from tasks.settings import load_settings
from tests.companion.test_billing_ingest import FX, HEADER

LONG_NAME = "N" * 100_000
LONG_ID = "I" * 205
TAIL = "AU,Perth,Gas,Supply,2025-03-02,AUD"
LINES = [
    f"G-001,Acme,{TAIL},10.00",  # line 2: good
    f"G-002,{LONG_NAME},{TAIL},1",  # line 3: company_name holds 128 characters
    f"{LONG_ID},Acme,{TAIL},1",  # line 4: id holds 64 characters
    f"G-003,Acme,{TAIL},100000000000000000000",  # line 5: 1e20 written out: 21 digits, DECIMAL(14,2) has 12
    f"G-004,Acme,{TAIL},1e20",  # line 6: not a plain decimal number
    "G-005,Café,AU,Perth,Gas,Supply,2025-03-02,AUD,2.50",  # line 7: written in Latin-1 below (é = 0xE9)
    f"G-006,Zed,{TAIL},999999999999.99",  # line 8: good, the largest DECIMAL(14,2)
    f"G-007,Acme,{TAIL},1.005",  # line 9: three decimal places
    f"g-001,Acme,{TAIL},5",  # line 10: G-001 again, in lower case
    "G-008,Acme,AU,Perth,Gas,Supply,,AUD,1",  # line 11: no bill_date
    "G-009,Café Noir,AU,Perth,Gas,Supply,2025-03-02,AUD,3",  # line 12: good, UTF-8 é
]
REASONS = {  # by hand from the rules in tasks/companion/billing_csv.py
    3: ("company_name", "company_name is 100000 characters, longer than the 128 it holds"),
    4: ("id", "id is 205 characters, longer than the 64 it holds"),
    5: (
        "bill_amount",
        "bill_amount '100000000000000000000' out of range (at most 12 digits before the point: DECIMAL(14,2))",
    ),
    6: ("bill_amount", "non-numeric bill_amount '1e20'"),
    7: ("company_name", "company_name is not UTF-8 text (save the file as UTF-8)"),
    9: ("bill_amount", "bill_amount '1.005' has more than 2 decimal places (DECIMAL(14,2))"),
    10: ("id", "duplicate id g-001 (first at line 2 as G-001)"),
    11: ("bill_date", "missing bill_date"),
}
# loaded: G-001 10.00 + G-006 999,999,999,999.99 + G-009 3.00, all AUD (the reporting currency, rate 1)
LOADED = {"G-001": ("Acme", 10.00), "G-006": ("Zed", 999_999_999_999.99), "G-009": ("Café Noir", 3.00)}


def file_bytes() -> bytes:
    """The lines in UTF-8 except line 7, whose 'Café' is Latin-1 (a file no single decoding reads)."""
    encoded = [line.encode("latin-1" if line.startswith("G-005") else "utf-8") for line in LINES]
    return HEADER.encode() + b"\n".join(encoded) + b"\n"


def test_parse_refuses_each_bad_row_with_its_column_and_reason():
    parsed = parse_billing_csv(file_bytes(), "in/b.csv", FX, "AUD")
    got = {r["line"]: (r["column"], r["reason"]) for r in parsed.rejects.iter_rows(named=True)}
    assert got == REASONS
    assert parsed.accepted["id"].to_list() == ["G-001", "G-006", "G-009"]
    # long values are cut in the rejects: 80 characters and the length
    name = parsed.rejects.filter(pl.col("line") == 3)["company_name"].item()
    assert name == "N" * 80 + "… (100000 characters)"
    assert parsed.rejects.filter(pl.col("line") == 4)["id"].item() == "I" * 80 + "… (205 characters)"


def test_good_rows_load_bad_rows_kept_on_every_database(db_url, tmp_path: Path):
    init_db(db_url)
    settings = load_settings(database_url=db_url, billing_rejects_url=str(tmp_path / "rejects"))
    src = tmp_path / "inbox" / "billing.csv"
    src.parent.mkdir()
    src.write_bytes(file_bytes())

    result = load_billing_csv(str(src), db_url, settings)
    # 11 data lines: 3 loaded, 8 rejected
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_rejected) == ("LOADED", 11, 3, 8)
    with engine_for(db_url).connect() as c:
        rows = c.execute(sa.text("SELECT id, company_name, bill_amount_base FROM billing_record")).all()
    assert {r[0]: (r[1], float(r[2])) for r in rows} == LOADED
    assert all("\ufffd" not in (r[1] or "") for r in rows)

    rejects = pl.read_csv(result.rejects_url, infer_schema=False)
    assert rejects.height == 8
    assert {int(r["line"]): (r["column"], r["reason"]) for r in rejects.iter_rows(named=True)} == REASONS
    assert set(rejects["file"]) == {str(src)}
    # the Latin-1 byte of line 7 is shown escaped, not as U+FFFD
    assert rejects.filter(pl.col("line") == "7")["company_name"].item() == "Caf\\xe9"
    assert max(rejects.select(pl.all().str.len_chars().max()).row(0)) <= 120  # nothing echoed whole
    # the source stays where it was; a byte-identical copy is in the quarantine beside the rejects
    assert src.read_bytes() == file_bytes()
    kept = sorted(p.name for p in (tmp_path / "rejects").iterdir())
    copies = [tmp_path / "rejects" / n for n in kept if not n.endswith(".rejects.csv")]
    assert len(kept) == 2 and kept[0].startswith("billing.csv.") and kept[1] == kept[0] + ".rejects.csv"
    assert len(copies) == 1 and copies[0].read_bytes() == file_bytes()

    again = load_billing_csv(str(src), db_url, settings)  # the same file again: nothing new
    assert (again.rows_loaded, again.rows_duplicate, again.rows_rejected) == (0, 3, 8)


def test_database_refusal_names_no_row_value(db_url):
    """Were a row to reach the database unchecked, its error shows neither the SQL parameters nor
    the values (MariaDB and PostgreSQL refuse a 100,000-character name; SQLite stores it)."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite stores an oversize VARCHAR as it is: nothing to refuse")
    init_db(db_url)
    row = {
        "id": "X-1",
        "company_name": LONG_NAME,
        "country": "AU",
        "city": "Perth",
        "product_line": "Gas",
        "item": "Supply",
        "bill_date": dt.date(2025, 3, 2),
        "currency": "AUD",
        "bill_amount": 1.0,
        "bill_amount_base": 1.0,
    }
    with pytest.raises(sa.exc.DBAPIError) as caught:
        with transaction(db_url) as conn:
            insert_new_records(conn, pl.DataFrame([row]))
    assert "NNNN" not in str(caught.value)  # hide_parameters on every engine
    message = database_refusal("in/b.csv", caught.value)
    assert message.startswith("in/b.csv: the database refused the load, nothing of this file was loaded (")
    assert "NNNN" not in message and "X-1" not in message


@pytest.mark.parametrize("kind", ["sqlite", "mariadb"])
def test_cli_loads_good_rows_and_exits_3(kind: str, tmp_path: Path, prefect_harness: str):
    """`bua ingest billing-csv` as a user runs it (a subprocess, against the session's Prefect API)."""
    from tests.dbservers import fresh_database, server_problem
    from tests.test_cli_errors import bua

    problem = server_problem(kind)
    if problem:
        pytest.skip(problem)
    src = tmp_path / "billing.csv"
    src.write_bytes(file_bytes())
    with fresh_database(kind, tmp_path) as url:
        init_db(url)
        r = bua(
            [
                "--database-url",
                url,
                "ingest",
                "billing-csv",
                str(src),
                "--rejects-url",
                str(tmp_path / "rej"),
            ],
            tmp_path,
            {"PREFECT_API_URL": prefect_harness},
        )
        with engine_for(url).connect() as c:
            ids = sorted(c.execute(sa.text("SELECT id FROM billing_record")).scalars())
    assert r.returncode == 3, r.stderr
    assert (
        f"{src}: 3 loaded, 0 already loaded, 8 rejected (rejects: {tmp_path / 'rej'}/billing.csv." in r.stdout
    )
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith("error: 8 row(s) rejected in 1 file(s), the other rows loaded;")
    )
    assert ids == ["G-001", "G-006", "G-009"]
    assert "NNNNNNNNNN" * 10 not in r.stdout + r.stderr  # the 100,000-character name is never echoed


def test_path_longer_than_the_source_column_is_refused_whole_and_kept(sqlite_url: str, tmp_path: Path):
    init_db(sqlite_url)
    settings = load_settings(database_url=sqlite_url, billing_rejects_url=str(tmp_path / "rejects"))
    deep = tmp_path.joinpath(*["d" * 100] * 5)  # 5 folders of 100 characters: the path is > 512
    deep.mkdir(parents=True)
    src = deep / "billing.csv"
    src.write_bytes(file_bytes())
    result = load_billing_csv(str(src), sqlite_url, settings)
    assert result.status == "REJECTED" and result.reason is not None
    assert result.reason.endswith("…: path longer than 512 characters") and len(result.reason) < 130
    kept = sorted(p.name for p in (tmp_path / "rejects").iterdir())
    assert len(kept) == 2 and kept[1] == kept[0] + ".reason.txt"
    assert (tmp_path / "rejects" / kept[0]).read_bytes() == file_bytes() and src.exists()
    with engine_for(sqlite_url).connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM billing_record")).scalar() == 0
