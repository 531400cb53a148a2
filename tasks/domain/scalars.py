"""Interval register scalars (SPEC §4.3).

Method: s_r = Σ actual half-hour values over the reference window ÷ Σ P(segment, day, slot) over
the same half hours, where the reference window is the calendar window R − 28 … R − 1 when at
least 14 of its days have actual data, else R − 365 … R − 1. Only actual half hours (A, S, F on
every sub-interval) count, on both sides of the ratio, so that gaps and MDP estimates do not bias
it. A register with no actual half hour in the last 365 days, or whose profile sums to zero over
them, gets s_r = 1 (it is estimated as the segment's average register) and an exception
``NO_HISTORY``. The per-day sums are numpy over each month's register-day rows on the half-hour grid.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from tasks.domain.half_hour_grid import slot_sum
from tasks.domain.plausibility import Caps, register_caps
from tasks.domain.profiles import (
    SLOTS,
    Grid,
    calendar_chunks,
    interval_grids,
    interval_registers,
    one_row_per_register,
    segment_codes,
)

SHORT_WINDOW_DAYS = 28
MIN_SHORT_DAYS = 14
LONG_WINDOW_DAYS = 365
FEW_REGISTERS = 200


def interval_day_sums(
    registers: pl.DataFrame,
    interval: pl.LazyFrame,
    fixed: pl.DataFrame,
    date_from: dt.date,
    date_to: dt.date,
    segment_with_tni: bool = False,
    caps: Caps | None = None,
) -> pl.DataFrame:
    """Per register-day with actual data: actual_sum (kWh) and profile_sum (Σ P on the same slots).
    ``caps``: implausible register-days (tasks/domain/plausibility.py) count as missing.

    A register-day whose segment has no row in ``fixed`` on that day is left out. The data is read
    month by month (:func:`tasks.domain.profiles.interval_grids`); the profile of each row is gathered from
    a dense (segment, day, slot) array of ``fixed`` (a null slot counts 0).
    """
    schema = {
        "meter_register_id": pl.Int64,
        "read_date": pl.Date,
        "actual_sum": pl.Float64,
        "profile_sum": pl.Float64,
        "actual_slots": pl.Int64,
    }
    regs = one_row_per_register(interval_registers(registers, segment_with_tni))
    names, seg_of_reg = segment_codes(regs)
    if regs.height == 0 or not names or date_from > date_to:
        return pl.DataFrame(schema=schema)
    day0 = (date_from - dt.date(1970, 1, 1)).days
    pvals, has = _dense_profiles(fixed, names, date_from, date_to)
    mrid = regs["meter_register_id"].to_numpy()
    # month chunks bound memory for a whole shard; a few registers (the 365-day fallback) are read
    # at once, their NMIs pushed into the scan
    few = regs.height <= FEW_REGISTERS
    chunks = [(date_from, date_to)] if few else calendar_chunks(date_from, date_to)

    def day_sums(g: Grid) -> pl.DataFrame:
        seg, day = seg_of_reg[g.reg], g.day - day0
        keep = (seg >= 0) & has[np.maximum(seg, 0), day]
        seg, day = seg[keep], day[keep]
        ok = g.ok[:, keep]  # slot-major (48, rows)
        return pl.DataFrame(
            {
                "meter_register_id": mrid[g.reg[keep]],
                "read_date": (day + day0).astype("datetime64[D]"),
                "actual_sum": slot_sum(g.hh[:, keep]),
                "profile_sum": slot_sum(pvals[seg, day].T * ok),
                "actual_slots": ok.sum(axis=0),
            }
        )

    rcaps = register_caps(regs, caps) if caps is not None else None
    parts = list(interval_grids(regs, interval, chunks, day_sums, nmi_filter=few, caps=rcaps))
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat(parts).cast(schema).filter(pl.col("actual_slots") > 0)  # type: ignore[arg-type]


def _dense_profiles(
    fixed: pl.DataFrame, names: list[str], date_from: dt.date, date_to: dt.date
) -> tuple[np.ndarray, np.ndarray]:
    """(P, has): P[segment, day, slot] of ``fixed`` (a null slot 0), has = the segment-day has a row."""
    day0 = (date_from - dt.date(1970, 1, 1)).days
    ndays = (date_to - date_from).days + 1
    prof = fixed.filter(pl.col("read_date").is_between(date_from, date_to) & pl.col("segment").is_in(names))
    pvals = np.zeros((len(names), ndays, SLOTS))
    has = np.zeros((len(names), ndays), dtype=bool)
    if prof.height:
        si = (
            prof.select(pl.col("segment").replace_strict(names, list(range(len(names)))))
            .to_series()
            .to_numpy()
        )
        di = prof["read_date"].to_numpy().astype("datetime64[D]").astype(np.int64) - day0
        pvals[si, di] = np.nan_to_num(prof["profile"].list.to_array(SLOTS).to_numpy())
        has[si, di] = True
    return pvals, has


def day_sums_from_grid(
    registers: pl.DataFrame,
    day_grid: pl.DataFrame,
    fixed: pl.DataFrame,
    date_from: dt.date,
    date_to: dt.date,
    segment_with_tni: bool = False,
) -> pl.DataFrame:
    """:func:`interval_day_sums` from a shard's day grid (``profiles.profile_partials_and_day_grid``:
    actual_sum and the actual half hours of each register-day, computed when the profiles read the
    store) instead of the store: the same rows and the same sums (the same arithmetic on the same
    half hours), with no read of interval data."""
    schema = {"meter_register_id": pl.Int64, "read_date": pl.Date, "actual_sum": pl.Float64,
              "profile_sum": pl.Float64, "actual_slots": pl.Int64}  # fmt: skip
    regs = one_row_per_register(interval_registers(registers, segment_with_tni))
    names, seg_of_reg = segment_codes(regs)
    if regs.height == 0 or not names or date_from > date_to:
        return pl.DataFrame(schema=schema)
    rows = day_grid.filter(pl.col("read_date").is_between(date_from, date_to)).join(
        regs.select("meter_register_id").with_row_index("_reg"), on="meter_register_id", how="inner",
        maintain_order="left",
    )  # fmt: skip
    day0 = (date_from - dt.date(1970, 1, 1)).days
    pvals, has = _dense_profiles(fixed, names, date_from, date_to)
    seg = seg_of_reg[rows["_reg"].to_numpy().astype(np.int64)]
    day = rows["read_date"].to_numpy().astype("datetime64[D]").astype(np.int64) - day0
    keep = (seg >= 0) & has[np.maximum(seg, 0), day]
    seg, day = seg[keep], day[keep]
    from tasks.domain.profile_kernel import masked_profile_sums  # numba: on first use

    profile_sum, actual_slots = masked_profile_sums(pvals, seg, day, rows["ok_mask"].to_numpy()[keep])
    return (
        pl.DataFrame(
            {
                "meter_register_id": rows["meter_register_id"].to_numpy()[keep],
                "read_date": (day + day0).astype("datetime64[D]"),
                "actual_sum": rows["actual_sum"].to_numpy()[keep],
                "profile_sum": profile_sum,
                "actual_slots": actual_slots,
            }
        )
        .cast(schema)
        .filter(pl.col("actual_slots") > 0)
    )  # type: ignore[arg-type]


def reference_windows(run_date: dt.date) -> tuple[dt.date, dt.date]:
    """First days of the 28-day and of the 365-day reference windows (both end at R − 1)."""
    return run_date - dt.timedelta(days=SHORT_WINDOW_DAYS), run_date - dt.timedelta(days=LONG_WINDOW_DAYS)


def interval_scalars(
    registers: pl.DataFrame, day_sums: pl.DataFrame, run_date: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """scalars (meter_register_id, scalar, reference 28D | 365D | NONE, reference_days) and exceptions."""
    short_from, long_from = reference_windows(run_date)
    before = day_sums.filter(pl.col("read_date") < run_date)

    def window(lo: dt.date, tag: str) -> pl.DataFrame:
        # sums in (register, day) order with numpy: the same additions in the same order on
        # every run (a hash group-by may add a group's rows in another order)
        w = before.filter(pl.col("read_date") >= lo).sort("meter_register_id", "read_date")
        ids = w["meter_register_id"].to_numpy()
        starts = (
            np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]])) if len(ids) else np.zeros(0, int)
        )
        return pl.DataFrame(
            {
                "meter_register_id": ids[starts],
                f"a_{tag}": _sums(w["actual_sum"].to_numpy(), starts),
                f"p_{tag}": _sums(w["profile_sum"].to_numpy(), starts),
                f"d_{tag}": np.diff(np.concatenate([starts, [len(ids)]])),
            },
            schema={"meter_register_id": pl.Int64, f"a_{tag}": pl.Float64, f"p_{tag}": pl.Float64,
                    f"d_{tag}": pl.UInt32},
        )  # fmt: skip

    regs = one_row_per_register(interval_registers(registers)).select("meter_register_id", "account_id")
    both = regs.join(window(short_from, "s"), on="meter_register_id", how="left").join(
        window(long_from, "l"), on="meter_register_id", how="left"
    )
    use_short = (pl.col("d_s").fill_null(0) >= MIN_SHORT_DAYS) & (pl.col("p_s") > 0)
    use_long = (pl.col("d_l").fill_null(0) > 0) & (pl.col("p_l") > 0)
    out = both.with_columns(
        reference=pl.when(use_short)
        .then(pl.lit("28D"))
        .when(use_long)
        .then(pl.lit("365D"))
        .otherwise(pl.lit("NONE")),
        scalar=pl.when(use_short)
        .then(pl.col("a_s") / pl.col("p_s"))
        .when(use_long)
        .then(pl.col("a_l") / pl.col("p_l"))
        .otherwise(pl.lit(1.0)),
        reference_days=pl.when(use_short).then(pl.col("d_s")).when(use_long).then(pl.col("d_l")).otherwise(0),
    )
    scalars = out.select("meter_register_id", "scalar", "reference", pl.col("reference_days").cast(pl.Int64))
    exceptions = out.filter(pl.col("reference") == "NONE").select(
        "account_id",
        "meter_register_id",
        pl.lit("NO_HISTORY").alias("code"),
        pl.lit("interval register has no actual data in the 365 days before the run date; scalar 1").alias(
            "detail"
        ),
    )
    return scalars, exceptions


def _sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of consecutive runs of ``values`` starting at ``starts`` (numpy, one thread: the same
    order of additions on every run)."""
    return np.add.reduceat(values, starts) if len(starts) else np.zeros(0)
