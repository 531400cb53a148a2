"""Prepare: write a run's output tables (SPEC §4.5), replacing the run date's rows atomically.

One transaction covers every table: the run date's rows of ``invoice_line_item_monthly``,
``bua_account_summary``, ``bua_exception``, ``estimated_basic_read`` and ``accrual_summary`` are
deleted, the new rows inserted by the database's bulk path (:func:`tasks.adapters.db.insert_frame`: COPY,
LOAD DATA or the SQLite driver's executemany), ``accrual_summary`` is computed inside the database
by ``sql/accrual_summary.sql`` from the two tables just written, and the run's ``bua_run`` row is
replaced. Readers see the previous run or the new one, never half of either.

The rows are written in slices (tasks/adapters/row_slices.py): split into Arrow files before the
transaction opens, then inserted one slice at a time inside it, in the order the whole table would
have — so no process holds a whole portfolio's rows (issue 14).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

import polars as pl
import sqlalchemy as sa

from sql.schema import OUTPUT_TABLES, metadata
from tasks.adapters import storage
from tasks.adapters.db import (
    DatabaseError,
    engine_for,
    insert_frame,
    require_tables,
    sql_text,
    sqlite_file,
    sqlite_values,
    transaction,
)
from tasks.adapters.row_slices import ShardRows, read_slices, spill

ROW_TABLES = ("invoice_line_item_monthly", "bua_account_summary", "bua_exception", "estimated_basic_read")


def _stamp(df: pl.DataFrame, run_id: str, run_date: dt.date, scenario: str = "") -> pl.DataFrame:
    return df.with_columns(
        pl.lit(run_id).alias("run_id"),
        pl.lit(run_date, pl.Date).alias("run_date"),
        pl.lit(scenario).alias("scenario"),
    )


def write_outputs(
    url: str,
    run_id: str,
    run_date: dt.date,
    frames: Mapping[str, pl.DataFrame | ShardRows],
    run_row: Mapping[str, Any] | None = None,
    scenario: str = "",
) -> dict[str, int]:
    """Replace the rows of the run date and scenario ('' = the booked run) of every output table in
    one transaction; return row counts. A table's rows are a frame or a :class:`ShardRows` (written
    slice by slice, in the order of its one sorted concatenation)."""
    require_tables(url, OUTPUT_TABLES)
    unknown = set(frames) - set(ROW_TABLES)
    if unknown:
        raise ValueError(f"not an output table: {', '.join(sorted(unknown))}")
    with storage.scratch_dir("prepare") as tmp:
        # every table split into slices on disk before the transaction opens
        parts = {name: spill(frames[name], f"{tmp}/{name}") for name in ROW_TABLES if name in frames}
        if sqlite_file(url):
            return _write_outputs_sqlite_in_child(url, run_id, run_date, parts, run_row, scenario, tmp)
        return _write_outputs_sliced(url, run_id, run_date, parts, run_row, scenario)


def _write_outputs_sliced(
    url: str,
    run_id: str,
    run_date: dt.date,
    parts: Mapping[str, dict[str, Any]],
    run_row: Mapping[str, Any] | None,
    scenario: str,
) -> dict[str, int]:
    """:func:`write_outputs` on PostgreSQL/MariaDB (SQLAlchemy): one transaction, slice by slice."""
    counts: dict[str, int] = {}
    with transaction(url) as conn:
        for name in (*ROW_TABLES, "accrual_summary"):
            tbl = metadata.tables[name]
            conn.execute(tbl.delete().where((tbl.c.run_date == run_date) & (tbl.c.scenario == scenario)))
        for name in ROW_TABLES:
            part = parts.get(name)
            # a table of 500 rows or more goes by the bulk path in every slice, as it did whole
            bulk_from = 1 if part is not None and part["rows"] >= 500 else 500
            counts[name] = sum(
                insert_frame(conn, name, _stamp(df, run_id, run_date, scenario), bulk_from=bulk_from)
                for df in (read_slices(part) if part is not None else ())
            )
        _analyze_postgres(conn, ROW_TABLES)
        result = conn.execute(
            sa.text(sql_text("accrual_summary")), {"run_date": run_date, "scenario": scenario}
        )
        counts["accrual_summary"] = result.rowcount
        if run_row is not None:
            tbl = metadata.tables["bua_run"]
            conn.execute(tbl.delete().where(tbl.c.run_id == run_id))
            row = dict(run_row)
            if isinstance(row.get("parameters"), dict):
                row["parameters"] = json.dumps(row["parameters"], sort_keys=True, default=str)
            conn.execute(
                tbl.insert(), [{"run_id": run_id, "run_date": run_date, "scenario": scenario, **row}]
            )
            counts["bua_run"] = 1
    return counts


def _analyze_postgres(conn: sa.Connection, tables: tuple[str, ...]) -> None:
    """PostgreSQL: fresh planner statistics of the tables just written, inside the transaction.

    Without them the planner takes a run date's 100k accounts for one row (the tables' statistics
    predate the rows COPY just wrote; autovacuum analyzes them a minute later at best): the
    accrual_summary join became a nested loop of index lookups per account and the sort spilled to
    disk (7.6 s of prepare's ~9 s at 100k accounts; bench/scale.py --db), and the report's
    GROUP BYs right after read with the same wrong estimates. ANALYZE samples 30,000 rows per
    table (~0.1 s each). MariaDB/InnoDB recomputes its statistics itself after large changes (and
    its ANALYZE TABLE would commit the transaction); SQLite plans without statistics.
    """
    if conn.dialect.name != "postgresql":
        return
    for name in tables:
        conn.execute(sa.text(f'ANALYZE "{name}"'))


def _write_outputs_sqlite_in_child(
    url: str,
    run_id: str,
    run_date: dt.date,
    parts: Mapping[str, dict[str, Any]],
    run_row: Mapping[str, Any] | None,
    scenario: str,
    tmp: str,
) -> dict[str, int]:
    """:func:`_write_outputs_sqlite` in a child process.

    ADBC brings its own SQLite library. Two SQLite libraries in one process do not see each other's
    locks (POSIX locks are per process), so a write through Python's sqlite3 from another thread
    while ADBC writes — the run lock's heartbeat, the validation phase — corrupts the file. In a
    child process the two are separate processes again and SQLite's own locking applies.
    """
    import subprocess
    import sys

    from tasks.adapters.children import die_with_parent

    job: dict[str, Any] = {
        "url": url, "run_id": run_id, "run_date": run_date.isoformat(), "scenario": scenario, "parts": parts
    }  # fmt: skip
    if run_row is not None:
        job["run_row"] = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in run_row.items()}
    with open(f"{tmp}/job.json", "w") as fh:
        json.dump(job, fh, default=str)
    done = subprocess.run(
        [sys.executable, "-m", "tasks.adapters.prepare", f"{tmp}/job.json"],
        capture_output=True,
        text=True,
        preexec_fn=die_with_parent,  # a killed run must not leave a writer behind
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise DatabaseError(f"writing the output tables into {sqlite_file(url)} failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child_main(job_path: str) -> None:
    with open(job_path) as fh:
        job = json.load(fh)
    run_row = job.get("run_row")
    if run_row is not None:
        for key in ("period_start", "period_end"):
            if run_row.get(key):
                run_row[key] = dt.date.fromisoformat(run_row[key])
        for key in ("started_at", "finished_at"):
            if run_row.get(key):
                run_row[key] = dt.datetime.fromisoformat(run_row[key])
    day = dt.date.fromisoformat(job["run_date"])
    counts = _write_outputs_sqlite(job["url"], job["run_id"], day, job["parts"], run_row, job["scenario"])
    print(json.dumps(counts))


def _write_outputs_sqlite(
    url: str,
    run_id: str,
    run_date: dt.date,
    parts: Mapping[str, dict[str, Any]],
    run_row: Mapping[str, Any] | None,
    scenario: str = "",
) -> dict[str, int]:
    """:func:`write_outputs` on a SQLite file: one ADBC transaction, rows by Arrow bulk ingest, one
    slice at a time (``parts``: :func:`tasks.adapters.row_slices.spill`'s files).

    Python's sqlite3 inserts row by row (~100k rows/s); ADBC binds whole Arrow columns (polars
    hands them over through the Arrow C stream interface; the low-level API, so neither pyarrow's
    dataset module nor pandas is imported). Two SQLite libraries must never hold the same file open
    in one process at once, so SQLAlchemy's pooled connections are closed first (as tasks/generate/load.py
    does). Runs in a child process (:func:`_write_outputs_sqlite_in_child`).
    """
    import adbc_driver_manager as adbc
    import adbc_driver_sqlite

    path = sqlite_file(url)
    assert path is not None
    day = f"'{run_date.isoformat()}'"  # a date's ISO text: safe as a literal
    what_if = "'" + scenario.replace("'", "''") + "'"  # checked: [a-z0-9_-]{0,40}
    counts: dict[str, int] = {}
    database = adbc_driver_sqlite.connect(path)
    conn = adbc.AdbcConnection(database)
    statements: list[adbc.AdbcStatement] = []

    def statement() -> adbc.AdbcStatement:
        st = adbc.AdbcStatement(conn)
        statements.append(st)
        return st

    def run(sql: str) -> int:
        st = statement()
        st.set_sql_query(sql)
        return st.execute_update()

    def ingest(name: str, df: pl.DataFrame) -> int:
        st = statement()
        mode = {
            adbc.INGEST_OPTION_TARGET_TABLE: name,
            adbc.INGEST_OPTION_MODE: adbc.INGEST_OPTION_MODE_APPEND,
        }
        st.set_options(**mode)
        cols = [c.name for c in metadata.tables[name].columns if c.name in df.columns]
        st.bind_stream(sqlite_values(df.select(cols)))
        st.execute_update()
        return df.height

    try:
        conn.set_autocommit(False)  # everything below is one transaction
        run("PRAGMA busy_timeout=30000")
        for name in (*ROW_TABLES, "accrual_summary"):
            run(f'DELETE FROM "{name}" WHERE run_date = {day} AND scenario = {what_if}')
        for name in ROW_TABLES:
            part = parts.get(name)
            counts[name] = sum(
                ingest(name, _stamp(df, run_id, run_date, scenario)) if df.height else 0
                for df in (read_slices(part) if part is not None else ())
            )
        summary = re.sub(r"(?<![:\w]):run_date\b", day, sql_text("accrual_summary"))
        counts["accrual_summary"] = run(re.sub(r"(?<![:\w]):scenario\b", what_if, summary))
        if run_row is not None:
            row = {"run_id": run_id, "run_date": run_date, "scenario": scenario, **run_row}
            if isinstance(row.get("parameters"), dict):
                row["parameters"] = json.dumps(row["parameters"], sort_keys=True, default=str)
            tbl = metadata.tables["bua_run"]
            quoted = run_id.replace("'", "''")
            run(f"DELETE FROM bua_run WHERE run_id = '{quoted}'")
            ingest("bua_run", pl.DataFrame([row], schema={c: _dtype(tbl.c[c]) for c in row}, orient="row"))
            counts["bua_run"] = 1
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        for st in statements:
            st.close()
        conn.close()
        database.close()
    return counts


def upsert_run(url: str, run_id: str, run_date: dt.date, row: Mapping[str, Any]) -> None:
    """Insert or replace one ``bua_run`` row (e.g. RUNNING at the start, FAILED on error); ``row``
    carries the scenario."""
    tbl = metadata.tables["bua_run"]
    values = dict(row)
    if isinstance(values.get("parameters"), dict):
        values["parameters"] = json.dumps(values["parameters"], sort_keys=True, default=str)
    with transaction(url) as conn:
        conn.execute(tbl.delete().where(tbl.c.run_id == run_id))
        conn.execute(tbl.insert(), [{"run_id": run_id, "run_date": run_date, **values}])


def read_outputs(
    url: str,
    run_date: dt.date,
    tables: tuple[str, ...] = (*ROW_TABLES, "accrual_summary"),
    scenario: str = "",
) -> dict[str, pl.DataFrame]:
    """The rows of the run date and scenario of each output table, typed from the schema (money as
    Decimal(14,2))."""
    out: dict[str, pl.DataFrame] = {}
    with engine_for(url).connect() as conn:
        for name in tables:
            tbl = metadata.tables[name]
            res = conn.execute(
                sa.select(tbl).where((tbl.c.run_date == run_date) & (tbl.c.scenario == scenario))
            )
            cols = list(res.keys())
            rows = res.fetchall()
            out[name] = _typed(
                name, pl.DataFrame({c: [r[i] for r in rows] for i, c in enumerate(cols)}, strict=False), cols
            )
    return out


def _dtype(col: sa.Column) -> pl.DataType:
    t = col.type
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float) and t.scale is not None:
        return pl.Decimal(t.precision or 38, t.scale)
    if isinstance(t, sa.Integer):
        return pl.Int64()
    if isinstance(t, sa.DateTime):
        return pl.Datetime("us")
    if isinstance(t, sa.Date):
        return pl.Date()
    if isinstance(t, sa.Boolean):
        return pl.Boolean()
    return pl.String()


def typed_like_table(name: str, df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with the table's columns, in table order, typed as the database holds them."""
    cols = [c.name for c in metadata.tables[name].columns]
    missing = [c for c in cols if c not in df.columns]
    return _typed(name, df.with_columns([pl.lit(None).alias(c) for c in missing]), cols)


def _typed(name: str, df: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    tbl = metadata.tables[name]
    if df.height == 0:
        return pl.DataFrame(schema={c: _dtype(tbl.c[c]) for c in cols})
    exprs = []
    for c in cols:
        target = _dtype(tbl.c[c])
        col = pl.col(c) if c in df.columns else pl.lit(None)
        src = df.schema.get(c)
        if isinstance(target, pl.Date) and src == pl.String:
            exprs.append(col.str.slice(0, 10).str.to_date("%Y-%m-%d").alias(c))
        elif isinstance(target, pl.Datetime) and src == pl.String:
            exprs.append(
                col.str.replace("T", " ").str.slice(0, 19).str.to_datetime("%Y-%m-%d %H:%M:%S").alias(c)
            )
        elif isinstance(target, pl.Decimal):
            exprs.append(col.cast(pl.Float64).round(target.scale or 0).cast(target).alias(c))
        else:
            exprs.append(col.cast(target).alias(c))
    return df.select(exprs)


if __name__ == "__main__":  # the child of _write_outputs_sqlite_in_child
    import sys

    _child_main(sys.argv[1])
