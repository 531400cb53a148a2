"""`bua ingest billing-csv`, `bua aggregate`, `bua alert`: the companion flows (SPEC §7) from the CLI.

Each command runs the same Prefect flow as its deployment (against PREFECT_API_URL, or Prefect's
ephemeral server when none is set), prints what happened and exits non-zero on failure.
"""

from __future__ import annotations

import json

import typer

from flows.cli_app import (
    app,
    explain,
    fail,
    ingest_app,
    parse_date_option,
    parse_time_option,
    quiet_prefect_errors,
    require_database,
    settings_from,
)

# the tables each companion command reads or writes, checked before Prefect starts
AGGREGATE_TABLES = ("account", "invoice", "payment", "billing_record", "billing_account_daily")
ALERT_TABLES = ("payment", "account_site", "site", "network")
BILLING_INGEST_TABLES = ("billing_record", "fx_rate", "billing_csv_file")
EXIT_REJECTED = 3  # some input rejected and kept, the rest loaded (docs/ERRORS.md)


@ingest_app.command("billing-csv")
def ingest_billing_csv(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="CSV files, folders or s3:// prefixes"),
    rejects_url: str | None = typer.Option(
        None, help="where rejects files go (default BUA_BILLING_REJECTS_URL)"
    ),
) -> None:
    """Load billing CSV records into billing_record (idempotent on id; bad rows to a rejects file).

    Exit 0: every row loaded (or already there); 3: some rows rejected (rejects file and a quarantine
    copy of the source written), the good rows loaded; 1: a file rejected whole, or a fault."""
    settings = settings_from(ctx)
    require_database(settings, BILLING_INGEST_TABLES)  # before Prefect starts

    from flows.billing_ingest import BillingIngestError, billing_csv_ingest
    from flows.runtime import use_settings
    from tasks.adapters.db import DatabaseError

    try:
        with use_settings(settings), quiet_prefect_errors(ctx):  # no URL among the flow's parameters
            results = billing_csv_ingest(paths=paths, rejects_url=rejects_url)
    except (BillingIngestError, DatabaseError) as exc:
        fail(str(exc), code=1)
        return
    for r in results:
        line = f"{r['source']}: {r['rows_loaded']} loaded, {r['rows_duplicate']} already loaded, {r['rows_rejected']} rejected"
        typer.echo(line + (f" (rejects: {r['rejects_url']})" if r["rejects_url"] else ""))
    rejected = [r for r in results if r["rows_rejected"]]
    if rejected:
        rows = sum(int(r["rows_rejected"]) for r in rejected)  # type: ignore[call-overload]
        fail(
            f"{rows} row(s) rejected in {len(rejected)} file(s), the other rows loaded; the rejects files "
            "name each row's line and reason, the sources are copied to the quarantine (docs/BAD-INPUTS.md)",
            code=EXIT_REJECTED,
        )


@app.command("aggregate")
def aggregate_cmd(
    ctx: typer.Context,
    day: str | None = typer.Option(None, help="report day YYYY-MM-DD (default: yesterday in BUA_TIMEZONE)"),
    max_rows_per_file: int | None = typer.Option(None, help="split CSV exports at this many rows"),
) -> None:
    """Daily billing aggregation: per-account charges, payments, balance, aged debt, write-offs."""
    the_day = parse_date_option(day, "--day")
    if max_rows_per_file is not None and max_rows_per_file < 1:
        fail(f"--max-rows-per-file must be at least 1, got {max_rows_per_file}")
    settings = settings_from(ctx)
    require_database(settings, AGGREGATE_TABLES)  # before Prefect starts

    from flows.aggregate import PreCheckFailed, daily_billing_aggregation
    from flows.runtime import use_settings
    from tasks.adapters.db import DatabaseError

    day = the_day.isoformat() if the_day else None
    try:
        with use_settings(settings), quiet_prefect_errors(ctx):
            result = daily_billing_aggregation(day=day, max_rows_per_file=max_rows_per_file)
    except (PreCheckFailed, DatabaseError) as exc:
        fail(str(exc), code=1)
        return
    except ValueError as exc:
        fail(f"--day: {exc}")
        return
    typer.echo(f"{result['day']}: {result['rows']} account rows; files:")
    for f in result["files"]:
        typer.echo(f"  {f}")


@app.command("alert")
def alert_cmd(
    ctx: typer.Context,
    window_end: str | None = typer.Option(
        None, help="end of the 6-hour window (ISO time; default now), local time unless an offset is given"
    ),
) -> None:
    """Revenue of the 6-hour window just ended, by network, posted to Slack."""
    parse_time_option(window_end, "--window-end")
    settings = settings_from(ctx)
    require_database(settings, ALERT_TABLES)  # before Prefect starts

    from flows.alert import revenue_alert
    from flows.runtime import use_settings

    try:
        with use_settings(settings), quiet_prefect_errors(ctx):
            result = revenue_alert(window_end=window_end)
    except Exception as exc:  # noqa: BLE001 - the flow already reported it to Slack; say it plainly here
        fail(explain(exc, settings.db_url)[0], code=1)
        return
    typer.echo(result["message"])
    if not result["posted"]:
        typer.echo(json.dumps({"posted": False, "reason": "no Slack webhook configured"}))
