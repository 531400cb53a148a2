"""`bua anonymise`: a pseudonymised copy of the billing database and meter store (issue 16)."""

from __future__ import annotations

import typer

from flows.cli_app import app, fail, settings_from


@app.command("anonymise")
def anonymise_cmd(
    ctx: typer.Context,
    to_database_url: str = typer.Option(
        ..., "--to-database-url", help="SQLAlchemy URL of the copy's database"
    ),
    to_meter_store: str = typer.Option(
        ..., "--to-meter-store", help="path or s3:// of the copy's meter store"
    ),
    replace: bool = typer.Option(False, "--replace", help="overwrite a target that already holds data"),
) -> None:
    """Copy BUA_DATABASE_URL and BUA_METER_STORE with NMIs, account numbers, meter serials, invoice numbers,
    names and places replaced by keyed pseudonyms (key: BUA_ANONYMISE_KEY or BUA_ANONYMISE_KEY_SECRET)."""
    from tasks.adapters.anonymise import AnonymiseError, anonymise, anonymise_key
    from tasks.adapters.aws import AwsConfigError
    from tasks.adapters.db import DatabaseError, redact_url

    src = settings_from(ctx)
    from pydantic import SecretStr

    dst = src.model_copy(update={"database_url": SecretStr(to_database_url), "meter_store": to_meter_store})
    try:
        report = anonymise(src, dst, anonymise_key(src), progress=typer.echo, replace=replace)
    except (AnonymiseError, AwsConfigError, DatabaseError) as exc:
        fail(str(exc))
        return
    total = sum(report.tables.values())
    typer.echo(
        f"copied {total:,} rows into {redact_url(to_database_url)} and {report.register_days:,} register-days "
        f"({report.partitions_in} partitions in, {report.partitions_out} out) into {to_meter_store} in "
        + ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    )
