"""Load a generated portfolio (``DIR/db/*.parquet``) into the billing database, fast.

Tables go in dependency order (tasks.generate.tables.TABLE_ORDER), one transaction per table,
through the fastest path each database has: ADBC bulk ingest on SQLite, ``COPY … FROM STDIN`` on
PostgreSQL (psycopg), ``LOAD DATA LOCAL INFILE`` on MariaDB/MySQL (pymysql, engines are created
with ``local_infile``); any other database falls back to ``tasks.adapters.db.insert_frame``. The schema must
exist (``bua db init``); by default the tables' previous rows are deleted first (children first,
one transaction), so a second load replaces the portfolio instead of failing on its keys.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl

from sql.schema import metadata
from tasks.adapters.db import engine_for, insert_frame, transaction
from tasks.generate.tables import TABLE_ORDER


def _datetimes_as_text(df: pl.DataFrame, fmt: str) -> pl.DataFrame:
    return df.with_columns(
        pl.col(c).dt.strftime(fmt) for c, t in df.schema.items() if isinstance(t, pl.Datetime)
    )


def _sqlite(url: str, table: str, df: pl.DataFrame) -> None:
    import adbc_driver_sqlite.dbapi as adbc

    path = url.split(":///", 1)[1]
    # two SQLite libraries (Python's and ADBC's) must never hold the same file open in one
    # process at once (SQLite: "multiple copies of SQLite in one application" corrupt locks)
    engine_for(url).dispose()
    # SQLAlchemy's SQLite DATETIME text form, so that comparisons and parsing agree
    data = _datetimes_as_text(df, "%Y-%m-%d %H:%M:%S.%6f").to_arrow()
    with adbc.connect(path) as conn:
        with conn.cursor() as cur:
            cur.execute("PRAGMA busy_timeout=30000")
            cur.adbc_ingest(table, data, mode="append")
        conn.commit()


def _postgres(url: str, table: str, df: pl.DataFrame) -> None:
    raw = engine_for(url).raw_connection()
    try:
        cols = ", ".join(f'"{c}"' for c in df.columns)
        csv = df.write_csv(include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.6f").encode()
        with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN WITH (FORMAT csv)') as cp:
            cp.write(csv)
        raw.commit()
    finally:
        raw.close()


def _mysql(url: str, table: str, df: pl.DataFrame) -> None:
    df = df.with_columns(pl.col(c).cast(pl.Int8) for c, t in df.schema.items() if t == pl.Boolean)
    fd, tmp = tempfile.mkstemp(suffix=".csv")
    os.close(fd)
    try:
        df.write_csv(
            tmp,
            include_header=False,
            null_value="NULL",
            datetime_format="%Y-%m-%d %H:%M:%S%.6f",
            line_terminator="\n",
        )
        cols = ", ".join(f"`{c}`" for c in df.columns)
        raw = engine_for(url).raw_connection()
        try:
            with raw.cursor() as cur:
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table}` CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' "
                    f"OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' ({cols})",
                    (tmp,),
                )
                # with LOCAL, bad rows become warnings and are skipped: refuse a partial table
                cur.execute("SHOW WARNINGS LIMIT 3")
                warnings = [w for w in cur.fetchall() if w[0] != "Note"]
                if warnings:
                    raw.rollback()
                    raise RuntimeError(f"loading {table} into MariaDB/MySQL: {warnings}")
            raw.commit()
        finally:
            raw.close()
    finally:
        os.unlink(tmp)


def _generic(url: str, table: str, df: pl.DataFrame) -> None:
    with transaction(url) as conn:
        insert_frame(conn, table, df)


def loader_for(url: str) -> Callable[[str, str, pl.DataFrame], None]:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return _sqlite
    if url.startswith("postgresql+psycopg") or url.startswith("postgresql://"):
        return _postgres
    if url.startswith("mysql+pymysql") or url.startswith("mariadb+pymysql"):
        return _mysql
    return _generic


def clear_tables(url: str, tables: list[str]) -> None:
    """Delete every row of ``tables`` (children first) in one transaction."""
    with transaction(url) as conn:
        for table in reversed(tables):
            conn.execute(metadata.tables[table].delete())


def load_portfolio(
    url: str, folder: str | Path, log: Callable[[str], None] | None = None, replace: bool = True
) -> dict[str, int]:
    """Insert every ``{folder}/db/{table}.parquet`` into ``url``; returns rows per table.

    With ``replace`` (the default) the rows those tables already hold are deleted first, so loading
    a portfolio twice leaves one copy of it.
    """
    db = Path(folder) / "db"
    load = loader_for(url)
    counts: dict[str, int] = {}
    present = [t for t in TABLE_ORDER if (db / f"{t}.parquet").exists()]
    if replace:
        clear_tables(url, present)
    for table in TABLE_ORDER:
        path = db / f"{table}.parquet"
        if not path.exists():
            continue
        df = pl.read_parquet(path)
        df = df.select([c.name for c in metadata.tables[table].columns if c.name in df.columns])
        if df.height:
            load(url, table, df)
        counts[table] = df.height
        if log:
            log(f"{table}: {df.height} rows")
    _reset_sequences(url)
    return counts


def _reset_sequences(url: str) -> None:
    """PostgreSQL: move identity sequences past the loaded ids so later inserts do not collide."""
    if not url.startswith("postgresql"):
        return
    import sqlalchemy as sa

    with transaction(url) as conn:
        for table in TABLE_ORDER:
            tbl = metadata.tables[table]
            if (
                "id" in tbl.c
                and tbl.c["id"].autoincrement is True
                and isinstance(tbl.c["id"].type, sa.Integer)
            ):
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), COALESCE((SELECT MAX(id) FROM \"{table}\"), 0) + 1, false)"
                    )
                )
