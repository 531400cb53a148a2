"""connectorx reads of a SQLite file run in a child process and come back through Arrow IPC files
(issue 14: not pickled, which held every frame twice over)."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import polars as pl
import pytest

from tasks.adapters import db


def test_child_reads_come_back_whole_and_leave_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three rows written by hand come back with their values; the temporary folder is gone."""
    pytest.importorskip("connectorx")
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, name TEXT, amount REAL)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(1, "a", 1.5), (2, "b", -2.25), (3, None, 0.0)])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    jobs = {"rows": ("SELECT id, name, amount FROM t ORDER BY id", {}), "one": ("SELECT 7 AS x", {})}
    got = db._connectorx_in_child(f"sqlite:///{path}", jobs, 2)
    rows = got["rows"]
    assert rows is not None and got["one"] is not None
    assert rows.rows() == [(1, "a", 1.5), (2, "b", -2.25), (3, None, 0.0)]
    assert got["one"].item() == 7
    assert list(scratch.iterdir()) == []  # the IPC files and their folder are removed
    assert isinstance(rows, pl.DataFrame)
