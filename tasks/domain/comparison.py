"""A what-if run against the booked run of the same run date (SPEC §4.5): the accrual by month,
state, fuel and segment of both, the difference in dollars and percent, and the usage of each in
its fuel's unit (kWh for electricity, MJ for gas: never added across fuels). A key in one run
only counts 0 in the other."""

from __future__ import annotations

import polars as pl

KEYS = ["year_mnth", "state", "fuel", "segment"]
COLUMNS = [
    *KEYS, "unit", "booked_accrual", "scenario_accrual", "difference", "difference_pct", "booked_volume",
    "scenario_volume",
]  # fmt: skip


def _by_key(summary: pl.DataFrame, prefix: str) -> pl.DataFrame:
    return summary.group_by(KEYS).agg(
        pl.col("net_amount_less_discount").cast(pl.Float64).sum().round(2).alias(f"{prefix}_accrual"),
        pl.col("volume").cast(pl.Float64).sum().round(3).alias(f"{prefix}_volume"),
    )


def compare(scenario: pl.DataFrame, booked: pl.DataFrame) -> pl.DataFrame:
    """One row per (month, state, fuel, segment) of either run's accrual_summary."""
    both = _by_key(booked, "booked").join(
        _by_key(scenario, "scenario"), on=KEYS, how="full", coalesce=True, nulls_equal=True
    )
    figures = ["booked_accrual", "scenario_accrual", "booked_volume", "scenario_volume"]
    out = both.with_columns(pl.col(figures).fill_null(0.0)).with_columns(
        difference=(pl.col("scenario_accrual") - pl.col("booked_accrual")).round(2),
        unit=pl.when(pl.col("fuel") == "GAS").then(pl.lit("MJ")).otherwise(pl.lit("kWh")),
    )
    out = out.with_columns(
        difference_pct=pl.when(pl.col("booked_accrual") != 0)
        .then((100 * pl.col("difference") / pl.col("booked_accrual").abs()).round(2))
        .otherwise(None)
    )
    return out.select(COLUMNS).sort(KEYS, nulls_last=True)
