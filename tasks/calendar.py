"""Market time, local time, day types and time-of-use classes (SPEC §4.4).

Interval data is stamped in market time (UTC+10 all year, as NEM12). Time-of-use windows are in
the local clock time of the site's jurisdiction, so an interval that starts at market 13:00 is
local 14:00 in Sydney in summer (AEDT) and local 12:30 in Adelaide in winter (ACST). A local day
is a WEEKEND day on Saturday, Sunday and — unless the plan's ``holidays_as_weekend`` is false — on
the jurisdiction's public holidays (the ``holidays`` package). An interval belongs to the time
class of the first window of its plan's TOU scheme (PEAK before SHOULDER before OFFPEAK) that
contains its local start minute (windows are [start, end), an end not after the start wraps past
midnight); an interval matched by no window is OFFPEAK.

Everything is computed once per distinct (scheme, holiday rule, jurisdiction, market day,
interval length) — a few thousand keys for a whole portfolio — and returned as one 0/1 mask list
per time class, so that rating can multiply the register-day value lists by the masks without
ever holding one row per interval of the portfolio.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays
import polars as pl

MARKET_TZ = "Etc/GMT-10"  # UTC+10, no daylight saving (POSIX sign is inverted)
CLASS_PRIORITY = {"PEAK": 0, "SHOULDER": 1, "OFFPEAK": 2}
DEFAULT_CLASS = "OFFPEAK"
KEYS = ["tou_scheme_id", "holidays_as_weekend", "jurisdiction", "timezone", "read_date", "interval_minutes"]


@lru_cache(maxsize=64)
def _holiday_dates(jurisdiction: str, first_year: int, last_year: int) -> tuple[dt.date, ...]:
    try:
        cal = holidays.Australia(subdiv=jurisdiction, years=range(first_year, last_year + 1))
    except NotImplementedError:
        cal = holidays.Australia(years=range(first_year, last_year + 1))
    return tuple(sorted(cal))


def public_holidays(jurisdictions: list[str], first: dt.date, last: dt.date) -> pl.DataFrame:
    """(jurisdiction, local_date) of every public holiday between ``first`` and ``last``."""
    rows = [
        (j, d)
        for j in sorted(set(jurisdictions))
        for d in _holiday_dates(j, first.year, last.year)
        if first <= d <= last
    ]
    return pl.DataFrame(rows, schema={"jurisdiction": pl.String, "local_date": pl.Date}, orient="row")


def interval_local_times(keys: pl.DataFrame) -> pl.DataFrame:
    """Explode keys (read_date, interval_minutes, timezone, …) to intervals with local date/minute.

    Adds: idx (interval number in the market day), local_date, local_minute, weekday (1 = Mon).
    """
    df = keys.with_columns(pl.int_ranges(0, 1440 // pl.col("interval_minutes")).alias("idx")).explode("idx")
    df = df.with_columns(
        (
            pl.col("read_date").cast(pl.Datetime("us"))
            + pl.duration(minutes=pl.col("idx") * pl.col("interval_minutes"))
        )
        .dt.replace_time_zone(MARKET_TZ)
        .alias("_market")
    )
    parts = []
    for tz in df["timezone"].unique().sort().to_list():
        local = pl.col("_market").dt.convert_time_zone(tz)
        parts.append(
            df.filter(pl.col("timezone") == tz).with_columns(
                local.dt.date().alias("local_date"),
                (local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)).alias(
                    "local_minute"
                ),
            )
        )
    out = (
        pl.concat(parts)
        if parts
        else df.with_columns(
            pl.lit(None, pl.Date).alias("local_date"), pl.lit(None, pl.Int32).alias("local_minute")
        )
    )
    return out.drop("_market").with_columns(pl.col("local_date").dt.weekday().alias("weekday"))


def _classify(keys: pl.DataFrame, tou_windows: pl.DataFrame) -> pl.DataFrame:
    """``keys`` with an integer ``_key`` → one row per (_key, idx) with local_date, day_type, time_class."""
    iv = interval_local_times(keys)
    hol = public_holidays(
        keys["jurisdiction"].to_list(),
        keys["read_date"].min() - dt.timedelta(days=1),
        keys["read_date"].max(),
    ).with_columns(pl.lit(True).alias("_holiday"))
    iv = iv.join(hol, on=["jurisdiction", "local_date"], how="left").with_columns(
        pl.when(
            (pl.col("weekday") >= 6) | (pl.col("_holiday").fill_null(False) & pl.col("holidays_as_weekend"))
        )
        .then(pl.lit("WEEKEND"))
        .otherwise(pl.lit("WEEKDAY"))
        .alias("day_type")
    )
    win = tou_windows.select(
        "tou_scheme_id",
        pl.col("time_class").alias("_class"),
        pl.col("day_type").alias("_win_day_type"),
        "start_minute",
        "end_minute",
        (
            pl.col("time_class").replace_strict(CLASS_PRIORITY, default=9, return_dtype=pl.Int32) * 10_000
            + pl.col("start_minute")
        )
        .cast(pl.Int64)
        .alias("_prio"),
    )
    inside = (
        pl.when(pl.col("start_minute") < pl.col("end_minute"))
        .then(
            (pl.col("local_minute") >= pl.col("start_minute"))
            & (pl.col("local_minute") < pl.col("end_minute"))
        )
        .otherwise(
            (pl.col("local_minute") >= pl.col("start_minute"))
            | (pl.col("local_minute") < pl.col("end_minute"))
        )
    )
    matched = (
        iv.select("_key", "idx", "tou_scheme_id", "local_minute", "day_type")
        .join(win, on="tou_scheme_id", how="inner")
        .filter(
            ((pl.col("_win_day_type") == "ALL") | (pl.col("_win_day_type") == pl.col("day_type"))) & inside
        )
        .group_by("_key", "idx")
        .agg(pl.col("_class").sort_by("_prio").first())
    )
    return (
        iv.select("_key", "idx", "local_date", "local_minute", "day_type")
        .join(matched, on=["_key", "idx"], how="left")
        .with_columns(pl.col("_class").fill_null(DEFAULT_CLASS).alias("time_class"))
        .drop("_class")
        .sort("_key", "idx")
    )


def interval_time_classes(keys: pl.DataFrame, tou_windows: pl.DataFrame) -> pl.DataFrame:
    """One row per interval of every key: KEYS + idx, local_date, local_minute, day_type, time_class."""
    keys = keys.select(KEYS).unique().sort(KEYS).with_row_index("_key")
    if keys.height == 0:
        return keys.drop("_key").with_columns(
            pl.lit(None, pl.Int64).alias("idx"), pl.lit(None, pl.String).alias("time_class")
        )
    return keys.join(_classify(keys, tou_windows), on="_key").sort("_key", "idx").drop("_key")


def time_class_masks(keys: pl.DataFrame, tou_windows: pl.DataFrame) -> pl.DataFrame:
    """KEYS + time_class + mask (list[f64] of 0/1, one per interval) for every class of each key.

    A key gets a row for every class its scheme defines (plus OFFPEAK, the default) that occurs
    on its day, so the masks of one key sum to 1 at every interval.
    """
    keys = keys.select(KEYS).unique().sort(KEYS).with_row_index("_key")
    if keys.height == 0:
        return keys.drop("_key").with_columns(
            pl.lit(None, pl.String).alias("time_class"), pl.lit(None, pl.List(pl.Float64)).alias("mask")
        )
    per_key = (
        _classify(keys, tou_windows)
        .group_by("_key", maintain_order=True)
        .agg(pl.col("time_class").alias("_classes"))
    )
    names = sorted(set(tou_windows["time_class"].to_list()) | {DEFAULT_CLASS})
    masks = pl.concat(
        [
            per_key.select(
                "_key",
                pl.lit(name).alias("time_class"),
                pl.col("_classes").list.eval((pl.element() == name).cast(pl.Float64)).alias("mask"),
            )
            for name in names  # a handful of class names, not rows
        ]
    ).filter(pl.col("mask").list.sum() > 0)
    return keys.join(masks, on="_key").sort("_key", "time_class").drop("_key")
