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
interval length) — a few thousand keys for a whole portfolio. Rating uses
:func:`time_class_codes`: one integer class code per interval of each key, from array lookups
(local clock per time zone and market day, cached per process; class per scheme, day type and
local minute), so that it can sum the register-day values per class with numpy without ever
holding one row per interval of the portfolio. :func:`interval_time_classes` and
:func:`time_class_masks` give the same classes as frames (reference and tests).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays
import numpy as np
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


# a window contains the local minute: [start, end), wrapping past midnight when end <= start
_INSIDE = (
    pl.when(pl.col("start_minute") < pl.col("end_minute"))
    .then((pl.col("local_minute") >= pl.col("start_minute")) & (pl.col("local_minute") < pl.col("end_minute")))
    .otherwise((pl.col("local_minute") >= pl.col("start_minute")) | (pl.col("local_minute") < pl.col("end_minute")))
)  # fmt: skip


def _windows_by_priority(tou_windows: pl.DataFrame) -> pl.DataFrame:
    """The time-of-use windows with ``_prio``: PEAK, SHOULDER, OFFPEAK, then start minute (lowest wins)."""
    return tou_windows.filter(pl.col("tou_scheme_id").is_not_null()).select(
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
    win, inside = _windows_by_priority(tou_windows), _INSIDE
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


def time_class_codes(
    keys: pl.DataFrame, tou_windows: pl.DataFrame
) -> tuple[pl.DataFrame, list[str], np.ndarray]:
    """The time class of every interval of every key, as integer codes for vectorised lookups.

    Returns ``(indexed, names, codes)``: ``indexed`` is KEYS + ``_key`` (row number), + ``_start``
    and ``_len`` (where the key's intervals sit in ``codes`` and how many there are; 0 for a key
    without jurisdiction or time zone, which cannot be placed in local time); ``codes[_start + idx]``
    is the index into ``names`` (sorted class names, OFFPEAK included) of interval ``idx`` of the
    key's day. Same classes as :func:`interval_time_classes`, computed as array lookups: the local
    clock of every (time zone, interval length, market day, interval) is built once per process
    (:func:`_local_clock`), the class of every (scheme, day type, local minute) once per call
    (:func:`_class_table`), and each interval only indexes them.
    """
    names = sorted(set(tou_windows["time_class"].to_list()) | {DEFAULT_CLASS})
    keys = keys.select(KEYS).unique().sort(KEYS, nulls_last=True).with_row_index("_key")
    ok = (
        pl.col("jurisdiction").is_not_null()
        & pl.col("timezone").is_not_null()
        & pl.col("read_date").is_not_null()
        & (pl.col("interval_minutes") > 0)
    )
    keys = keys.with_columns(
        pl.when(ok).then(1440 // pl.col("interval_minutes")).otherwise(0).cast(pl.Int64).alias("_len")
    ).with_columns((pl.col("_len").cum_sum() - pl.col("_len")).alias("_start"))
    codes = np.zeros(int(keys["_len"].sum() or 0), np.int8)
    live = keys.filter(pl.col("_len") > 0)
    if live.height == 0:
        return keys, names, codes
    first = live["read_date"].min() - dt.timedelta(days=1)
    last = live["read_date"].max()
    origin = dt.date(first.year, 1, 1)
    end = dt.date(last.year, 12, 31)
    # day types over origin-1 .. end+1 (a local date can be one day either side of its market date)
    day0 = origin - dt.timedelta(days=1)
    n_days = (end - day0).days + 2
    dates = pl.date_range(day0, day0 + dt.timedelta(days=n_days - 1), interval="1d", eager=True)
    weekend = (dates.dt.weekday() >= 6).to_numpy()
    jurisdictions = sorted(live["jurisdiction"].unique().to_list())
    hol = public_holidays(jurisdictions, day0, day0 + dt.timedelta(days=n_days - 1))
    holiday = np.zeros((len(jurisdictions), n_days), bool)
    if hol.height:
        j_of = {j: i for i, j in enumerate(jurisdictions)}
        holiday[
            hol["jurisdiction"].replace_strict(j_of, return_dtype=pl.Int64).to_numpy(),
            (hol["local_date"] - day0).dt.total_days().to_numpy(),
        ] = True
    cols = ["tou_scheme_id", "time_class", "day_type", "start_minute", "end_minute"]
    schemes, table = _class_table_cached(tuple(tou_windows.select(cols).rows()), tuple(names))
    s_of = {sc: i for i, sc in enumerate(schemes)}
    live = live.with_columns(
        pl.col("tou_scheme_id").replace_strict(s_of, default=len(schemes), return_dtype=pl.Int64).alias("_s"),
        pl.col("jurisdiction").replace_strict({j: i for i, j in enumerate(jurisdictions)}, return_dtype=pl.Int64).alias("_j"),
        (pl.col("read_date") - pl.lit(origin)).dt.total_days().alias("_d"),
        pl.col("holidays_as_weekend").fill_null(True).alias("_h"),
    )  # fmt: skip
    for (tz, minutes), grp in live.group_by(
        "timezone", "interval_minutes", maintain_order=True
    ):  # a few groups
        n = 1440 // minutes
        local_minute, shift = _local_clock(str(tz), int(minutes), origin.year, end.year)
        k = grp.height
        key_row = np.repeat(np.arange(k), n)
        idx = np.tile(np.arange(n), k)
        d = grp["_d"].to_numpy()[key_row]
        at = d * n + idx
        local_day = d + shift[at] + 1  # index into the day-type arrays (they start at origin - 1)
        weekend_day = weekend[local_day] | (
            grp["_h"].to_numpy()[key_row] & holiday[grp["_j"].to_numpy()[key_row], local_day]
        )
        cls = table[grp["_s"].to_numpy()[key_row], weekend_day.astype(np.int64), local_minute[at]]
        codes[grp["_start"].to_numpy()[key_row] + idx] = cls
    return keys, names, codes


@lru_cache(maxsize=64)
def _local_clock(tz: str, minutes: int, first_year: int, last_year: int) -> tuple[np.ndarray, np.ndarray]:
    """Local minute of day and local-day shift (-1, 0, +1) of every interval of every market day of the years.

    Index ``day * (1440 // minutes) + idx`` with ``day`` counted from 1 January of ``first_year``.
    """
    first = dt.date(first_year, 1, 1)
    n_days = (dt.date(last_year, 12, 31) - first).days + 1
    n = 1440 // minutes
    day = np.repeat(np.arange(n_days, dtype=np.int64), n)
    offset_us = (day * 1440 + np.tile(np.arange(n, dtype=np.int64), n_days) * minutes) * 60_000_000
    epoch_us = (
        int((dt.datetime.combine(first, dt.time()) - dt.datetime(1970, 1, 1)).total_seconds()) * 1_000_000
    )
    market = pl.Series("t", epoch_us + offset_us).cast(pl.Datetime("us")).dt.replace_time_zone(MARKET_TZ)
    local = market.dt.convert_time_zone(tz)
    local_minute = (local.dt.hour().cast(pl.Int64) * 60 + local.dt.minute().cast(pl.Int64)).to_numpy()
    days = (local.dt.date().cast(pl.Int64) - (first - dt.date(1970, 1, 1)).days).to_numpy()
    shift = (days - day).astype(np.int64)
    local_minute = np.ascontiguousarray(local_minute)
    for a in (local_minute, shift):
        a.setflags(write=False)  # cached and shared: never modified
    return local_minute, shift


@lru_cache(maxsize=16)
def _class_table_cached(windows: tuple[tuple, ...], names: tuple[str, ...]) -> tuple[list[int], np.ndarray]:
    """:func:`_class_table` once per distinct window set (the same for every shard of a run)."""
    frame = pl.DataFrame(
        list(windows),
        schema={"tou_scheme_id": pl.Int64, "time_class": pl.String, "day_type": pl.String,
                "start_minute": pl.Int64, "end_minute": pl.Int64},
        orient="row",
    )  # fmt: skip
    schemes, table = _class_table(frame, list(names))
    table.setflags(write=False)
    return schemes, table


def _class_table(tou_windows: pl.DataFrame, names: list[str]) -> tuple[list[int], np.ndarray]:
    """(scheme ids, codes[scheme, is_weekend, local minute]); one extra scheme row (all OFFPEAK) at the end.

    The first window in priority order (PEAK, SHOULDER, OFFPEAK, then start minute) whose day type
    is ALL or the day's and which contains the minute ([start, end), wrapping past midnight when
    end <= start) gives the class; no window: OFFPEAK.
    """
    schemes = sorted(tou_windows["tou_scheme_id"].drop_nulls().unique().to_list())
    table = np.full((len(schemes) + 1, 2, 1440), names.index(DEFAULT_CLASS), np.int8)
    if not schemes:
        return schemes, table
    grid = pl.DataFrame({"local_minute": np.arange(1440, dtype=np.int64)}).join(
        pl.DataFrame({"day_type": ["WEEKDAY", "WEEKEND"]}), how="cross"
    )
    win, inside = _windows_by_priority(tou_windows), _INSIDE
    best = (
        win.join(grid, how="cross")
        .filter(
            ((pl.col("_win_day_type") == "ALL") | (pl.col("_win_day_type") == pl.col("day_type"))) & inside
        )
        .group_by("tou_scheme_id", "day_type", "local_minute")
        .agg(pl.col("_class").sort_by("_prio").first())
    )
    if best.height:
        table[
            best["tou_scheme_id"].replace_strict({s: i for i, s in enumerate(schemes)}, return_dtype=pl.Int64).to_numpy(),
            (best["day_type"] == "WEEKEND").cast(pl.Int64).to_numpy(),
            best["local_minute"].to_numpy(),
        ] = best["_class"].replace_strict({n: i for i, n in enumerate(names)}, return_dtype=pl.Int8).to_numpy()  # fmt: skip
    return schemes, table
