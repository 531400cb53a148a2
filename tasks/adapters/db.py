"""The billing database: engines, schema migration, reading SQL files into polars, bulk writes.

Every query text lives in ``sql/*.sql``; this module finds it by name, binds parameters with
SQLAlchemy and returns a polars frame with explicit types (SQLite returns dates as strings, so
callers pass a schema and we cast). Large writes go through the fastest path each database has
(chunked multi-row INSERT within one transaction); replacing a run date's rows is one transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sql.schema import metadata
from tasks.redact import redact

SQL_DIR = Path(str(resources.files("sql")))


class DatabaseError(RuntimeError):
    """A problem with the database as a whole (unreachable, missing table): the run must stop."""


def redact_url(url: str) -> str:
    """The URL with its password and any secret query parameter replaced (tasks.redact), safe for logs."""
    try:
        return redact(sa.engine.make_url(url).render_as_string(hide_password=True))
    except Exception:
        return redact(re.sub(r"//[^@/]*@", "//***@", url))


@lru_cache(maxsize=16)
def engine_for(url: str) -> Engine:
    """One pooled engine per URL; SQLite files get their folder created and WAL mode."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a failed statement's error never carries row values (customer data, secrets)
    kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True, "hide_parameters": True}
    if url.startswith("mysql"):
        kwargs["connect_args"] = {"local_infile": True}
    engine = sa.create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _rec):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


def check_connection(url: str) -> None:
    """Raise :class:`DatabaseError` with a clear message when the database cannot be reached."""
    try:
        with engine_for(url).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        raise DatabaseError(
            f"cannot connect to database {redact_url(url)}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        ) from None


def _alembic_config(conn: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SQL_DIR / "migrations"))
    cfg.attributes["connection"] = conn
    return cfg


def init_db(url: str) -> list[str]:
    """Create or migrate the schema to the newest revision (all heads). Idempotent.

    Returns the revisions that were applied (empty when the database was already current).
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    check_connection(url)
    engine = engine_for(url)
    with engine.begin() as conn:
        before = set(MigrationContext.configure(conn).get_current_heads())
        command.upgrade(_alembic_config(conn), "heads")
        after = set(MigrationContext.configure(conn).get_current_heads())
    return sorted(after - before)


def current_revisions(url: str) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with engine_for(url).connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def require_tables(url: str, names: list[str] | tuple[str, ...]) -> None:
    """Stop with a clear message naming every missing table."""
    check_connection(url)
    present = set(sa.inspect(engine_for(url)).get_table_names())
    missing = [n for n in names if n not in present]
    if missing:
        raise DatabaseError(
            f"database {redact_url(url)} lacks table(s) {', '.join(missing)}; run `bua db init`"
        )


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
        reads = _in_child(_connectorx_reads, url, jobs, 1) if url.startswith("sqlite") else _connectorx_reads(url, jobs, 1)
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
        fast = _in_child(_connectorx_reads, url, jobs, threads)
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


def sqlite_file(url: str) -> str | None:
    """The file of a file-backed SQLite URL; None for another database, ``:memory:`` or a ``file:`` URI."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return None if u.database.startswith("file:") else u.database


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


def _connectorx_uri(url: str) -> str | None:
    u = sa.engine.make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        path = sqlite_file(url)
        return None if path is None else "sqlite://" + str(Path(path).resolve())
    if backend not in ("postgresql", "mysql", "mariadb"):
        return None
    scheme = "postgresql" if backend == "postgresql" else "mysql"
    return u.set(drivername=scheme).render_as_string(hide_password=False)


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


def _sqlite_numbers_as_text(df: pl.DataFrame, schema: Mapping[str, Any]) -> pl.DataFrame:
    """Text wanted from a NUMERIC column read as floats: as Python's sqlite3 gives it ("5", "5.25").

    SQLite stores an integral NUMERIC value as an integer, which the SQLAlchemy path renders
    without a decimal point; connectorx reads the whole column as f64 ("5.0").
    """
    fix = [
        c
        for c, t in schema.items()
        if c in df.columns and (t == pl.String or t == pl.Utf8) and df.schema[c] in (pl.Float64, pl.Float32)
    ]
    if not fix:
        return df
    return df.with_columns(
        pl.when((pl.col(c) == pl.col(c).floor()) & (pl.col(c).abs() < 2**53))
        .then(pl.col(c).cast(pl.Int64).cast(pl.String))
        .otherwise(pl.col(c).cast(pl.String))
        .alias(c)
        for c in fix
    )


def _frame(data: dict[str, list[Any]], schema: Mapping[str, Any]) -> pl.DataFrame:
    out = {}
    for c, values in data.items():
        target = schema.get(c)
        if target in (pl.Date, pl.Datetime) or isinstance(target, pl.Datetime):
            out[c] = pl.Series(c, [None if v is None else str(v) for v in values], dtype=pl.String)
        elif target is not None and (target == pl.String or target == pl.Utf8):
            out[c] = pl.Series(c, [None if v is None else str(v) for v in values], dtype=pl.String)
        else:
            out[c] = pl.Series(
                c, [None if v is None else float(v) if _is_decimal(v) else v for v in values], strict=False
            )
    return pl.DataFrame(out)


def _is_decimal(v: Any) -> bool:
    import decimal

    return isinstance(v, decimal.Decimal)


def cast_frame(df: pl.DataFrame, schema: Mapping[str, Any]) -> pl.DataFrame:
    """Cast columns to ``schema``; date/datetime columns that arrive as text are parsed."""
    exprs = []
    for c, t in schema.items():
        if c not in df.columns:
            raise DatabaseError(f"query result lacks column {c!r}")
        col = pl.col(c)
        dtype = df.schema[c]
        if t == pl.Date and dtype == pl.String:
            exprs.append(col.str.slice(0, 10).str.to_date("%Y-%m-%d").alias(c))
        elif (t == pl.Datetime or isinstance(t, pl.Datetime)) and dtype == pl.String:
            exprs.append(
                col.str.replace("T", " ")
                .str.slice(0, 19)
                .str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
                .alias(c)
            )
        else:
            exprs.append(col.cast(t).alias(c))
    return df.select(exprs)


@contextmanager
def transaction(url: str) -> Iterator[Connection]:
    with engine_for(url).begin() as conn:
        yield conn


def insert_frame(conn: Connection, table: str, df: pl.DataFrame, chunk_rows: int = 5000) -> int:
    """Insert a frame into ``table`` inside the caller's transaction, by the fastest path each database has.

    PostgreSQL: ``COPY … FROM STDIN`` (CSV); MySQL/MariaDB: ``LOAD DATA LOCAL INFILE`` from a temporary
    CSV; SQLite: the driver's ``executemany`` on plain tuples (in-process, no per-row SQLAlchemy work).
    Small frames and anything else use SQLAlchemy multi-row INSERTs. All run on the caller's connection,
    so they commit or roll back with its transaction. Floats for DECIMAL columns are rounded by the
    database to the column's scale (callers round money to cents first).
    """
    if df.height == 0:
        return 0
    tbl = metadata.tables[table]
    cols = [c for c in df.columns if c in tbl.c]
    df = df.select(cols)
    dialect = conn.dialect.name
    if df.height >= 500:
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


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
