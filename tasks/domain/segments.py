"""Check and fix of segment profiles (SPEC §4.2), recorded as data.

Method: a (segment, day) is valid when at least ``min_registers`` registers contributed and
every one of its 48 half-hour slots has a value. An invalid or missing day is filled, in order,
from (1) the nearest valid day of the same segment and day type (weekday / weekend) within
``max_shift_days`` (28) days, earlier day on a tie; (2) the parent segment (``*|jurisdiction|
stream``) on the same day, itself valid or filled by rule 1; (3) when the profile does not reach
the day (the day lies after the segment's last valid day), the mean of the same-day-type valid
days of the segment's latest 4 weeks of data, else of its parent's. Every fill is a row of the
returned ``fills`` frame (reason, source, source segment and day); a day that none of the rules
can fill is recorded with source ``NONE`` and has no profile (the estimators raise NO_PROFILE).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from tasks.domain.profiles import SLOTS, parent_of

MAX_SHIFT_DAYS = 28
LATEST_WEEKS_DAYS = 28


def day_type(col: str = "read_date") -> pl.Expr:
    """WEEKDAY or WEEKEND (Saturday, Sunday)."""
    return (
        pl.when(pl.col(col).dt.weekday() >= 6)
        .then(pl.lit("WEEKEND"))
        .otherwise(pl.lit("WEEKDAY"))
        .alias("day_type")
    )


def _grid(segments: Sequence[str], date_from: dt.date, date_to: dt.date) -> pl.DataFrame:
    segs = pl.DataFrame({"segment": sorted(set(segments))}).with_columns(parent=parent_of(pl.col("segment")))
    needed = (
        pl.concat([segs.select("segment"), segs.select(pl.col("parent").alias("segment"))])
        .unique()
        .sort("segment")
    )
    days = pl.DataFrame({"read_date": pl.date_range(date_from, date_to, "1d", eager=True)})
    return needed.join(days, how="cross").with_columns(day_type())


def _nearest_same_day_type(grid: pl.DataFrame, max_shift_days: int) -> pl.DataFrame:
    """Rule 1 for every invalid row: source_date of the nearest valid same-day-type day."""
    valid = (
        grid.filter("valid")
        .select("segment", "day_type", "read_date", pl.col("read_date").alias("source_date"))
        .sort("read_date")
    )
    invalid = grid.filter(~pl.col("valid")).select("segment", "day_type", "read_date").sort("read_date")
    # two as-of joins (backward, forward) so that a tie goes to the earlier day
    back = invalid.join_asof(
        valid.rename({"source_date": "back"}),
        on="read_date",
        by=["segment", "day_type"],
        strategy="backward",
        tolerance=dt.timedelta(days=max_shift_days),
        check_sortedness=False,
    )
    both = back.join_asof(
        valid.rename({"source_date": "fwd"}),
        on="read_date",
        by=["segment", "day_type"],
        strategy="forward",
        tolerance=dt.timedelta(days=max_shift_days),
        check_sortedness=False,
    )
    back_gap = (pl.col("read_date") - pl.col("back")).dt.total_days()
    fwd_gap = (pl.col("fwd") - pl.col("read_date")).dt.total_days()
    pick = (
        pl.when(pl.col("back").is_not_null() & (pl.col("fwd").is_null() | (back_gap <= fwd_gap)))
        .then(pl.col("back"))
        .otherwise(pl.col("fwd"))
    )
    return both.select("segment", "read_date", pick.alias("source_date")).filter(
        pl.col("source_date").is_not_null()
    )


def _latest_weeks(grid: pl.DataFrame) -> pl.DataFrame:
    """Rule 3: per segment and day type, mean profile over the valid days of its latest 4 weeks."""
    valid = grid.filter("valid").with_columns(last=pl.col("read_date").max().over("segment"))
    recent = valid.filter(pl.col("read_date") > pl.col("last") - pl.duration(days=LATEST_WEEKS_DAYS))
    # days in date order (the grid's rows come in no fixed order): the mean adds them in the same
    # order on every run, so its bytes do not change from run to run
    mean = (
        recent.sort("segment", "day_type", "read_date")
        .select("segment", "day_type", "last", "profile")
        .with_columns(slot=pl.int_ranges(0, SLOTS))
        .explode("profile", "slot")
        .group_by("segment", "day_type", "last", "slot", maintain_order=True)
        .agg(pl.col("profile").mean())
        .sort("segment", "day_type", "slot")
        .group_by("segment", "day_type", "last", maintain_order=True)
        .agg(pl.col("profile").alias("latest_profile"))
    )
    return mean


def check_and_fix(
    profiles: pl.DataFrame,
    segments: Sequence[str],
    date_from: dt.date,
    date_to: dt.date,
    min_registers: int = 20,
    max_shift_days: int = MAX_SHIFT_DAYS,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fixed profiles for ``segments`` (and their parents) on every day of the range, and the fills.

    Returns ``(fixed, fills)``: fixed = segment, read_date, profile, registers, source
    (OWN | SAME_DAY_TYPE | PARENT | LATEST_4_WEEKS); fills = segment, read_date, reason
    (MISSING | TOO_FEW_REGISTERS), source (… | NONE), source_segment, source_date.
    """
    grid = _checked_grid(profiles, segments, date_from, date_to, min_registers)
    out = _with_sources(_with_parent(_own_nearest_latest(grid, max_shift_days)))
    fixed = (
        out.filter(pl.col("final").is_not_null())
        .select(
            "segment",
            "read_date",
            pl.col("final").alias("profile"),
            pl.col("registers").cast(pl.UInt32),
            "source",
        )
        .sort("segment", "read_date")
    )
    fills = (
        out.filter(pl.col("source") != "OWN")
        .select("segment", "read_date", "reason", "source", "source_segment", "source_date")
        .sort("segment", "read_date")
    )
    return fixed, fills


def _checked_grid(
    profiles: pl.DataFrame, segments: Sequence[str], date_from: dt.date, date_to: dt.date, min_registers: int
) -> pl.DataFrame:
    """Every segment-day of the range with its profile, whether complete and whether valid (complete,
    with at least ``min_registers`` registers)."""
    return (
        _grid(segments, date_from, date_to)
        .join(
            profiles.select("segment", "read_date", "profile", "registers"),
            on=["segment", "read_date"],
            how="left",
        )
        .with_columns(
            complete=pl.col("profile").is_not_null()
            & (pl.col("profile").list.eval(pl.element().null_count()).list.first() == 0),
            registers=pl.col("registers").fill_null(0),
        )
        .with_columns(valid=pl.col("complete") & (pl.col("registers") >= min_registers))
    )


def _own_nearest_latest(grid: pl.DataFrame, max_shift_days: int) -> pl.DataFrame:
    """Rules 1 and 3 of each segment-day: its own profile, else the nearest valid day of the same
    day type; and its latest weeks' profile for days after its data."""
    prof = grid.filter("valid").select(
        "segment", pl.col("read_date").alias("source_date"), pl.col("profile").alias("p")
    )
    near = _nearest_same_day_type(grid, max_shift_days).join(prof, on=["segment", "source_date"], how="left")
    stage1 = (
        grid.join(
            near.rename({"source_date": "near_date", "p": "near_p"}), on=["segment", "read_date"], how="left"
        )
        .with_columns(
            own_p=pl.when("valid").then(pl.col("profile")),
            own_date=pl.when("valid").then(pl.col("read_date")).otherwise(pl.col("near_date")),
        )
        .with_columns(s1_p=pl.coalesce("own_p", "near_p"))
        .with_columns(parent=parent_of(pl.col("segment")))
    )
    latest = _latest_weeks(grid)
    stage1 = stage1.join(latest, on=["segment", "day_type"], how="left").with_columns(
        latest_p=pl.when(pl.col("read_date") > pl.col("last")).then(pl.col("latest_profile"))
    )
    return stage1


def _with_parent(stage1: pl.DataFrame) -> pl.DataFrame:
    """Rule 2: the parent segment's profile (and latest weeks) on the same day; a parent has none."""
    par = stage1.select(
        pl.col("segment").alias("parent"),
        "read_date",
        pl.col("s1_p").alias("par_p"),
        pl.col("own_date").alias("par_date"),
        pl.col("latest_p").alias("par_latest_p"),
    )
    # a parent has no parent: its own rule 2 never applies
    is_parent = pl.col("segment").str.starts_with("*|")
    return stage1.join(par, on=["parent", "read_date"], how="left").with_columns(
        par_p=pl.when(is_parent).then(None).otherwise(pl.col("par_p")),
        par_latest_p=pl.when(is_parent).then(None).otherwise(pl.col("par_latest_p")),
    )


def _with_sources(out: pl.DataFrame) -> pl.DataFrame:
    """The chosen profile (final), its source, source segment and date, and the fill reason."""
    source = (
        pl.when(pl.col("valid"))
        .then(pl.lit("OWN"))
        .when(pl.col("near_p").is_not_null())
        .then(pl.lit("SAME_DAY_TYPE"))
        .when(pl.col("par_p").is_not_null())
        .then(pl.lit("PARENT"))
        .when(pl.col("latest_p").is_not_null() | pl.col("par_latest_p").is_not_null())
        .then(pl.lit("LATEST_4_WEEKS"))
        .otherwise(pl.lit("NONE"))
    )
    return out.with_columns(
        source=source,
        final=pl.coalesce("own_p", "near_p", "par_p", "latest_p", "par_latest_p"),
    ).with_columns(
        source_segment=pl.when(pl.col("source").is_in(["OWN", "SAME_DAY_TYPE"]))
        .then(pl.col("segment"))
        .when(pl.col("source") == "PARENT")
        .then(pl.col("parent"))
        .when(pl.col("source") == "LATEST_4_WEEKS")
        .then(pl.when(pl.col("latest_p").is_not_null()).then(pl.col("segment")).otherwise(pl.col("parent"))),
        source_date=pl.when(pl.col("source") == "SAME_DAY_TYPE")
        .then(pl.col("near_date"))
        .when(pl.col("source") == "PARENT")
        .then(pl.col("par_date")),
        reason=pl.when(pl.col("complete")).then(pl.lit("TOO_FEW_REGISTERS")).otherwise(pl.lit("MISSING")),
    )
