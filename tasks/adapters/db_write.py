"""Bulk writes into the billing database: a frame inserted by the fastest path each database has
(PostgreSQL COPY, MySQL/MariaDB LOAD DATA, SQLite executemany, else multi-row INSERT) inside the
caller's transaction, and a run date's rows replaced in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sql.schema import metadata
from tasks.adapters.db_engine import DatabaseError, transaction


def sqlite_values(df: pl.DataFrame) -> pl.DataFrame:
    """Values as SQLAlchemy stores them in SQLite: dates 'YYYY-MM-DD', datetimes with microseconds, 0/1."""
    return df.with_columns(
        [pl.col(c).cast(pl.String) for c, t in df.schema.items() if t == pl.Date]
        + [
            pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S.%6f")
            for c, t in df.schema.items()
            if isinstance(t, pl.Datetime)
        ]
        + [pl.col(c).cast(pl.Int64) for c, t in df.schema.items() if t == pl.Boolean]
    )


def insert_frame(
    conn: Connection, table: str, df: pl.DataFrame, chunk_rows: int = 5000, bulk_from: int = 500
) -> int:
    """Insert a frame into ``table`` inside the caller's transaction, by the fastest path each database has.

    PostgreSQL: ``COPY … FROM STDIN`` (CSV); MySQL/MariaDB: ``LOAD DATA LOCAL INFILE`` from a temporary
    CSV; SQLite: the driver's ``executemany`` on plain tuples (in-process, no per-row SQLAlchemy work).
    Frames under ``bulk_from`` rows and anything else use SQLAlchemy multi-row INSERTs (a table written
    in slices passes 1, so every slice takes the path the whole table would). All run on the caller's connection,
    so they commit or roll back with its transaction. Floats for DECIMAL columns are rounded by the
    database to the column's scale (callers round money to cents first).
    """
    if df.height == 0:
        return 0
    tbl = metadata.tables[table]
    cols = [c for c in df.columns if c in tbl.c]
    df = df.select(cols)
    dialect = conn.dialect.name
    if df.height >= bulk_from:
        if dialect == "postgresql" and _copy_postgres(conn, table, df):
            return df.height
        if dialect in ("mysql", "mariadb") and _load_data_mysql(conn, table, df):
            return df.height
        if dialect == "sqlite":
            return _executemany_sqlite(conn, table, df)
    n = 0
    for start in range(0, df.height, chunk_rows):
        part = df.slice(start, chunk_rows)
        rows = part.to_dicts()
        conn.execute(tbl.insert(), rows)
        n += len(rows)
    return n


def _csv_for_bulk(df: pl.DataFrame, null: str) -> bytes:
    import io

    buf = io.BytesIO()
    df.write_csv(
        buf,
        include_header=False,
        date_format="%Y-%m-%d",
        datetime_format="%Y-%m-%d %H:%M:%S%.f",
        null_value=null,
        quote_style="non_numeric",
    )
    return buf.getvalue()


def _copy_postgres(conn: Connection, table: str, df: pl.DataFrame) -> bool:
    raw = conn.connection.driver_connection
    if not hasattr(raw, "cursor") or type(raw).__module__.split(".")[0] != "psycopg":
        return False
    cols = ", ".join(f'"{c}"' for c in df.columns)
    data = _csv_for_bulk(df, "")  # strings are quoted, so an unquoted empty field is NULL
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(data)
    return True


def _load_data_mysql(conn: Connection, table: str, df: pl.DataFrame) -> bool:
    import os
    import tempfile

    fd, path = tempfile.mkstemp(prefix=f"bua-{table}-", suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_csv_for_bulk(df, "NULL"))  # strings are quoted, so an unquoted NULL is NULL
        cols = ", ".join(f"`{c}`" for c in df.columns)
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table}` CHARACTER SET utf8mb4 "
                "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' "
                f"({cols})",
                (path,),
            )
            loaded = cur.rowcount
        if loaded != df.height:
            raise DatabaseError(f"LOAD DATA into {table} loaded {loaded} of {df.height} rows")
        return True
    finally:
        os.unlink(path)


def _executemany_sqlite(conn: Connection, table: str, df: pl.DataFrame) -> int:
    out = sqlite_values(df)
    cols = ", ".join(f'"{c}"' for c in out.columns)
    marks = ", ".join("?" for _ in out.columns)
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', out.iter_rows())
    finally:
        cur.close()
    return out.height


def replace_rows(url: str, table: str, df: pl.DataFrame, where: Mapping[str, Any]) -> int:
    """Delete the rows matching ``where`` (e.g. ``{"run_date": d}``) and insert ``df``, atomically."""
    tbl = metadata.tables[table]
    with transaction(url) as conn:
        cond = sa.and_(*[tbl.c[k] == v for k, v in where.items()])
        conn.execute(tbl.delete().where(cond))
        return insert_frame(conn, table, df)
