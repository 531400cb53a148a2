"""Warm the billing database before the extract: fresh statistics, and the extract's tables and indexes read once.

A database restored from an RDS snapshot loads its blocks from S3 lazily: the first read of each
block is slow, and the optimizer's statistics may be stale. For every table the extract reads
(:data:`tasks.adapters.extract.SOURCE_TABLES_USED`): MariaDB/MySQL ``ANALYZE TABLE`` then
``SELECT COUNT(*) … FORCE INDEX (…)`` once per index (PRIMARY reads InnoDB's clustered index, i.e.
every row); PostgreSQL ``ANALYZE`` then ``pg_prewarm`` of the table and its indexes where the
extension is installed, else a sequential ``count(*)``; SQLite ``ANALYZE`` and a ``count(*)`` per
index (``INDEXED BY``). Names come from the database's own catalogue, quoted by the dialect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import polars as pl
import sqlalchemy as sa

from tasks.adapters.db import engine_for
from tasks.adapters.extract import SOURCE_TABLES_USED

log = logging.getLogger(__name__)


def _indexes(inspector: sa.Inspector, table: str) -> list[str | None]:
    """None for the primary key (or the table itself), then every named secondary index."""
    return [None, *sorted(ix["name"] for ix in inspector.get_indexes(table) if ix.get("name"))]


def _statements(
    dialect: str, q: Callable[[str], str], table: str, index: str | None, prewarm: bool
) -> list[str]:
    t = q(table)
    if dialect in ("mysql", "mariadb"):
        return [f"SELECT COUNT(*) FROM {t} FORCE INDEX ({'PRIMARY' if index is None else q(index)})"]
    if dialect == "postgresql":
        if prewarm:
            return [f"SELECT pg_prewarm('{t if index is None else q(index)}'::regclass)"]
        return [f"SELECT count(*) FROM {t}"] if index is None else []
    if dialect == "sqlite":
        return [f"SELECT count(*) FROM {t}" + ("" if index is None else f" INDEXED BY {q(index)}")]
    return [f"SELECT count(*) FROM {t}"] if index is None else []


def warm_up(
    url: str, tables: tuple[str, ...] = SOURCE_TABLES_USED, progress: Callable[[str], None] = log.info
) -> pl.DataFrame:
    """Analyse and read the extract's tables and indexes; one row per step: table, step, index, seconds."""
    engine = engine_for(url)
    dialect = engine.dialect.name
    q = engine.dialect.identifier_preparer.quote
    rows: list[dict[str, object]] = []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        inspector = sa.inspect(conn)
        present = set(inspector.get_table_names())
        prewarm = dialect == "postgresql" and bool(
            conn.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_prewarm'")).first()
        )
        for table in tables:
            if table not in present:
                continue
            t0 = time.perf_counter()
            if dialect in ("mysql", "mariadb"):
                conn.execute(sa.text(f"ANALYZE TABLE {q(table)}")).fetchall()
            else:
                conn.execute(sa.text(f"ANALYZE {q(table)}"))
            rows.append(
                {"table": table, "step": "analyze", "index": None, "seconds": time.perf_counter() - t0}
            )
            for index in _indexes(inspector, table):
                for stmt in _statements(dialect, q, table, index, prewarm):
                    t0 = time.perf_counter()
                    conn.execute(sa.text(stmt)).fetchall()
                    rows.append(
                        {
                            "table": table,
                            "step": "read",
                            "index": index or "PRIMARY",
                            "seconds": time.perf_counter() - t0,
                        }
                    )
    report = pl.DataFrame(
        rows, schema={"table": pl.String, "step": pl.String, "index": pl.String, "seconds": pl.Float64}
    )
    progress(
        f"warm-up: {report.height} steps on {report['table'].n_unique()} tables in {report['seconds'].sum():.1f} s"
    )
    return report
