"""The billing database: engines, schema migration, reading SQL files into polars, bulk writes.

Every query text lives in ``sql/*.sql``; this module finds it by name, binds parameters with
SQLAlchemy and returns a polars frame with explicit types (SQLite returns dates as strings, so
callers pass a schema and we cast). Large writes go through the fastest path each database has
(chunked multi-row INSERT within one transaction); replacing a run date's rows is one transaction.

Layout: engines and URLs in ``db_engine``, migrations and table checks in ``db_schema``, bulk
writes in ``db_write``, typed frames in ``db_frames``; here the reads (SQLAlchemy, connectorx, a
child process for SQLite). Every name is re-exported from here.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from tasks.adapters.db_engine import (
    SQL_DIR,
    DatabaseError,
    _connectorx_uri,
    check_connection,
    engine_for,
    redact_url,
    sqlite_file,
    today_utc,
    transaction,
)
from tasks.adapters.db_frames import _frame, _sqlite_numbers_as_text, cast_frame
from tasks.adapters.db_schema import current_revisions, init_db, require_tables
from tasks.adapters.db_write import insert_frame, replace_rows, sqlite_values

__all__ = [
    "SQL_DIR",
    "DatabaseError",
    "cast_frame",
    "check_connection",
    "current_revisions",
    "engine_for",
    "init_db",
    "insert_frame",
    "read_sql",
    "read_sql_many",
    "redact_url",
    "replace_rows",
    "require_tables",
    "sql_text",
    "sqlite_file",
    "sqlite_values",
    "today_utc",
    "transaction",
]


def sql_text(name: str) -> str:
    """The text of ``sql/{name}.sql``."""
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"no query file sql/{name}.sql")
    return path.read_text()


def read_sql(
    url: str,
    name: str,
    params: Mapping[str, Any] | None = None,
    schema: Mapping[str, pl.DataType | type[pl.DataType]] | None = None,
    *,
    sqlite_connectorx: bool = False,
) -> pl.DataFrame:
    """Run ``sql/{name}.sql`` with bound parameters; cast to ``schema`` (every column named there).

    PostgreSQL and MySQL/MariaDB are read with connectorx (Arrow, no Python object per value) when a
    schema is given; the parameters (dates, numbers, plain strings) are then rendered as literals.
    SQLite files too when ``sqlite_connectorx`` is set, in a child process (:func:`_in_child`); connectorx types a
    NUMERIC column from its first value and refuses a later one of another kind (5 then 5.25), and
    such a query quietly takes the SQLAlchemy path. Anything connectorx cannot do falls back to
    SQLAlchemy.
    """
    text = sql_text(name)
    if schema is not None and (sqlite_connectorx or not url.startswith("sqlite")):
        jobs = {name: (text, dict(params or {}))}
        reads = (
            _connectorx_in_child(url, jobs, 1)
            if url.startswith("sqlite")
            else _connectorx_reads(url, jobs, 1)
        )
        fast = reads[name]
        if fast is not None:
            if url.startswith("sqlite"):
                fast = _sqlite_numbers_as_text(fast, schema)
            return cast_frame(fast, schema)
    return _read_sqlalchemy(url, text, params, schema)


def _read_sqlalchemy(
    url: str,
    text: str,
    params: Mapping[str, Any] | None,
    schema: Mapping[str, pl.DataType | type[pl.DataType]] | None,
) -> pl.DataFrame:
    stmt = sa.text(text)
    with engine_for(url).connect() as conn:
        result = conn.execute(stmt, dict(params or {}))
        cols = list(result.keys())
        rows = result.fetchall()
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    if schema is None:
        return pl.DataFrame(data, strict=False)
    return cast_frame(_frame(data, schema), schema)


def _connectorx_reads(
    url: str, jobs: Mapping[str, tuple[str, dict[str, Any]]], threads: int
) -> dict[str, pl.DataFrame | None]:
    """connectorx reads of ``jobs`` (name → (query text, params)) on ``threads`` threads, in order;
    None where connectorx cannot do a query (the SQLAlchemy path reads it)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(name: str) -> pl.DataFrame | None:
        return _read_connectorx(url, *jobs[name])

    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="bua-read") as pool:
        return dict(zip(jobs, pool.map(one, jobs), strict=True))


def _connectorx_to_files(
    url: str, jobs: Mapping[str, tuple[str, dict[str, Any]]], threads: int, folder: str
) -> dict[str, str | None]:
    """:func:`_connectorx_reads`, each frame written to ``folder/{name}.arrow`` (uncompressed Arrow
    IPC) as soon as it is read and then let go; the paths (None where connectorx cannot do it)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(name: str) -> str | None:
        df = _read_connectorx(url, *jobs[name])
        if df is None:
            return None
        path = os.path.join(folder, f"{name}.arrow")
        df.write_ipc(path, compression="uncompressed")
        return path

    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="bua-read") as pool:
        return dict(zip(jobs, pool.map(one, jobs), strict=True))


def _connectorx_in_child(
    url: str, jobs: Mapping[str, tuple[str, dict[str, Any]]], threads: int
) -> dict[str, pl.DataFrame | None]:
    """connectorx reads of a SQLite file in a child process (:func:`_in_child`), handed back through
    Arrow IPC files in a temporary folder rather than pickled: the pickled frames were held twice
    over (the child's bytes, the parent's copy) beside the frames themselves — at 100k accounts
    the extract's child and parent peaked at 628 and 602 MB (issue 14: this grows with the
    portfolio)."""
    from tasks.adapters import storage

    with storage.scratch_dir("read") as tmp:
        paths = _in_child(_connectorx_to_files, url, jobs, threads, tmp)
        return {name: None if p is None else pl.read_ipc(p) for name, p in paths.items()}


def _in_child(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a fresh child process (spawned, so it shares nothing with this one).

    connectorx and ADBC carry their own SQLite library. Two SQLite libraries in one process do not
    see each other's locks: when one closes the file it checkpoints and removes the WAL and drops
    the process's locks under the other — a write through Python's sqlite3 from another thread (the
    run lock's heartbeat, another phase) then corrupts the file. Across processes SQLite's own
    locking holds, so reads of a SQLite file by connectorx run in a child.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=_child_init
    ) as pool:
        return pool.submit(fn, *args).result()


def _child_init() -> None:
    from tasks.adapters.children import die_with_parent

    die_with_parent()


def read_sql_many(
    url: str,
    queries: Mapping[str, tuple[Mapping[str, Any] | None, Mapping[str, pl.DataType | type[pl.DataType]]]],
    *,
    sqlite_connectorx: bool = False,
    threads: int,
) -> dict[str, pl.DataFrame]:
    """:func:`read_sql` of several ``sql/{name}.sql`` files (name → (params, schema)); the same frames.

    The connectorx reads run on ``threads`` threads (the caller's ``Settings.read_threads``), in the order given (largest first is best:
    each is one connection and one core; connectorx releases the GIL); the queries connectorx
    cannot do are then read on SQLAlchemy one after the other (on SQLite the connectorx reads run in
    a child process, see :func:`_in_child`).
    """

    texts = {name: sql_text(name) for name in queries}
    fast: dict[str, pl.DataFrame | None] = dict.fromkeys(queries)
    jobs = {name: (texts[name], dict(queries[name][0] or {})) for name in queries}
    if url.startswith("sqlite") and sqlite_connectorx:
        fast = _connectorx_in_child(url, jobs, threads)
    elif not url.startswith("sqlite"):
        fast = _connectorx_reads(url, jobs, threads)
    out: dict[str, pl.DataFrame] = {}
    for name, (params, schema) in queries.items():
        df = fast[name]
        if df is None:
            out[name] = _read_sqlalchemy(url, texts[name], params, schema)
            continue
        if url.startswith("sqlite"):
            df = _sqlite_numbers_as_text(df, schema)
        out[name] = cast_frame(df, schema)
    return out


_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _literal(value: Any) -> str | None:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"'{value:%Y-%m-%d %H:%M:%S}'"
    if isinstance(value, dt.date):
        return f"'{value:%Y-%m-%d}'"
    if isinstance(value, str) and re.fullmatch(r"[\w .:/-]*", value):
        return f"'{value}'"
    return None


def _read_connectorx(url: str, text: str, params: dict[str, Any]) -> pl.DataFrame | None:
    uri = _connectorx_uri(url)
    if uri is None:
        return None
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        lit = _literal(params.get(m.group(1))) if m.group(1) in params else None
        if lit is None:
            missing.append(m.group(1))
            return m.group(0)
        return lit

    query = _PARAM.sub(
        sub, "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    )
    if missing:
        return None
    if uri.startswith("sqlite:") and not Path(uri[len("sqlite://") :]).exists():
        return None
    try:
        import connectorx as cx

        return cx.read_sql(uri, query.strip().rstrip(";"), return_type="polars")
    except Exception:  # noqa: BLE001 — any connectorx limitation: the SQLAlchemy path decides
        return None
