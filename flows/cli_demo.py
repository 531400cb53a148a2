"""`bua demo`: a synthetic portfolio into the embedded default, the month-end accrual, the summary.

Steps: generate a small deterministic portfolio (`tasks.generate`), create/migrate the schema, replace
the billing tables' rows with the portfolio's (so that running the demo again gives the same result),
ingest its NEM12 files into the meter store and its NEM13 files into ``basic_read``, run the accrual
as at 2026-11-01 through the same code path as ``bua run``, and print the inventory, the accrual
summary by month, state and fuel with totals, and where the outputs are.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer

from flows.cli_app import app, fail, settings_from

DEMO_RUN_DATE = dt.date(2026, 11, 1)


def _clear_source_tables(url: str) -> None:
    import sqlalchemy as sa

    from sql.schema import SOURCE_TABLES, metadata
    from tasks.adapters.db import transaction

    with transaction(url) as conn:
        for name in reversed(SOURCE_TABLES):
            conn.execute(sa.delete(metadata.tables[name]))


def _inventory(folder: Path, meter_store_rows: int) -> list[tuple[str, str]]:
    import polars as pl

    db = folder / "db"

    def read(name: str) -> pl.DataFrame:
        return pl.read_parquet(db / f"{name}.parquet")

    acc = read("account")
    meters = read("meter")
    regs = read("meter_register")
    inv = read("invoice")
    reads = read("basic_read") if (db / "basic_read.parquet").exists() else pl.DataFrame()

    def counts(df: pl.DataFrame, col: str) -> str:
        g = df.group_by(col).len().sort(col)
        return ", ".join(f"{k} {n:,}" for k, n in g.iter_rows())

    nem13 = len(list((folder / "nem13").glob("*"))) if (folder / "nem13").exists() else 0
    return [
        ("accounts", f"{acc.height:,} — {counts(acc, 'service_type')}"),
        ("customer class", counts(acc, "customer_class")),
        ("billing cycle (months)", counts(acc, "billing_cycle_months")),
        ("meters", f"{meters.height:,} — {counts(meters, 'installation_type')}"),
        ("registers", f"{regs.height:,} — {counts(regs, 'stream')}"),
        ("interval register-days", f"{meter_store_rows:,} in the meter store"),
        ("basic reads", f"{reads.height:,} rows in basic_read + {nem13} NEM13 files"),
        ("invoices", f"{inv.height:,} — {counts(inv, 'status')}"),
    ]


@app.command("demo")
def demo_cmd(
    ctx: typer.Context,
    accounts: int = typer.Option(2000, "--accounts", min=50, help="accounts in the demo portfolio"),
    seed: int = typer.Option(42, "--seed", help="random seed"),
) -> None:
    """Generate a demo portfolio into .bua/, run the month-end accrual as at 2026-11-01, print the summary."""
    from rich.console import Console
    from rich.table import Table

    from flows.cli_run import print_summary, run_month_end
    from tasks.adapters.db import DatabaseError, init_db, redact_url
    from tasks.adapters.ingest import ingest_nem12, ingest_nem13
    from tasks.adapters.meter_store import MeterStoreError, register_day_count
    from tasks.generate import generate
    from tasks.generate.load import load_portfolio

    console = Console()
    settings = settings_from(ctx)
    folder = Path(".bua") / "demo-portfolio"
    t0 = time.perf_counter()
    with console.status("generating the demo portfolio"):
        generate(folder, accounts=accounts, seed=seed, months=13)
    console.log(f"generated {accounts:,} accounts into {folder} ({time.perf_counter() - t0:.1f} s)")
    try:
        t1 = time.perf_counter()
        init_db(settings.db_url)
        _clear_source_tables(settings.db_url)
        load_portfolio(settings.db_url, folder)
        console.log(
            f"loaded the billing tables into {redact_url(settings.db_url)} ({time.perf_counter() - t1:.1f} s)"
        )
        t1 = time.perf_counter()
        nem12 = ingest_nem12([str(folder / "nem12")], settings)
        nem13_files = (
            sorted(str(p) for p in (folder / "nem13").glob("*")) if (folder / "nem13").exists() else []
        )
        if nem13_files:
            ingest_nem13([str(folder / "nem13")], settings)
        if (folder / "weather").is_dir() and any((folder / "weather").iterdir()):
            from tasks.adapters.weather import ingest_weather

            ingest_weather([str(folder / "weather")], settings)  # SPEC §2 weather_daily (BoM daily files)
        console.log(
            f"ingested NEM12 ({nem12.accepted} files) and NEM13 ({len(nem13_files)} files) ({time.perf_counter() - t1:.1f} s)"
        )
        store_rows = register_day_count(settings)
        result = run_month_end(settings, run_date=DEMO_RUN_DATE)
    except (DatabaseError, MeterStoreError) as exc:
        fail(str(exc))
        return
    inv = Table(title="Demo portfolio")
    inv.add_column("what")
    inv.add_column("count")
    for k, v in _inventory(folder, store_rows):
        inv.add_row(k, v)
    console.print(inv)
    print_summary(result, settings, time.perf_counter() - t0)
    console.print(
        f"meter store: {settings.meter_store}; work files: {settings.output_url}/work/{DEMO_RUN_DATE}/"
    )
    console.print(f"demo finished in {time.perf_counter() - t0:.1f} s")
