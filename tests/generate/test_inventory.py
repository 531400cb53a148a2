"""The demo's inventory counts what was loaded and what the meter store holds."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.adapters.db import init_db
from tasks.adapters.inventory import format_inventory, inventory
from tasks.adapters.storage import write_parquet_atomic
from tasks.generate.load import load_portfolio
from tasks.settings import Settings


def test_inventory_counts(small_portfolio: Path, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/inv.db", meter_store=str(tmp_path / "store"))
    init_db(settings.db_url)
    load_portfolio(settings.db_url, small_portfolio)
    # two register-days in one partition, one in another: 3 rows
    part = pl.DataFrame({"nmi": ["A", "A"], "suffix": ["E1", "E1"]})
    write_parquet_atomic(part, f"{tmp_path}/store/interval/shard=000/month=2026-10/data.parquet", settings)
    write_parquet_atomic(
        part.head(1), f"{tmp_path}/store/interval/shard=001/month=2026-10/data.parquet", settings
    )
    inv = inventory(settings)
    acc = pl.read_parquet(small_portfolio / "db" / "account.parquet")
    assert inv["accounts"] == 120
    assert inv["accounts_by_fuel"] == dict(
        acc["service_type"].value_counts().sort("service_type").iter_rows()
    )
    assert sum(inv["accounts_by_billing_cycle_months"].values()) == 120
    assert inv["basic_reads"] == pl.read_parquet(small_portfolio / "db" / "basic_read.parquet").height
    assert inv["interval_register_days"] == 3
    assert (
        sum(inv["invoices_by_status"].values())
        == pl.read_parquet(small_portfolio / "db" / "invoice.parquet").height
    )
    assert "accounts by fuel" in format_inventory(inv)
