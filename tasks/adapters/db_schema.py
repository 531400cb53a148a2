"""The billing database's schema: migration to the newest revision (alembic), the revisions applied,
and the check that the tables a command needs are there."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tasks.adapters.db_engine import SQL_DIR, DatabaseError, check_connection, engine_for, redact_url


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
