"""`bua generate`: the synthetic portfolio (SPEC §8), optionally loaded into the database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from flows.cli_app import app, fail, settings_from


@app.command("generate")
def generate_cmd(
    ctx: typer.Context,
    accounts: int = typer.Option(2000, "--accounts", min=1, help="number of accounts"),
    seed: int = typer.Option(1, "--seed", help="random seed (same arguments → same bytes)"),
    months: int = typer.Option(13, "--months", min=2, max=60, help="months of meter data, ending at --end"),
    out: Path = typer.Option(Path(".bua/portfolio"), "--out", help="output directory"),
    end: str = typer.Option("2026-10-31", "--end", help="last day of meter data (YYYY-MM-DD)"),
    load: bool = typer.Option(
        False, "--load", help="also create/migrate the schema and load the rows into BUA_DATABASE_URL"
    ),
    store: str | None = typer.Option(
        None,
        "--store",
        help="also write the interval meter store here (a folder or s3:// prefix) directly, exactly as "
        "`bua ingest nem12` of the NEM12 files would (docs/GENERATOR.md, large portfolios)",
    ),
    shards: int | None = typer.Option(
        None, "--shards", min=1, max=4096, help="shards of the --store (default BUA_SHARDS)"
    ),
    nem12: bool = typer.Option(
        True,
        "--nem12/--no-nem12",
        help="write the NEM12 text files (--no-nem12 with --store: no text at all)",
    ),
    variant: Path | None = typer.Option(
        None,
        "--variant",
        help="JSON file of generator settings (tasks/generate/variant.py: weather, balance points, "
        "sensitivities, noise, drift, seasonal base); default: the standard generator",
    ),
) -> None:
    """Generate a deterministic portfolio: db/*.parquet, nem12/, nem13/, truth/, manifest.json."""
    import time

    from tasks.generate import generate

    try:
        end_day = dt.date.fromisoformat(end)
    except ValueError:
        fail(f"--end {end!r} is not a date (YYYY-MM-DD)")
        return
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file, not a folder: give a folder (it is created if missing)")
    if load:  # before minutes of generating: the database must answer
        from tasks.adapters.db import check_connection

        check_connection(settings_from(ctx).db_url)
    t0 = time.perf_counter()
    try:
        from tasks.generate.variant import Variant

        v = Variant.load(variant)
    except (OSError, ValueError) as exc:
        fail(f"--variant {variant}: {exc}")
        return
    store_settings = None
    if store is not None:
        store_settings = settings_from(ctx, meter_store=store, shards=shards)
    elif not nem12 or shards is not None:
        fail("--no-nem12 and --shards need --store (else the interval data would go nowhere)")
    manifest = generate(
        out,
        accounts=accounts,
        seed=seed,
        months=months,
        end=end_day,
        log=typer.echo,
        variant=v,
        store=store_settings,
        nem12=nem12,
    )
    files = manifest["files"]
    typer.echo(
        f"{out}: {accounts} accounts, {files['nem12_files']} NEM12 files ({files['nem12_values']:,} interval values), "
        f"{files['nem13_files']} NEM13 files, {files['truth_rows']:,} truth register-days in {time.perf_counter() - t0:.1f} s"
    )
    if store_settings is not None:
        typer.echo(
            f"meter store {store} ({store_settings.shards} shards): {files['store_register_days']:,} register-days "
            f"({files['store_readings']:,} readings) merged as `bua ingest nem12` of the NEM12 would"
        )
    if load:
        from tasks.adapters.db import init_db, redact_url
        from tasks.generate.load import load_portfolio

        settings = settings_from(ctx)
        init_db(settings.db_url)  # a fault: one `error:` line, exit 1 (flows/cli_app.py)
        counts = load_portfolio(settings.db_url, out)
        typer.echo(f"loaded {sum(counts.values()):,} rows into {redact_url(settings.db_url)}")
