"""Extraction reads on SQLite through connectorx: same frames as the SQLAlchemy path."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

import tasks.adapters.db as db
from tasks.adapters.extract import SCHEMAS

R = dt.date(2026, 11, 1)
PARAMS = {"run_date": R, "history_start": R - dt.timedelta(days=400)}


def _db_with_reads(tmp_path: Path, values: list[object]) -> str:
    url = f"sqlite:///{tmp_path}/bua.db"
    db.init_db(url)
    db.engine_for(url).dispose()
    con = sqlite3.connect(tmp_path / "bua.db")  # raw inserts: SQLite keeps each value's own kind
    con.executemany(
        "INSERT INTO basic_read (meter_register_id, read_date, index_value, quality) VALUES (?, ?, ?, 'A')",
        [(7, f"2026-0{i + 1}-15", v) for i, v in enumerate(values)],
    )
    con.commit()
    con.close()
    return url


def _both(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str], bool]:
    schema = SCHEMAS["basic_reads"]
    fast = db.read_sql(url, "basic_reads", PARAMS, schema, sqlite_connectorx=True).sort("read_date")
    jobs = {"basic_reads": (db.sql_text("basic_reads"), PARAMS)}
    used = (
        db._in_child(db._connectorx_reads, url, jobs, 1)["basic_reads"] is not None
    )  # never in this process
    with monkeypatch.context() as m:
        m.setattr(db, "_read_connectorx", lambda *a: None)
        slow = db.read_sql(url, "basic_reads", PARAMS, schema).sort("read_date")
    assert fast.equals(slow)
    return fast["index_value"].to_list(), slow["index_value"].to_list(), used


def test_numeric_index_read_as_text_like_sqlite3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # NUMERIC affinity stores 12 as the integer 12 (sqlite3 gives "12") and 7.5 as a real ("7.5");
    # connectorx reads the column as f64 (12.0), which must still come out as "12"
    fast, slow, used = _both(_db_with_reads(tmp_path, [7.5, 12, -3]), monkeypatch)
    assert used
    assert fast == slow == ["7.5", "12", "-3"]


def test_mixed_kinds_fall_back_to_sqlalchemy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 5 (integer) then -5.25 (real) then 'abc' (text): connectorx refuses the column, SQLAlchemy reads
    # it, and the bad value keeps its text for the NEGATIVE_READ message
    fast, slow, used = _both(_db_with_reads(tmp_path, [5, -5.25, "abc"]), monkeypatch)
    assert not used
    assert fast == slow == ["5", "-5.25", "abc"]


def test_read_sql_many_gives_read_sql_frames_and_falls_back_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two queries: basic_reads with mixed kinds (connectorx refuses it, SQLAlchemy reads it in this
    # process afterwards) and tou_windows (empty table: connectorx reads it, in a child process);
    # each frame equals read_sql's
    url = _db_with_reads(tmp_path, [5, -5.25, "abc"])
    events: list[str] = []
    sa_read = db._read_sqlalchemy

    def slow(*args: object) -> object:
        events.append("sqlalchemy")
        return sa_read(*args)

    monkeypatch.setattr(db, "_read_sqlalchemy", slow)
    queries = {"basic_reads": (PARAMS, SCHEMAS["basic_reads"]), "tou_windows": ({}, SCHEMAS["tou_windows"])}
    many = db.read_sql_many(url, queries, sqlite_connectorx=True, threads=2)
    assert list(many) == ["basic_reads", "tou_windows"]
    assert events == ["sqlalchemy"]  # only basic_reads fell back
    monkeypatch.undo()
    for name, (params, schema) in queries.items():
        assert many[name].equals(db.read_sql(url, name, params, schema, sqlite_connectorx=True))
    assert many["basic_reads"]["index_value"].to_list() == ["5", "-5.25", "abc"]
    assert many["tou_windows"].height == 0


def test_sqlite_connectorx_reads_run_in_a_child_process_and_a_concurrent_writer_is_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # connectorx carries its own SQLite: in this process its close would remove the WAL under a
    # sqlite3 writer in another thread (the run lock's heartbeat) and corrupt the file. The reads
    # therefore run in a child: connectorx.read_sql broken here changes nothing, and a writer
    # thread hammering the same file during three reads leaves it intact.
    import sqlite3
    import threading

    import connectorx

    url = _db_with_reads(tmp_path, [7.5, 12, -3])

    def broken(*a: object, **k: object) -> object:
        raise AssertionError("connectorx must not read a SQLite file in this process")

    monkeypatch.setattr(connectorx, "read_sql", broken)
    path = url.removeprefix("sqlite:///")
    stop = threading.Event()

    def writer() -> None:
        conn = sqlite3.connect(path, timeout=30)
        conn.execute("CREATE TABLE IF NOT EXISTS beat (n INTEGER)")
        n = 0
        while not stop.is_set():
            conn.execute("INSERT INTO beat VALUES (?)", (n,))
            conn.commit()
            n += 1
        conn.close()

    t = threading.Thread(target=writer)
    t.start()
    try:
        queries = {
            "basic_reads": (PARAMS, SCHEMAS["basic_reads"]),
            "tou_windows": ({}, SCHEMAS["tou_windows"]),
        }
        for _ in range(3):
            many = db.read_sql_many(url, queries, sqlite_connectorx=True, threads=2)
            assert many["basic_reads"]["index_value"].to_list() == ["7.5", "12", "-3"]
    finally:
        stop.set()
        t.join()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*) FROM beat").fetchone()[0] > 0


def test_site_history_and_the_site_picked_do_not_depend_on_the_databases_row_order() -> None:
    """accounts.sql has no ORDER BY: SQLite, MariaDB and PostgreSQL may return its rows in any order.
    Account 1 moved sites on 2026-03-01 (site 11 -> 12); account 2 has two sites starting the same
    day (a data error: 21 and 22). Whatever the row order, site_history comes out in (account,
    site_start, site_id) order and each account's site is the latest start, lowest site_id on a tie:
    1 -> 12, 2 -> 21 (worked out by hand from that rule)."""
    import polars as pl

    from tasks.adapters.extract import shape

    d = dt.date
    rows = [
        (1, 11, "N11", d(2025, 1, 1), d(2026, 2, 28)),
        (1, 12, "N12", d(2026, 3, 1), None),
        (2, 22, "N22", d(2025, 6, 1), None),
        (2, 21, "N21", d(2025, 6, 1), None),
    ]
    base = {name: pl.DataFrame(schema=schema) for name, schema in SCHEMAS.items()}

    def run(order: list[int]) -> tuple[pl.DataFrame, pl.DataFrame]:
        accounts = pl.DataFrame(
            [
                {
                    "account_id": a,
                    "account_number": f"A{a}",
                    "customer_class": "RESIDENTIAL",
                    "journal_segment": "RESIDENTIAL",
                    "service_type": "ELECTRICITY",
                    "billing_cycle_months": 3,
                    "open_date": d(2024, 1, 1),
                    "close_date": None,
                    "site_id": s,
                    "nmi": n,
                    "site_start": lo,
                    "site_end": hi,
                    "jurisdiction": "NSW",
                    "timezone": "Australia/Sydney",
                    "network": "X",
                    "tni": "T",
                }
                for a, s, n, lo, hi in (rows[i] for i in order)
            ],  # fmt: skip
            schema=SCHEMAS["accounts"],
        )
        datasets, _ = shape({**base, "accounts": accounts}, 4)
        return datasets["site_history"], datasets["accounts"]

    history, accounts = run([0, 1, 2, 3])
    for order in ([3, 2, 1, 0], [2, 0, 3, 1]):
        other_history, other_accounts = run(order)
        assert other_history.equals(history) and other_accounts.equals(accounts)
    assert history["site_id"].to_list() == [11, 12, 21, 22]
    assert accounts.select("account_id", "site_id").rows() == [(1, 12), (2, 21)]


def test_billed_quantities_are_the_issued_usage_of_basic_registers(db_url: str) -> None:
    # one account, one site, a basic meter (registers 1 usage, 2 generation) and an interval
    # meter (register 3). Invoice 1 (ISSUED, 1-31 Aug) bills register 1 on two lines (a block
    # tariff: 100.5 + 20 = 120.5), register 2's feed-in 7 and register 3's usage; invoice 2 is
    # REVERSED, invoice 3 is issued on the run date (not yet issued for the run). Expected: register
    # 1: 120.5, register 2: 7 (SUPPLY lines and the interval register are not read pairs).
    from sql.schema import metadata
    from tasks.adapters.db import init_db, read_sql, transaction
    from tasks.adapters.extract import HISTORY_DAYS, SCHEMAS
    from tasks.domain.billed import billed_quantities

    init_db(db_url)
    d = dt.date
    rows: dict[str, list[dict]] = {
        "jurisdiction": [{"id": 1, "code": "NSW", "timezone": "Australia/Sydney"}],
        "network": [{"id": 1, "code": "N", "name": "N", "jurisdiction_id": 1, "service_type": "ELECTRICITY"}],
        "journal_segment": [{"id": 1, "name": "RESIDENTIAL"}],
        "account": [{"id": 1, "account_number": "A1", "customer_class": "RES", "journal_segment_id": 1,
                     "service_type": "ELECTRICITY", "billing_cycle_months": 1, "open_date": d(2020, 1, 1)}],
        "site": [{"id": 1, "identifier": "N1", "service_type": "ELECTRICITY", "network_id": 1, "jurisdiction_id": 1}],
        "meter": [
            {"id": 1, "site_id": 1, "serial_number": "M1", "installation_type": "BASIC", "interval_minutes": None,
             "start_date": d(2020, 1, 1)},
            {"id": 2, "site_id": 1, "serial_number": "M2", "installation_type": "COMMS4", "interval_minutes": 30,
             "start_date": d(2020, 1, 1)},
        ],
        "meter_register": [
            {"id": r, "meter_id": m, "suffix": s, "stream": st, "time_class": "ANYTIME", "unit": "KWH",
             "dial_digits": 5, "multiplier": 1, "start_date": d(2020, 1, 1)}
            for r, m, s, st in ((1, 1, "11", "CONSUMPTION"), (2, 1, "12", "GENERATION"), (3, 2, "E1", "CONSUMPTION"))
        ],
        "invoice": [
            {"id": i, "account_id": 1, "invoice_number": f"I{i}", "period_start": d(2026, 8, 1), "period_end": d(2026, 8, 31),
             "issue_date": issued, "status": status, "net_amount": 1, "gst_amount": 0, "due_date": d(2026, 11, 30)}
            for i, issued, status in ((1, d(2026, 9, 3), "ISSUED"), (2, d(2026, 9, 2), "REVERSED"), (3, d(2026, 11, 1), "ISSUED"))
        ],
    }  # fmt: skip
    line = {"period_start": d(2026, 8, 1), "period_end": d(2026, 8, 31), "time_class": "ANYTIME", "rate": 0.2,
            "net_amount": 1, "discount_amount": 0}  # fmt: skip
    rows["invoice_line"] = [
        {**line, "invoice_id": i, "meter_register_id": r, "item_type": t, "quantity": q}
        for i in (1, 2, 3)
        for r, t, q in ((None, "SUPPLY", 31), (1, "USAGE", 100.5), (1, "USAGE", 20), (2, "FEED_IN", 7), (3, "USAGE", 900))
    ]  # fmt: skip
    with transaction(db_url) as c:
        for table, values in rows.items():
            c.execute(metadata.tables[table].insert(), values)
    r = d(2026, 11, 1)
    params = {"run_date": r, "history_start": r - dt.timedelta(days=HISTORY_DAYS)}
    lines = read_sql(db_url, "billed_quantities", params, SCHEMAS["billed_quantities"])
    # the query keeps the basic registers' non-SUPPLY lines of every invoice: 3 invoices x 3 lines
    assert lines.height == 9 and set(lines["meter_register_id"]) == {1, 2}
    invoices = read_sql(db_url, "invoices", params, SCHEMAS["invoices"])
    got = billed_quantities(lines, invoices)
    assert got.rows() == [
        (1, 1, d(2026, 9, 3), d(2026, 8, 1), d(2026, 8, 31), 120.5),
        (2, 1, d(2026, 9, 3), d(2026, 8, 1), d(2026, 8, 31), 7.0),
    ]
