"""Segment profiles (SPEC §4.2): partial sums per shard, one combine into P(segment, day, slot).

Method: interval data is first put on a fixed 30-minute grid (48 slots per day, kWh per half
hour): 5/10/15-minute values are summed into their half hour, and a half hour counts as actual
only when every sub-interval has quality A, S or F (E and N never enter a profile, nor do null
values). Each shard contributes, per (segment, day, slot), the sum of actual half-hour values and
the number of registers with an actual value; the combine adds the shards' partials and divides:
P = mean kWh per register per half hour. The parent segment (``*|jurisdiction|stream``) is
computed the same way as its own profile (a mean over all its registers, not a mean of means).
The per-slot sums are done column-wise (the 48-slot lists are unnested into 48 columns) so that
no frame ever holds one row per interval.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

GRID_MINUTES = 30
SLOTS = 1440 // GRID_MINUTES
ACTUAL_QUALITY = ("A", "S", "F")
SUPPORTED_MINUTES = (5, 10, 15, 30)

_T = [f"t{i}" for i in range(SLOTS)]
_C = [f"c{i}" for i in range(SLOTS)]


def segment_key(with_tni: bool = False) -> pl.Expr:
    """``customer_class|jurisdiction|stream`` (``|tni`` appended when segmenting by TNI)."""
    parts = [pl.col("customer_class"), pl.col("jurisdiction"), pl.col("stream")]
    if with_tni:
        parts.append(pl.col("tni").fill_null("-"))
    return pl.concat_str(parts, separator="|").alias("segment")


def parent_key() -> pl.Expr:
    """The parent segment ``*|jurisdiction|stream``."""
    return pl.concat_str([pl.lit("*"), pl.col("jurisdiction"), pl.col("stream")], separator="|").alias(
        "parent"
    )


def parent_of(segment: pl.Expr) -> pl.Expr:
    """Parent key of a segment key string (drops customer class and TNI)."""
    parts = segment.str.split("|")
    return pl.concat_str([pl.lit("*"), parts.list.get(1), parts.list.get(2)], separator="|")


def one_row_per_register(registers: pl.DataFrame) -> pl.DataFrame:
    """A register held by several accounts over time (moves) appears once per account in the
    registers frame; meter data must be counted once: keep the row of its latest account."""
    return registers.sort("meter_register_id", "account_id").unique(
        "meter_register_id", keep="last", maintain_order=True
    )


def interval_registers(registers: pl.DataFrame, segment_with_tni: bool = False) -> pl.DataFrame:
    """Interval registers with their segment and parent keys."""
    return registers.filter(pl.col("interval_minutes").is_not_null()).with_columns(
        segment_key(segment_with_tni), parent_key()
    )


def _actual_mask() -> pl.Expr:
    quality_ok = (
        pl.col("quality").str.split("").list.eval(pl.element().is_in(ACTUAL_QUALITY).cast(pl.Float64))
    )
    value_ok = pl.col("values").list.eval(pl.element().is_not_null().cast(pl.Float64))
    return quality_ok * value_ok


def half_hour_grid(interval: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``hh`` (48 actual half-hour sums, 0 where not actual) and ``hh_actual`` (1.0/0.0)."""
    base = interval.with_columns(
        _mask=_actual_mask(), _v=pl.col("values").list.eval(pl.element().fill_null(0.0))
    ).with_columns(_v=pl.col("_v") * pl.col("_mask"))
    parts = []
    for minutes in SUPPORTED_MINUTES:
        k = GRID_MINUTES // minutes
        idx = [[i * k + j for i in range(SLOTS)] for j in range(k)]
        sums = [pl.col("_v").list.gather(pl.lit(pl.Series(ix, dtype=pl.Int64)).implode()) for ix in idx]
        masks = [pl.col("_mask").list.gather(pl.lit(pl.Series(ix, dtype=pl.Int64)).implode()) for ix in idx]
        hh_actual = masks[0]
        for m in masks[1:]:
            hh_actual = hh_actual * m
        hh = sums[0]
        for s in sums[1:]:
            hh = hh + s
        parts.append(
            base.filter(pl.col("interval_minutes") == minutes).with_columns(
                hh_actual=hh_actual, hh=hh * hh_actual
            )
        )
    return pl.concat(parts).drop("_mask", "_v")


def registers_interval_data(regs: pl.DataFrame, interval: pl.LazyFrame) -> pl.LazyFrame:
    """Meter-store rows joined to the interval register they belong to on their date."""
    keys = regs.lazy().select(
        "meter_register_id",
        "account_id",
        "nmi",
        "suffix",
        "segment",
        "parent",
        "register_start",
        "register_end",
    )
    return interval.join(keys, on=["nmi", "suffix"], how="inner").filter(
        (pl.col("read_date") >= pl.col("register_start"))
        & (pl.col("register_end").is_null() | (pl.col("read_date") <= pl.col("register_end")))
    )


def _wide(lf: pl.LazyFrame) -> pl.LazyFrame:
    return lf.with_columns(
        pl.col("hh").list.to_array(SLOTS).arr.to_struct(fields=_T).struct.unnest(),
        pl.col("hh_actual").list.to_array(SLOTS).arr.to_struct(fields=_C).struct.unnest(),
        (pl.col("hh_actual").list.sum() > 0).cast(pl.UInt32).alias("registers"),
    )


def profile_partial_sums(
    registers: pl.DataFrame, interval: pl.LazyFrame, segment_with_tni: bool = False
) -> pl.DataFrame:
    """One shard's partial sums: segment, read_date, t0..t47 (kWh), c0..c47 (counts), registers."""
    regs = one_row_per_register(interval_registers(registers, segment_with_tni))
    rows = _wide(half_hour_grid(registers_interval_data(regs, interval)))
    aggs = [pl.col(c).sum() for c in _T + _C] + [pl.col("registers").sum()]
    by_segment = rows.group_by("segment", "read_date").agg(aggs)
    by_parent = rows.group_by(pl.col("parent").alias("segment"), "read_date").agg(aggs)
    return pl.concat([by_segment, by_parent]).collect(engine="streaming")


def combine_profiles(partials: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Sum the shards' partials; P = total / count per slot (null where no register contributed)."""
    total = (
        pl.concat(list(partials))
        .group_by("segment", "read_date")
        .agg([pl.col(c).sum() for c in _T + _C] + [pl.col("registers").sum()])
    )
    slots = [pl.when(pl.col(c) > 0).then(pl.col(t) / pl.col(c)) for t, c in zip(_T, _C, strict=True)]
    return total.select(
        "segment", "read_date", pl.concat_list(slots).alias("profile"), pl.col("registers").cast(pl.UInt32)
    ).sort("segment", "read_date")
