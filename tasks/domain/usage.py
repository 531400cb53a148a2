"""The `usage` frame: what estimation hands to rating (docs/DESIGN.md, "Frame contracts").

One row per register-day in the unbilled windows: the register's identity, the day, its interval
length (1440 for a basic register's single daily value), the final values (actual where known,
else the estimate), which of them are estimated, and the method that produced them.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def usage_rows(
    frame: pl.DataFrame,
    *,
    interval_minutes: pl.Expr,
    values: pl.Expr,
    estimated: pl.Expr,
    method: str,
    order: Sequence[str] = ("meter_register_id", "read_date"),
) -> pl.DataFrame:
    """Select the `usage` columns from an estimator's register-day frame, sorted by ``order``
    (register and day; the month end's phases ask for account, register and day, so that their
    rows — lists and all — are sorted once, not twice).

    ``frame`` carries account_id, meter_register_id, nmi, suffix, stream, time_class, unit and
    read_date; the three expressions give interval_minutes, values (list) and estimated (list).
    """
    return frame.select(
        "account_id",
        "meter_register_id",
        "nmi",
        "suffix",
        "stream",
        pl.col("time_class").alias("register_time_class"),
        "unit",
        "read_date",
        interval_minutes.cast(pl.Int64).alias("interval_minutes"),
        values.alias("values"),
        estimated.alias("estimated"),
        pl.lit(method).alias("method"),
    ).sort(list(order))
