"""Alembic environment: migrations run against the engine given by bua (never a hard-coded URL)."""

from __future__ import annotations

from alembic import context

from sql.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - bua always passes a connection
    raise RuntimeError("run migrations through `bua db init`, which supplies the database connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
