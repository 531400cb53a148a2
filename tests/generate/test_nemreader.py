"""nemreader (the reference reader) reads the generated NEM12/NEM13 files back to the generator's values."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from nemreader import read_nem_file


def _nemreader_days(files: list[Path]) -> pl.DataFrame:
    """Per (nmi, suffix, day): sum of values and the set of qualities, later files replacing earlier."""
    rows = []
    for order, f in enumerate(files):
        data = read_nem_file(str(f))
        for nmi, suffixes in data.readings.items():
            for suffix, readings in suffixes.items():
                rows += [
                    (order, nmi, suffix, r.t_start.date(), r.read_value, r.quality_method[:1])
                    for r in readings
                ]
    df = pl.DataFrame(rows, schema=["order", "nmi", "suffix", "read_date", "value", "q"], orient="row")
    latest = df.group_by("nmi", "suffix", "read_date").agg(pl.col("order").max())
    return (
        df.join(latest, on=["nmi", "suffix", "read_date", "order"])
        .group_by("nmi", "suffix", "read_date")
        .agg(
            pl.col("value").sum().round(3).alias("value"),
            pl.col("q").unique().sort().str.join("").alias("q"),
            pl.len().alias("n"),
        )
    )


def test_nemreader_reads_true_values_of_actual_days(small_portfolio: Path) -> None:
    # one batch (both deliveries) keeps nemreader's pure-Python parsing to a few seconds
    files = [f for f in sorted((small_portfolio / "nem12").glob("*.csv")) if f.stem.split("_")[1] == "00000"]
    got = _nemreader_days(files)
    truth = pl.read_parquet(small_portfolio / "truth" / "register_day.parquet").filter(
        pl.col("interval_minutes").is_not_null()
    )
    cmp = got.join(truth, on=["nmi", "suffix", "read_date"], how="left")
    assert cmp["consumption"].null_count() == 0  # every day nemreader sees is a true register-day
    assert (cmp["n"] == 1440 // cmp["interval_minutes"].cast(pl.Int64)).all()  # full days of intervals
    actual = cmp.filter(pl.col("q") == "A")
    assert actual.height > 0.97 * cmp.height
    # every all-actual day (after later deliveries replace corrected days) sums to the truth exactly
    assert (actual["value"] - actual["consumption"]).abs().max() < 1e-9
    est = cmp.filter(pl.col("q") != "A")
    assert est.height > 0 and (est["value"] != est["consumption"]).any()  # estimates are not the truth


def test_nemreader_reads_nem13_consumption(small_portfolio: Path) -> None:
    files = sorted((small_portfolio / "nem13").glob("*.csv"))
    assert files
    rows = []
    for f in files:
        for nmi, suffixes in read_nem_file(str(f)).readings.items():
            for suffix, readings in suffixes.items():
                rows += [
                    (nmi, suffix, r.t_start.date(), r.t_end.date(), r.read_value, r.val_start, r.val_end)
                    for r in readings
                ]
    df = pl.DataFrame(rows, schema=["nmi", "suffix", "start", "end", "qty", "v0", "v1"], orient="row")
    assert df.height > 0 and (df["qty"] > 0).all()
    # quantity = index difference, plus one dial turn where the index wrapped
    assert ((df["qty"] == df["v1"] - df["v0"]) | (df["v1"] < df["v0"])).all()
