"""The `bua` Typer application object, its sub-command groups and the global options.

Command modules (flows/cli_*.py) add their commands to these objects; flows/cli.py imports them
all. Heavy imports (prefect, polars pipelines) happen inside the commands so `bua --help` is fast.
"""

from __future__ import annotations

import datetime as dt
import os

import typer

from tasks.settings import Settings, load_settings

app = typer.Typer(
    name="bua",
    help="Bottom-up accrual of unbilled energy: month-end accrual, meter data ingest, companion flows.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)
db_app = typer.Typer(help="The billing database.", no_args_is_help=True)
ingest_app = typer.Typer(help="Load meter data and billing records.", no_args_is_help=True)
meter_app = typer.Typer(help="What the meter store holds.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ingest_app, name="ingest")
app.add_typer(meter_app, name="meter")


@app.callback()
def main(
    ctx: typer.Context,
    database_url: str | None = typer.Option(
        None, envvar=None, help="SQLAlchemy URL (default BUA_DATABASE_URL)"
    ),
    meter_store: str | None = typer.Option(None, help="meter store path or s3:// (default BUA_METER_STORE)"),
    output_url: str | None = typer.Option(None, help="output path or s3:// (default BUA_OUTPUT_URL)"),
    shards: int | None = typer.Option(None, help="number of shards (default BUA_SHARDS)"),
) -> None:
    """Global options override the BUA_* environment, which overrides the embedded defaults."""
    # Prefect's local server must not phone home from a finance system (set before prefect loads).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    ctx.obj = load_settings(
        database_url=database_url, meter_store=meter_store, output_url=output_url, shards=shards
    )


def settings_from(ctx: typer.Context, **overrides: object) -> Settings:
    """The settings of this invocation, with command-specific overrides applied."""
    base: Settings = ctx.find_root().obj or load_settings()
    extra = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=extra) if extra else base


def fail(message: str, code: int = 2) -> None:
    """Print a clear error (no traceback) and exit non-zero."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def parse_date_option(value: str | None, option: str) -> dt.date | None:
    """A YYYY-MM-DD option value as a date (None stays None); a clear error otherwise."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date (YYYY-MM-DD)")
        raise  # unreachable: fail exits
