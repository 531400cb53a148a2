"""Load a generated portfolio (``DIR/db/*.parquet``) into the billing database, fast.

Tables go in dependency order (tasks.generate.tables.TABLE_ORDER), one transaction per table,
each read and sent ``LOAD_CHUNK_ROWS`` rows at a time (memory bounded by the chunk, not the table),
through the fastest path each database has: ADBC bulk ingest on SQLite, ``COPY … FROM STDIN`` on
PostgreSQL (psycopg), ``LOAD DATA LOCAL INFILE`` on MariaDB/MySQL (pymysql, engines are created
with ``local_infile``); any other database falls back to ``tasks.adapters.db.insert_frame``. The schema must
exist (``bua db init``); by default the tables' previous rows are deleted first (children first,
one transaction), so a second load replaces the portfolio instead of failing on its keys.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import polars as pl

from sql.schema import metadata
from tasks.adapters.db import engine_for, insert_frame, transaction
from tasks.generate.tables import TABLE_ORDER

LOAD_CHUNK_ROWS = 500_000  # rows of a table read, converted and sent at a time


def _datetimes_as_text(df: pl.DataFrame, fmt: str) -> pl.DataFrame:
    return df.with_columns(
        pl.col(c).dt.strftime(fmt) for c, t in df.schema.items() if isinstance(t, pl.Datetime)
    )


Frames = pl.DataFrame | Iterable[pl.DataFrame]


def _each(frames: Frames) -> Iterator[pl.DataFrame]:
    yield from [frames] if isinstance(frames, pl.DataFrame) else frames


def _sqlite(url: str, table: str, frames: Frames) -> None:
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow as pa

    path = url.split(":///", 1)[1]
    # two SQLite libraries (Python's and ADBC's) must never hold the same file open in one
    # process at once (SQLite: "multiple copies of SQLite in one application" corrupt locks)
    engine_for(url).dispose()
    # SQLAlchemy's SQLite DATETIME text form, so that comparisons and parsing agree
    tables = (_datetimes_as_text(df, "%Y-%m-%d %H:%M:%S.%6f").to_arrow() for df in _each(frames))
    first = next(tables, None)
    if first is None:
        return
    schema = first.schema

    def batches() -> Iterator[pa.RecordBatch]:
        for t in itertools.chain([first], tables):
            yield from t.cast(schema).to_batches()

    # one ingest of a stream of batches: one transaction for the table, one chunk in memory
    with adbc.connect(path) as conn:
        with conn.cursor() as cur:
            cur.execute("PRAGMA busy_timeout=30000")
            cur.adbc_ingest(table, pa.RecordBatchReader.from_batches(schema, batches()), mode="append")
        conn.commit()


def _postgres(url: str, table: str, frames: Frames) -> None:
    chunks = _each(frames)
    first = next(chunks, None)
    if first is None:
        return
    raw = engine_for(url).raw_connection()
    try:
        cols = ", ".join(f'"{c}"' for c in first.columns)
        # one COPY for the whole table, written chunk by chunk
        with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN WITH (FORMAT csv)') as cp:
            for df in itertools.chain([first], chunks):
                cp.write(df.write_csv(include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.6f").encode())
        raw.commit()
    finally:
        raw.close()


def _mysql(url: str, table: str, frames: Frames) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".csv")
    os.close(fd)
    try:
        raw = engine_for(url).raw_connection()
        try:
            with raw.cursor() as cur:
                for df in _each(frames):  # one LOAD DATA per chunk, one transaction for the table
                    df = df.with_columns(
                        pl.col(c).cast(pl.Int8) for c, t in df.schema.items() if t == pl.Boolean
                    )
                    df.write_csv(
                        tmp,
                        include_header=False,
                        null_value="NULL",
                        datetime_format="%Y-%m-%d %H:%M:%S%.6f",
                        line_terminator="\n",
                    )
                    cols = ", ".join(f"`{c}`" for c in df.columns)
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


def _generic(url: str, table: str, frames: Frames) -> None:
    with transaction(url) as conn:
        for df in _each(frames):
            insert_frame(conn, table, df)


def loader_for(url: str) -> Callable[[str, str, Frames], None]:
    """The bulk path for ``url``: ``load(url, table, frames)`` inserts a frame, or an iterable of
    frames (chunks of one table), in one transaction."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return _sqlite
    if url.startswith("postgresql+psycopg") or url.startswith("postgresql://"):
        return _postgres
    if url.startswith("mysql+pymysql") or url.startswith("mariadb+pymysql"):
        return _mysql
    return _generic


def read_chunks(path: Path, columns: list[str], rows: int | None = None) -> Iterator[pl.DataFrame]:
    """The parquet file's ``columns``, ``rows`` (default ``LOAD_CHUNK_ROWS``) rows at a time."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as f:
        for batch in f.iter_batches(batch_size=rows or LOAD_CHUNK_ROWS, columns=columns):
            yield pl.DataFrame(pl.from_arrow(batch))


def _counted(chunks: Iterable[pl.DataFrame], counts: dict[str, int], table: str) -> Iterator[pl.DataFrame]:
    """The non-empty chunks, adding their rows to ``counts[table]``."""
    for df in chunks:
        counts[table] += df.height
        if df.height:
            yield df


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
        names = set(pl.read_parquet_schema(path))
        cols = [c.name for c in metadata.tables[table].columns if c.name in names]
        counts[table] = 0
        load(url, table, _counted(read_chunks(path, cols), counts, table))  # nothing sent when empty
        if log:
            log(f"{table}: {counts[table]} rows")
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
