"""Gaps, MDP estimates, late days, duplicates and corrections in the generated NEM12 files."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.generate.nem12_lines import day_records

BATCHES = 4  # the first batches (both deliveries) are enough for the rates below: ~1,000 registers


@pytest.fixture(scope="module")
def records(portfolio: Path) -> pl.DataFrame:
    return day_records(
        [f for f in sorted((portfolio / "nem12").glob("*.csv")) if int(f.stem.split("_")[1]) < BATCHES]
    )


def test_manifest_counts_every_delivered_line(portfolio: Path) -> None:
    manifest = json.loads((portfolio / "manifest.json").read_text())
    files = sorted((portfolio / "nem12").glob("*.csv"))
    lines = sum(f.read_bytes().count(b"\r\n300,") for f in files)
    assert lines == manifest["files"]["nem12_lines"] and len(files) == manifest["files"]["nem12_files"]


def test_missing_and_partial_days_and_estimates(portfolio: Path, records: pl.DataFrame) -> None:
    truth = pl.read_parquet(portfolio / "truth" / "register_day.parquet").filter(
        pl.col("interval_minutes").is_not_null()
    )
    truth = truth.join(
        records.select("nmi", "suffix").unique(), on=["nmi", "suffix"]
    )  # registers of those batches
    delivered = records.select("nmi", "suffix", "read_date").unique()
    missing = truth.join(delivered, on=["nmi", "suffix", "read_date"], how="anti")
    # 0.4% scattered + a 2–8 day outage on 4% of registers ≈ 0.6% of register-days
    assert 0.002 * truth.height <= missing.height <= 0.02 * truth.height
    assert (
        delivered.join(truth, on=["nmi", "suffix", "read_date"], how="anti").height == 0
    )  # nothing invented
    q = records["quality"].value_counts(normalize=True)
    share = dict(q.iter_rows())
    assert 0.004 <= share["E52"] <= 0.015  # 0.8% MDP-estimated days
    assert 0.005 <= share["V"] <= 0.015  # 0.6% mixed + 0.3% partial days
    text = "".join(f.read_text() for f in sorted((portfolio / "nem12").glob("*_1.csv"))[:BATCHES])
    assert ",N,," in text and ",E52,," in text  # 400 records: null (partial day) and estimated ranges


def test_late_days_duplicates_and_corrections(records: pl.DataFrame) -> None:
    first = records.filter(pl.col("file").str.ends_with("_1.csv"))
    second = records.filter(pl.col("file").str.ends_with("_2.csv"))
    both = second.join(first, on=["nmi", "suffix", "read_date"], suffix="_old")
    late = second.join(first, on=["nmi", "suffix", "read_date"], how="anti")
    assert late.height > 0
    # late days are each register's most recent days (after everything the first delivery had)
    last_first = first.group_by("nmi", "suffix").agg(pl.col("read_date").max().alias("last"))
    assert (
        late.join(last_first, on=["nmi", "suffix"])["read_date"]
        > late.join(last_first, on=["nmi", "suffix"])["last"]
    ).all()
    dup = both.filter(pl.col("values") == pl.col("values_old"))
    fixed = both.filter(pl.col("values") != pl.col("values_old"))
    assert dup.height > 0 and (dup["update"] == dup["update_old"]).all()  # exact repeats
    assert fixed.height > 0 and (fixed["update"] > fixed["update_old"]).all()  # corrections are newer
