"""The billing database of bench/scale.py on a database server: a fresh database on the local
MariaDB or PostgreSQL holding the same rows as a prepared SQLite ``bua.db``.

The schema comes from ``bua db init`` (alembic, as in production); the rows are read table by table
from a copy of the SQLite file (Python's sqlite3 only, one SQLite library in the process) and
written through the loader the project loads portfolios with (tasks/generate/load.py: PostgreSQL
``COPY``, MariaDB ``LOAD DATA LOCAL INFILE``), parents before children; identity sequences are then
moved past the copied ids. Server URLs come from ``BUA_BENCH_MARIADB_URL`` / ``BUA_BENCH_POSTGRES_URL``
(defaults: the local servers, root / postgres without a password); logs and results only ever show
:func:`tasks.adapters.db.redact_url` of them.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import polars as pl
import sqlalchemy as sa

KINDS = ("sqlite", "mariadb", "postgresql")
ADMIN = {
    "mariadb": os.environ.get("BUA_BENCH_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
    "postgresql": os.environ.get(
        "BUA_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    ),
}


def server_url(kind: str, name: str) -> str:
    """The URL of database ``name`` on the ``kind`` server (same credentials as its admin URL)."""
    return sa.engine.make_url(ADMIN[kind]).set(database=name).render_as_string(hide_password=False)


def recreate(kind: str, name: str) -> str:
    """Drop database ``name`` on the ``kind`` server if there, create it empty; its URL."""
    drop(kind, name)
    admin = sa.create_engine(ADMIN[kind], isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server_url(kind, name)


def drop(kind: str, name: str) -> None:
    from tasks.adapters.db import engine_for

    engine_for.cache_clear()
    admin = sa.create_engine(ADMIN[kind], isolation_level="AUTOCOMMIT")
    force = " WITH (FORCE)" if kind == "postgresql" else ""
    with admin.connect() as c:
        c.execute(sa.text(f"DROP DATABASE IF EXISTS {name}{force}"))
    admin.dispose()


def _polars_type(col: sa.Column) -> pl.DataType:
    t = col.type
    if isinstance(t, sa.Boolean):
        return pl.Boolean()
    if isinstance(t, sa.Integer):
        return pl.Int64()
    if isinstance(t, sa.DateTime):
        return pl.Datetime("us")
    if isinstance(t, sa.Date):
        return pl.Date()
    if isinstance(t, sa.Numeric | sa.Float):
        return pl.Float64()
    return pl.String()


def _select(table: sa.Table) -> str:
    """Every column of ``table`` in a form with one SQLite storage class per column."""
    parts = []
    for c in table.columns:
        kind = _polars_type(c)
        if kind == pl.Float64:
            parts.append(f'CAST("{c.name}" AS REAL)')
        elif kind in (pl.Int64, pl.Boolean):
            parts.append(f'CAST("{c.name}" AS INTEGER)')
        else:
            parts.append(f'"{c.name}"')
    return f'SELECT {", ".join(parts)} FROM "{table.name}"'


def read_table(con: sqlite3.Connection, table: sa.Table) -> pl.DataFrame:
    """A table of the SQLite file as a frame of the schema's types (dates and datetimes parsed from
    SQLAlchemy's SQLite text forms)."""
    rows = con.execute(_select(table)).fetchall()
    raw = {c.name: (pl.Int64 if _polars_type(c) == pl.Boolean else _polars_type(c)) for c in table.columns}
    raw = {k: (pl.String if v in (pl.Date, pl.Datetime("us")) else v) for k, v in raw.items()}
    df = pl.DataFrame(rows, schema=raw, orient="row")
    return df.with_columns(
        [pl.col(c.name).cast(pl.Boolean) for c in table.columns if _polars_type(c) == pl.Boolean]
        + [pl.col(c.name).str.slice(0, 10).str.to_date("%Y-%m-%d") for c in table.columns
           if _polars_type(c) == pl.Date]
        + [pl.col(c.name).str.replace("T", " ").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us")
           for c in table.columns if _polars_type(c) == pl.Datetime("us")]
    )  # fmt: skip


def copy_sqlite(src: Path, url: str) -> dict[str, int]:
    """Schema by ``init_db`` on ``url``, then every table of the SQLite file ``src`` (rows per table)."""
    from sql.schema import metadata
    from tasks.adapters.db import init_db
    from tasks.generate.load import loader_for

    t = time.perf_counter()
    init_db(url)
    load = loader_for(url)
    counts: dict[str, int] = {}
    con = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    try:
        present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in metadata.sorted_tables:
            if table.name not in present:
                continue
            df = read_table(con, table)
            if df.height:
                load(url, table.name, df)
            counts[table.name] = df.height
    finally:
        con.close()
    reset_sequences(url)
    print(f"copied {sum(counts.values()):,} rows into the {sa.engine.make_url(url).get_backend_name()} "
          f"database in {time.perf_counter() - t:.0f} s", flush=True)  # fmt: skip
    return counts


def reset_sequences(url: str) -> None:
    """PostgreSQL: every integer identity sequence past the copied ids (later inserts do not collide)."""
    if not url.startswith("postgresql"):
        return
    from sql.schema import metadata
    from tasks.adapters.db import transaction

    with transaction(url) as conn:
        for tbl in metadata.sorted_tables:
            if (
                "id" in tbl.c
                and tbl.c["id"].autoincrement is True
                and isinstance(tbl.c["id"].type, sa.Integer)
            ):
                conn.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('\"{tbl.name}\"', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM \"{tbl.name}\"), 0) + 1, false)"
                ))  # fmt: skip


TEMPLATE = "bua_scale_template"


def prepare_template(kind: str, src: Path) -> None:
    """Database :data:`TEMPLATE` on the ``kind`` server with the rows of the SQLite file ``src``: the
    source of :func:`clone` (one slow copy per run of bench/scale.py, not one per measurement)."""
    from tasks.adapters.db import engine_for

    url = recreate(kind, TEMPLATE)
    copy_sqlite(src, url)
    analyze(url)
    engine_for(url).dispose()  # PostgreSQL copies a template only while nobody is connected to it
    engine_for.cache_clear()


def analyze(url: str) -> None:
    """The planner's statistics of every table, as a database in service has them."""
    from sql.schema import metadata
    from tasks.adapters.db import engine_for

    with engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if url.startswith("postgresql"):
            conn.execute(sa.text("ANALYZE"))
            return
        for table in metadata.sorted_tables:
            conn.execute(sa.text(f"ANALYZE TABLE `{table.name}`")).fetchall()


def clone(kind: str, name: str) -> str:
    """A new database ``name`` equal to :data:`TEMPLATE`; its URL.

    PostgreSQL: ``CREATE DATABASE … TEMPLATE`` (a file copy). MariaDB: the schema by ``init_db``
    (alembic, as production has it), then each table's rows by ``INSERT … SELECT`` from the template
    on the server (foreign-key checks off for the copy only: the rows are the template's).
    """
    if kind == "postgresql":
        drop(kind, name)
        admin = sa.create_engine(ADMIN[kind], isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
        admin.dispose()
        return server_url(kind, name)
    from sql.schema import metadata
    from tasks.adapters.db import init_db, transaction

    url = recreate(kind, name)
    init_db(url)
    with transaction(url) as conn:
        conn.execute(sa.text("SET foreign_key_checks = 0"))
        for table in metadata.sorted_tables:
            cols = ", ".join(f"`{c.name}`" for c in table.columns)
            conn.execute(
                sa.text(f"INSERT INTO `{table.name}` ({cols}) SELECT {cols} FROM {TEMPLATE}.`{table.name}`")
            )
        conn.execute(sa.text("SET foreign_key_checks = 1"))
    return url
