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


def interval_time_classes(keys: pl.DataFrame, tou_windows: pl.DataFrame) -> pl.DataFrame:
    """One row per interval of every key: KEYS + idx, local_date, local_minute, day_type, time_class."""
    keys = keys.select(KEYS).unique()
    if keys.height == 0:
        return keys.with_columns(
            pl.lit(None, pl.Int64).alias("idx"), pl.lit(None, pl.String).alias("time_class")
        )
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
        pl.col("time_class").replace_strict(CLASS_PRIORITY, default=9, return_dtype=pl.Int32).alias("_prio"),
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
        iv.select([*KEYS, "idx", "local_minute", "day_type"])
        .join(win, on="tou_scheme_id", how="inner")
        .filter(
            ((pl.col("_win_day_type") == "ALL") | (pl.col("_win_day_type") == pl.col("day_type"))) & inside
        )
        .sort([*KEYS, "idx", "_prio", "start_minute"])
        .unique([*KEYS, "idx"], keep="first")
        .select([*KEYS, "idx", "_class"])
    )
    return (
        iv.join(matched, on=[*KEYS, "idx"], how="left")
        .with_columns(pl.col("_class").fill_null(DEFAULT_CLASS).alias("time_class"))
        .drop("_class", "_holiday")
        .sort([*KEYS, "idx"])
    )


def time_class_masks(keys: pl.DataFrame, tou_windows: pl.DataFrame) -> pl.DataFrame:
    """KEYS + time_class + mask (list[f64] of 0/1, one per interval) for every class of each key.

    A key gets a row for every class its scheme defines (plus OFFPEAK, the default), so the
    masks of one key sum to 1 at every interval.
    """
    classes = interval_time_classes(keys, tou_windows)
    scheme_classes = pl.concat(
        [
            tou_windows.select("tou_scheme_id", pl.col("time_class").alias("mask_class")),
            tou_windows.select("tou_scheme_id", pl.lit(DEFAULT_CLASS).alias("mask_class")),
        ]
    ).unique()
    return (
        classes.select([*KEYS, "idx", "time_class"])
        .join(scheme_classes, on="tou_scheme_id", how="inner")
        .sort([*KEYS, "mask_class", "idx"])
        .group_by([*KEYS, "mask_class"], maintain_order=True)
        .agg((pl.col("time_class") == pl.col("mask_class")).cast(pl.Float64).alias("mask"))
        .filter(pl.col("mask").list.sum() > 0)
        .rename({"mask_class": "time_class"})
    )
