"""`bua db init`."""

from __future__ import annotations

import typer

from flows.cli_app import db_app, settings_from


@db_app.command("init")
def db_init(ctx: typer.Context) -> None:
    """Create or migrate the schema in BUA_DATABASE_URL (idempotent)."""
    from tasks.adapters.db import init_db, redact_url

    settings = settings_from(ctx)
    applied = init_db(settings.db_url)  # a fault: one `error:` line, exit 1 (flows/cli_app.py)
    where = redact_url(settings.db_url)
    if applied:
        typer.echo(f"{where}: applied migration(s) {', '.join(applied)}")
    else:
        typer.echo(f"{where}: schema is up to date (nothing to do)")
