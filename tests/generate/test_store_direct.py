"""`generate --store`: the meter store written directly equals generate → NEM12 → `ingest_nem12`.

The direct path (tasks/generate/store_out.py) builds the register-day rows from the same records
the NEM12 writer formats; the reference here is the ordinary path through the text files and the
real parser. Equality is checked partition by partition on every column (values compared as
floats, so 12.34 parsed from text must be the same double as 12340 / 1000) and on the parquet
bytes; two direct writes (2 worker threads and 1) must give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tasks.adapters.ingest import ingest_nem12
from tasks.generate import generate
from tasks.settings import Settings

ACCOUNTS, SEED, MONTHS, SHARDS = 200, 21, 3, 4


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    t = tmp_path_factory.mktemp("direct")
    out: dict[str, Any] = {}
    # reference: NEM12 text, then the ingest
    generate(t / "text", accounts=ACCOUNTS, seed=SEED, months=MONTHS)
    out["ingest_summary"] = ingest_nem12(
        [str(t / "text" / "nem12")], Settings(meter_store=str(t / "ms_text"), shards=SHARDS)
    )
    out["text"] = t / "ms_text"
    # direct, no NEM12; a small batch so that partitions go through sorted runs and a merge
    for name, workers in (("direct", 2), ("direct1", 1)):
        generate(
            t / name,
            accounts=ACCOUNTS,
            seed=SEED,
            months=MONTHS,
            workers=workers,
            store=Settings(meter_store=str(t / f"ms_{name}"), shards=SHARDS),
            nem12=False,
            store_batch_readings=150_000,
        )
        out[name] = t / f"ms_{name}"
    out["portfolio_text"], out["portfolio_direct"] = t / "text", t / "direct"
    return out


def test_direct_store_equals_ingested_nem12(stores: dict[str, Any]) -> None:
    text, direct = _files(stores["text"]), _files(stores["direct"])
    # 4 shards × 3 months (2026-08 … 2026-10) + _shards.json, nothing else (no staging runs left)
    assert sorted(text) == sorted(direct)
    assert len([k for k in text if k.endswith("data.parquet")]) == SHARDS * MONTHS
    for name in text:
        if name.endswith(".parquet"):
            a, b = pl.read_parquet(stores["text"] / name), pl.read_parquet(stores["direct"] / name)
            assert a.schema == b.schema, name
            assert a.equals(b), name  # every column, null for null, value for value
        assert text[name] == direct[name], name  # and the very bytes


def test_direct_store_is_deterministic(stores: dict[str, Any]) -> None:
    direct, direct1 = _files(stores["direct"]), _files(stores["direct1"])
    assert {k: hashlib.sha256(v).hexdigest() for k, v in direct.items()} == {
        k: hashlib.sha256(v).hexdigest() for k, v in direct1.items()
    }


def test_direct_store_leaves_the_other_outputs_alone(stores: dict[str, Any]) -> None:
    """db/, truth/, nem13/ and weather/ are the same bytes with or without --store; nem12/ is empty."""
    a, b = stores["portfolio_text"], stores["portfolio_direct"]
    for sub in ("db", "truth", "nem13", "weather"):
        assert _files(a / sub) == _files(b / sub), sub
    assert not any((b / "nem12").iterdir())


def test_the_comparison_covers_every_kind_of_day(stores: dict[str, Any]) -> None:
    """The sample holds what the direct path must get right (tasks/generate/mdp.py draws them):
    controlled load (E2) and generation (B1) registers, 5-, 15- and 30-minute meters, E52 estimates, V days
    whose 400 records give E and N intervals, and rows won by the second delivery (late and
    corrected days, duplicates: source_file ``…_2.csv``)."""
    rows = pl.read_parquet(str(stores["direct"] / "interval" / "**" / "*.parquet"), hive_partitioning=False)
    assert {"E1", "E2", "B1"} <= set(rows["suffix"])
    assert {5, 15, 30} == set(rows["interval_minutes"])
    assert {"A", "E52", "V"} == set(rows["quality_method"])
    v = rows.filter(pl.col("quality_method") == "V")["quality"]
    assert v.str.contains("E").any() and v.str.contains("N").any() and v.str.contains("A").all()
    assert rows["source_file"].str.ends_with("_2.csv").sum() > 0


def test_direct_counts_are_what_the_ingest_of_the_files_counts(stores: dict[str, Any]) -> None:
    """The generator drops the losing copies of corrected and duplicated days before the store
    writer (tasks/generate/store_out.py), but the manifest counts register-days and readings as
    the ingest of the two NEM12 deliveries counts them: every record read, losers included."""
    files = json.loads((stores["portfolio_direct"] / "manifest.json").read_text())["files"]
    summary = stores["ingest_summary"]
    assert (files["store_register_days"], files["store_readings"]) == (
        summary.register_days,
        summary.readings,
    )
    stored = pl.scan_parquet(str(stores["direct"] / "interval" / "**" / "*.parquet")).select(pl.len())
    assert files["store_register_days"] > stored.collect().item()  # some copies were superseded
