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

import datetime as dt
from collections.abc import Iterable

import numpy as np
import polars as pl

GRID_MINUTES = 30
SLOTS = 1440 // GRID_MINUTES
ACTUAL_QUALITY = ("A", "S", "F")
SUPPORTED_MINUTES = (5, 10, 15, 30)
_ACTUAL_TABLE = np.zeros(256, dtype=bool)
_ACTUAL_TABLE[[ord(q) for q in ACTUAL_QUALITY]] = True


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


def grid_arrays(rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(hh, ok) for register-day rows of ONE interval length: hh = 48 half-hour sums of actual
    values (0 where the half hour is not actual), ok = the half hour is actual (bool)."""
    if rows.height == 0:
        return np.zeros((0, SLOTS)), np.zeros((0, SLOTS), dtype=bool)
    minutes = int(rows["interval_minutes"][0])
    n, k = 1440 // minutes, GRID_MINUTES // minutes
    values = rows["values"].list.to_array(n).to_numpy()  # nulls arrive as NaN
    flags = np.frombuffer(rows["quality"].str.join("").item().encode("ascii"), dtype=np.uint8).reshape(-1, n)
    ok = np.isin(flags, np.frombuffer("".join(ACTUAL_QUALITY).encode("ascii"), dtype=np.uint8)) & ~np.isnan(
        values
    )
    hh_ok = ok.reshape(-1, SLOTS, k).all(axis=2)
    hh = np.where(ok, values, 0.0).reshape(-1, SLOTS, k).sum(axis=2) * hh_ok
    return hh, hh_ok


def well_formed(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Rows of a supported interval length whose values and quality cover the day exactly."""
    n = 1440 // pl.col("interval_minutes")
    return lf.filter(
        pl.col("interval_minutes").is_in(SUPPORTED_MINUTES)
        & (pl.col("values").list.len() == n)
        & (pl.col("quality").str.len_bytes() == n)
    )


def by_length(rows: pl.DataFrame) -> list[pl.DataFrame]:
    """The rows split by interval length (each part has one length, as grid_arrays needs)."""
    lengths = rows["interval_minutes"].unique().sort().to_list()
    if len(lengths) <= 1:
        return [rows] if rows.height else []
    return [rows.filter(pl.col("interval_minutes") == m) for m in lengths]


def group_sum(keys: pl.DataFrame, arrays: list[np.ndarray]) -> tuple[pl.DataFrame, list[np.ndarray]]:
    """Sum the rows of each 2-D array within groups of equal keys (one bincount per column)."""
    ids = keys.with_columns(_g=pl.struct(keys.columns).rank("dense").cast(pl.Int64) - 1)
    gid = ids["_g"].to_numpy()
    n = int(gid.max()) + 1 if len(gid) else 0
    uniq = ids.unique("_g").sort("_g").drop("_g")
    sums = [
        np.stack([np.bincount(gid, weights=a[:, j], minlength=n) for j in range(a.shape[1])], axis=1)
        for a in arrays
    ]
    return uniq, sums


def month_chunks(lf: pl.LazyFrame) -> list[tuple[dt.date, dt.date]]:
    """Calendar-month date ranges covering the frame's read dates (one collect per chunk keeps
    memory at one shard-month)."""
    lo, hi = (
        lf.select(pl.col("read_date").min().alias("lo"), pl.col("read_date").max().alias("hi"))
        .collect()
        .row(0)
    )
    if lo is None:
        return []
    starts = pl.date_range(lo.replace(day=1), hi, "1mo", eager=True).to_list()
    return [
        (max(s, lo), min(e - dt.timedelta(days=1), hi))
        for s, e in zip(starts, [*starts[1:], _next_month(hi)], strict=True)
    ]


def _next_month(d: dt.date) -> dt.date:
    return dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)


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
    # the NMI filter is pushed into the parquet scan: rows of other NMIs are never decoded
    nmis = regs["nmi"].unique().implode()
    return (
        interval.filter(pl.col("nmi").is_in(nmis))
        .join(keys, on=["nmi", "suffix"], how="inner")
        .filter(
            (pl.col("read_date") >= pl.col("register_start"))
            & (pl.col("register_end").is_null() | (pl.col("read_date") <= pl.col("register_end")))
        )
    )


def profile_partial_sums(
    registers: pl.DataFrame, interval: pl.LazyFrame, segment_with_tni: bool = False
) -> pl.DataFrame:
    """One shard's partial sums: segment, read_date, total (48 kWh sums), count (48 register
    counts), registers (registers with any actual half hour). Parent segments are rows too."""
    regs = one_row_per_register(interval_registers(registers, segment_with_tni))
    data = well_formed(registers_interval_data(regs, interval)).select(
        "segment", "read_date", "interval_minutes", "values", "quality"
    )
    parts: list[pl.DataFrame] = []
    for lo, hi in month_chunks(interval):
        for rows in by_length(data.filter(pl.col("read_date").is_between(lo, hi)).collect()):
            hh, ok = grid_arrays(rows)
            any_ok = ok.any(axis=1, keepdims=True).astype(np.float64)
            keys, (tot, cnt, reg) = group_sum(
                rows.select("segment", "read_date"), [hh, ok.astype(np.float64), any_ok]
            )
            parts.append(_partial_frame(keys, tot, cnt, reg[:, 0]))
    if not parts:
        return _partial_frame(
            pl.DataFrame(schema={"segment": pl.Utf8, "read_date": pl.Date}),
            np.zeros((0, SLOTS)),
            np.zeros((0, SLOTS)),
            np.zeros(0),
        )
    own = combine_partials(parts)
    # a register belongs to exactly one segment: the parent's sums are the sums of its children
    parents = own.with_columns(segment=parent_of(pl.col("segment")))
    return combine_partials([own, parents])


def _partial_frame(
    keys: pl.DataFrame, total: np.ndarray, count: np.ndarray, registers: np.ndarray
) -> pl.DataFrame:
    return keys.with_columns(
        pl.Series("total", total.reshape(-1, SLOTS), dtype=pl.Array(pl.Float64, SLOTS)),
        pl.Series("count", count.reshape(-1, SLOTS), dtype=pl.Array(pl.Float64, SLOTS)),
        pl.Series("registers", registers, dtype=pl.Float64),
    )


def combine_partials(partials: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Add partial sums of the same (segment, read_date)."""
    allp = pl.concat(list(partials))
    keys, (tot, cnt, reg) = group_sum(
        allp.select("segment", "read_date"),
        [allp["total"].to_numpy(), allp["count"].to_numpy(), allp["registers"].to_numpy().reshape(-1, 1)],
    )
    return _partial_frame(keys, tot, cnt, reg[:, 0]).sort("segment", "read_date")


def combine_profiles(partials: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Sum the shards' partials; P = total / count per slot (null where no register contributed)."""
    total = combine_partials(partials)
    tot, cnt = total["total"].to_numpy(), total["count"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cnt > 0, tot / np.where(cnt > 0, cnt, 1.0), np.nan)
    return total.select(
        "segment",
        "read_date",
        pl.Series("profile", mean, dtype=pl.Array(pl.Float64, SLOTS))
        .arr.to_list()
        .list.eval(pl.element().fill_nan(None)),
        pl.col("registers").cast(pl.UInt32),
    )
