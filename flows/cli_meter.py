"""`bua ingest nem12|nem13|weather PATH...`, `bua meter show NMI` and `bua meter compact`."""

from __future__ import annotations

import re
import sys

import typer

from flows.cli_app import fail, ingest_app, meter_app, parse_date_option, settings_from

MARKET_OFFSET = "+10:00"  # NEM market time: UTC+10, no daylight saving
NMI_PATTERN = re.compile(r"[A-Za-z0-9]{10}[0-9]?")  # AEMO NMI / gas MIRN: 10 characters, checksum optional
SOME_REJECTED = 3  # exit code: some input rejected (quarantine / rejects file), the rest loaded


def _report(summary) -> None:  # noqa: ANN001 - tasks.adapters.ingest.IngestSummary, imported lazily
    """Print the summary; exit 1 when no file was loaded, 3 when some input was rejected (a file
    quarantined or NEM13 reads written to a rejects file), else 0 (docs/BAD-INPUTS.md)."""
    for line in summary.lines():
        is_rejection = line.startswith("rejected ")
        typer.secho(line, err=is_rejection, fg=typer.colors.YELLOW if is_rejection else None)
    if summary.accepted == 0:
        raise typer.Exit(1)
    if summary.rejected or summary.unknown_reads:
        raise typer.Exit(SOME_REJECTED)


@ingest_app.command("nem12")
def ingest_nem12_cmd(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="NEM12 files, zips, folders or s3:// prefixes"),
    batch_readings: int = typer.Option(
        6_000_000, min=1, help="readings merged into the store per batch (bounds memory)"
    ),
) -> None:
    """Load NEM12 interval data into the meter store (BUA_METER_STORE); a bad file is copied to the
    quarantine with its reason (the source stays). Exit 3 when some input was rejected."""
    from tasks.adapters.ingest import SourceError, ingest_nem12
    from tasks.adapters.meter_store import MeterStoreError

    try:
        summary = ingest_nem12(paths, settings_from(ctx), batch_readings=batch_readings)
    except (SourceError, MeterStoreError) as exc:
        fail(str(exc))
        return
    _report(summary)


@ingest_app.command("nem13")
def ingest_nem13_cmd(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="NEM13 files, zips, folders or s3:// prefixes"),
) -> None:
    """Load NEM13 basic (accumulation) reads into basic_read in BUA_DATABASE_URL. Exit 3 when some
    input was rejected (a file quarantined, or reads of unknown NMIs in a rejects file)."""
    from tasks.adapters.db import DatabaseError
    from tasks.adapters.ingest import SourceError, ingest_nem13

    try:
        summary = ingest_nem13(paths, settings_from(ctx))
    except (SourceError, DatabaseError) as exc:
        fail(str(exc))
        return
    _report(summary)


@meter_app.command("compact")
def meter_compact(
    ctx: typer.Context,
    shard: int | None = typer.Option(None, "--shard", min=0, help="only this shard"),
) -> None:
    """Fold the delta files of daily deliveries into their meter store partitions (the month end
    does this first; safe to re-run after a kill; not while an ingest writes to the store)."""
    from tasks.adapters.meter_deltas import compact_store
    from tasks.adapters.meter_store import MeterStoreError

    try:
        done = compact_store(settings_from(ctx), shard)
    except MeterStoreError as exc:
        fail(str(exc))
        return
    typer.echo(done.line())


@meter_app.command("show")
def meter_show(
    ctx: typer.Context,
    nmi: str = typer.Argument(..., help="the NMI"),
    suffix: str | None = typer.Option(None, "--suffix", help="only this register suffix, e.g. E1"),
    date_from: str | None = typer.Option(None, "--from", help="first day (YYYY-MM-DD, inclusive)"),
    date_to: str | None = typer.Option(None, "--to", help="last day (YYYY-MM-DD, inclusive)"),
    csv: bool = typer.Option(
        False, "--csv", help="CSV on stdout: nmi,suffix,interval_start,interval_minutes,value,unit,quality"
    ),
) -> None:
    """Print what the meter store holds for one NMI, one row per interval (market time)."""
    import polars as pl

    from tasks.adapters.meter_store import INTERVAL_COLUMNS, MeterStoreError, explode_intervals, scan_interval
    from tasks.domain.shard import shard_of

    settings = settings_from(ctx)
    lo, hi = parse_date_option(date_from, "--from"), parse_date_option(date_to, "--to")
    if not NMI_PATTERN.fullmatch(nmi):
        fail(f"NMI {nmi!r} is not a NMI or MIRN (10 letters or digits, optionally an 11th checksum digit)")
    if lo and hi and lo > hi:
        fail(f"--from {lo} is after --to {hi}")
    from tasks.adapters.meter_store import interval_root
    from tasks.adapters.storage import exists

    if not exists(interval_root(settings), settings):
        fail(
            f"meter store {settings.meter_store} holds no interval data (no such folder or prefix): "
            "check BUA_METER_STORE / --meter-store, or load NEM12 files with `bua ingest nem12`",
            code=1,
        )
    try:
        lf = scan_interval(settings, shard_of(nmi, settings.shards), lo, hi, nmis=[nmi])
    except MeterStoreError as exc:
        fail(str(exc))
        return
    if suffix is not None:
        lf = lf.filter(pl.col("suffix") == suffix)
    rows = (
        explode_intervals(lf.sort("nmi", "suffix", "read_date"))
        .with_columns(
            (pl.col("interval_start").dt.strftime("%Y-%m-%dT%H:%M:%S") + MARKET_OFFSET).alias(
                "interval_start"
            )
        )
        .select(INTERVAL_COLUMNS)
        .collect()
    )
    if csv:
        sys.stdout.write(rows.write_csv())
        return
    if rows.height == 0:
        typer.echo(f"the meter store holds no interval data for {nmi}" + (f" {suffix}" if suffix else ""))
        return
    with pl.Config(tbl_rows=50, tbl_cols=-1):
        typer.echo(rows)


@ingest_app.command("weather")
def ingest_weather_cmd(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(
        ..., help="BoM daily min/max temperature CSVs, zips, folders or s3:// prefixes"
    ),
) -> None:
    """Load daily weather observations (Bureau of Meteorology daily CSV) into weather_daily (SPEC §2).

    Stations map to jurisdictions through BUA_WEATHER_STATIONS (CSV station_id,jurisdiction) or the
    built-in table; unreadable rows go to the rejects folder with file:line and a reason."""
    from tasks.adapters.db import DatabaseError
    from tasks.adapters.ingest import SourceError
    from tasks.adapters.weather import ingest_weather

    try:
        summary = ingest_weather(paths, settings_from(ctx))
    except (SourceError, DatabaseError) as exc:
        fail(str(exc))
        return
    for line in summary.lines():
        is_rejection = line.startswith("rejected ")
        typer.secho(line, err=is_rejection, fg=typer.colors.YELLOW if is_rejection else None)
    if summary.accepted == 0:
        raise typer.Exit(1)
