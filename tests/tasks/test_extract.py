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
    used = db._read_connectorx(url, db.sql_text("basic_reads"), PARAMS) is not None
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
    # two queries on two threads: basic_reads with mixed kinds (connectorx refuses it, SQLAlchemy
    # reads it afterwards) and tou_windows (empty table: connectorx reads it); each frame equals
    # read_sql's, and the fallback ran only after every connectorx read had returned
    url = _db_with_reads(tmp_path, [5, -5.25, "abc"])
    events: list[str] = []
    cx, sa_read = db._read_connectorx, db._read_sqlalchemy

    def fast(u: str, text: str, params: dict, **kw: bool) -> object:
        out = cx(u, text, params, **kw)
        events.append("cx " + ("none" if out is None else "frame"))
        return out

    def slow(*args: object) -> object:
        events.append("sqlalchemy")
        return sa_read(*args)

    monkeypatch.setattr(db, "_read_connectorx", fast)
    monkeypatch.setattr(db, "_read_sqlalchemy", slow)
    queries = {"basic_reads": (PARAMS, SCHEMAS["basic_reads"]), "tou_windows": ({}, SCHEMAS["tou_windows"])}
    many = db.read_sql_many(url, queries, sqlite_connectorx=True)
    assert list(many) == ["basic_reads", "tou_windows"]
    assert sorted(events[:2]) == ["cx frame", "cx none"] and events[2:] == ["sqlalchemy"]
    monkeypatch.undo()
    for name, (params, schema) in queries.items():
        assert many[name].equals(db.read_sql(url, name, params, schema, sqlite_connectorx=True))
    assert many["basic_reads"]["index_value"].to_list() == ["5", "-5.25", "abc"]
    assert many["tou_windows"].height == 0


def test_read_sql_many_closes_sqlite_pool_once_before_its_threads_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pooled sqlite3 connection closed in one read thread while connectorx reads in the other
    # removes the WAL's shared-memory file under connectorx's SQLite (a Bus error in CI): the pool
    # is closed once, on the calling thread, before the first connectorx read; the threads don't.
    import threading

    import connectorx
    import sqlalchemy as sa

    url = _db_with_reads(tmp_path, [7.5, 12, -3])
    with db.engine_for(url).connect() as conn:  # a pooled connection, checked in
        conn.execute(sa.text("SELECT 1"))
    events: list[tuple[str, str]] = []
    dispose, read = sa.engine.Engine.dispose, connectorx.read_sql

    def spy_dispose(self: sa.engine.Engine, *a: object, **k: object) -> None:
        events.append(("dispose", threading.current_thread().name))
        dispose(self, *a, **k)

    def spy_read(*a: object, **k: object) -> object:
        events.append(("read", threading.current_thread().name))
        return read(*a, **k)

    monkeypatch.setattr(sa.engine.Engine, "dispose", spy_dispose)
    monkeypatch.setattr(connectorx, "read_sql", spy_read)
    queries = {"basic_reads": (PARAMS, SCHEMAS["basic_reads"]), "tou_windows": ({}, SCHEMAS["tou_windows"])}
    many = db.read_sql_many(url, queries, sqlite_connectorx=True)
    me = threading.current_thread().name
    # one dispose, on this thread, first; then the two reads, on the pool's threads
    assert events[0] == ("dispose", me)
    assert [e for e, _ in events[1:]] == ["read", "read"]
    assert all(t.startswith("bua-read") for _, t in events[1:])
    assert many["basic_reads"]["index_value"].to_list() == ["7.5", "12", "-3"]
