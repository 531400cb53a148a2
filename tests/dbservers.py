"""Real database servers for tests: SQLite always; MariaDB and PostgreSQL where reachable.

Each test database is created fresh with a unique name and dropped afterwards. Where a server is
missing the test is skipped with a message saying which server and why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

MARIADB_ADMIN = os.environ.get("BUA_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
POSTGRES_ADMIN = os.environ.get(
    "BUA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
KINDS = ("sqlite", "mariadb", "postgres")


def server_problem(kind: str) -> str | None:
    """None when the server answers, else a one-line reason."""
    if kind == "sqlite":
        return None
    admin = MARIADB_ADMIN if kind == "mariadb" else POSTGRES_ADMIN
    try:
        eng = sa.create_engine(admin, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(sa.text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{kind} server not reachable at {sa.engine.make_url(admin).render_as_string(hide_password=True)}: {type(exc).__name__}"


@contextmanager
def fresh_database(kind: str, tmp_path) -> Iterator[str]:  # noqa: ANN001
    """Yield the SQLAlchemy URL of a new empty database of ``kind``; drop it afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/bua-test.db"
        return
    name = f"bua_t_{uuid.uuid4().hex[:12]}"
    admin_url = MARIADB_ADMIN if kind == "mariadb" else POSTGRES_ADMIN
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from tasks.adapters.db import engine_for

        engine_for.cache_clear()
        with admin.connect() as c:
            if kind == "postgres":
                c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                c.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
