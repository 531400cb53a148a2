"""The billing database's engines and URLs: one pooled engine per URL, the connection check, URLs
safe for logs, the SQLite file of a URL, its connectorx URI, and transactions."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

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


def sqlite_file(url: str) -> str | None:
    """The file of a file-backed SQLite URL; None for another database, ``:memory:`` or a ``file:`` URI."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return None if u.database.startswith("file:") else u.database


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


@contextmanager
def transaction(url: str) -> Iterator[Connection]:
    with engine_for(url).begin() as conn:
        yield conn


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
