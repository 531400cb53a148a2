"""`bua db init`."""

from __future__ import annotations

import typer

from flows.cli_app import db_app, fail, settings_from


@db_app.command("init")
def db_init(ctx: typer.Context) -> None:
    """Create or migrate the schema in BUA_DATABASE_URL (idempotent)."""
    from tasks.adapters.db import DatabaseError, init_db, redact_url

    settings = settings_from(ctx)
    try:
        applied = init_db(settings.db_url)
    except DatabaseError as exc:
        fail(str(exc))
        return
    where = redact_url(settings.db_url)
    if applied:
        typer.echo(f"{where}: applied migration(s) {', '.join(applied)}")
    else:
        typer.echo(f"{where}: schema is up to date (nothing to do)")
