"""Segment profiles (SPEC §4.2): partial sums per shard, one combine into P(segment, day, slot).

Method: interval data is first put on a fixed 30-minute grid (48 slots per day, kWh per half
hour): 5/10/15-minute values are summed into their half hour, and a half hour counts as actual
only when every sub-interval has quality A, S or F (E and N never enter a profile, nor do null
values). Each shard contributes, per (segment, day, slot), the sum of actual half-hour values and
the number of registers with an actual value; the combine adds the shards' partials and divides:
P = mean kWh per register per half hour. The parent segment (``*|jurisdiction|stream``) is
computed the same way as its own profile (a mean over all its registers, not a mean of means).
The combine then scales each segment-day to one register size whoever reported that day
(``BUA_PROFILE_COMPOSITION``, on by default; tasks/domain/profile_combine.py ``composition_factors``,
from the registers' levels of :func:`register_levels`).
The per-slot sums are done column-wise (the 48-slot lists are unnested into 48 columns) so that
no frame ever holds one row per interval.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping

import numpy as np
import polars as pl

from tasks.domain.half_hour_grid import ACTUAL_QUALITY as ACTUAL_QUALITY
from tasks.domain.half_hour_grid import GRID_MINUTES as GRID_MINUTES
from tasks.domain.half_hour_grid import SLOTS
from tasks.domain.half_hour_grid import SUPPORTED_MINUTES as SUPPORTED_MINUTES
from tasks.domain.half_hour_grid import actual_quality as actual_quality
from tasks.domain.half_hour_grid import gather_rows_t as gather_rows_t
from tasks.domain.half_hour_grid import half_hours as half_hours
from tasks.domain.half_hour_grid import lex_order as lex_order
from tasks.domain.half_hour_grid import slot_mask as slot_mask
from tasks.domain.half_hour_grid import unpack_mask as unpack_mask
from tasks.domain.interval_grids import KEPT_COLUMNS as KEPT_COLUMNS
from tasks.domain.interval_grids import (
    KEPT_SCHEMA,
    Grid,
    RawPart,
    calendar_chunks,
    interval_grids,
    month_chunks,
)
from tasks.domain.interval_grids import KEY as KEY
from tasks.domain.interval_grids import WORKERS as WORKERS
from tasks.domain.interval_grids import _flat_lists as _flat_lists
from tasks.domain.interval_grids import _flat_strings as _flat_strings
from tasks.domain.interval_grids import well_formed as well_formed
from tasks.domain.plausibility import Caps, RegisterCaps, flagged_rows, register_caps
from tasks.domain.profile_combine import _empty_partial, _partial_frame
from tasks.domain.profile_combine import combine_partials as combine_partials
from tasks.domain.profile_combine import combine_profiles as combine_profiles
from tasks.domain.profile_combine import slot_arrays as slot_arrays
from tasks.domain.profile_keys import interval_registers, one_row_per_register, segment_codes
from tasks.domain.profile_keys import parent_key as parent_key
from tasks.domain.profile_keys import parent_of as parent_of
from tasks.domain.profile_keys import segment_key as segment_key
from tasks.domain.robust_profile import keep_larger


def profile_partial_sums(
    registers: pl.DataFrame,
    interval: pl.LazyFrame,
    segment_with_tni: bool = False,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> pl.DataFrame:
    """One shard's partial sums: segment, read_date, total (48 kWh sums), count (48 register
    counts), registers (registers with any actual half hour). Parent segments are rows too.
    See :func:`profile_partials_and_day_grid`."""
    return profile_partials_and_day_grid(registers, interval, segment_with_tni, date_from, date_to)[0]


DAY_GRID_SCHEMA = {"meter_register_id": pl.Int64, "read_date": pl.Date, "actual_sum": pl.Float64,
                   "ok_mask": pl.Int64}  # fmt: skip


def profile_partials_and_day_grid(
    registers: pl.DataFrame,
    interval: pl.LazyFrame,
    segment_with_tni: bool = False,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    grid_from: dt.date | None = None,
    short_from: dt.date | None = None,
    min_short_days: int = 14,
    months: Mapping[str, pl.LazyFrame] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(partial, day grid) of :func:`profile_read` (without kept rows)."""
    partial, day_grid, _ = profile_read(
        registers,
        interval,
        segment_with_tni,
        date_from,
        date_to,
        grid_from,
        short_from,
        min_short_days,
        months,
    )
    return partial, day_grid


def profile_read(
    registers: pl.DataFrame,
    interval: pl.LazyFrame,
    segment_with_tni: bool = False,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    grid_from: dt.date | None = None,
    short_from: dt.date | None = None,
    min_short_days: int = 14,
    months: Mapping[str, pl.LazyFrame] | None = None,
    keep: pl.DataFrame | None = None,
    caps: Caps | None = None,
    flagged: list[pl.DataFrame] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The shard's profile partial sums and, from the same read, its **day grid**: one row per
    register-day on or after ``grid_from`` with an actual half hour — meter_register_id,
    read_date, actual_sum (Σ actual half hours), ok_mask (bit j = half hour j is actual) — for
    the scalars (tasks/domain/scalars.py), so that they need not read the store again. Rows before
    ``short_from`` are kept only for registers with fewer than ``min_short_days`` such days from
    ``short_from`` on (the registers that may fall back to the 365-day window). Empty when
    ``grid_from`` is None.

    Sums are accumulated in one dense (segment, day, slot) array per shard: each chunk's rows of
    one interval length are summed in store order by one compiled pass
    (tasks/domain/profile_kernel.py) and added in; chunks in date order (a day is in one chunk),
    lengths ascending. The order of every addition is fixed, so the bytes are the same on every
    run. Registers without a
    segment (a null class, jurisdiction or stream) have no profile and are left out.
    ``date_from``/``date_to`` (the scan's range) save a pass over the data to find it; ``months``
    see :func:`interval_grids`.

    Third, the **kept rows**: the store rows (``KEPT_COLUMNS``, store order) of the ``keep`` keys
    (nmi, suffix, read_date) in the chunks read, copied out of the same decode (the interval
    estimates' unbilled-window days, tasks/domain/interval_estimate.py); empty when ``keep`` is None.

    ``caps``: implausible register-days (tasks/domain/plausibility.py) are read as missing data;
    their ``FLAGGED_SCHEMA`` frame is appended to ``flagged``.
    """
    regs = one_row_per_register(interval_registers(registers, segment_with_tni))
    names, seg_of_reg = segment_codes(regs)
    chunks = (
        calendar_chunks(date_from, date_to)
        if date_from is not None and date_to is not None
        else month_chunks(interval)
    )
    empty_grid = pl.DataFrame(schema=DAY_GRID_SCHEMA)
    kept: dict[int, pl.DataFrame] = {}

    def kept_rows() -> pl.DataFrame:
        return pl.concat([kept[i] for i in sorted(kept)]) if kept else pl.DataFrame(schema=KEPT_SCHEMA)

    if not chunks or (not names and keep is None):
        return _empty_partial(), empty_grid, kept_rows()
    mrid = regs["meter_register_id"].to_numpy()
    day0 = _days(chunks[0][0])
    ndays = _days(chunks[-1][1]) - day0 + 1
    rcaps = register_caps(regs, caps) if caps is not None else None
    # every register-day with an actual half hour comes back (the registers' levels need all of
    # them); the day grid keeps those from grid_from on
    reduce = functools.partial(_reduce_raw, caps=rcaps, seg_of_reg=seg_of_reg, nseg=len(names), g_from=day0)
    parts = interval_grids(
        regs, interval, chunks, _no_grid, months=months, keep=keep,
        kept=kept if keep is not None else None, raw=reduce,
    )  # fmt: skip
    found: list[tuple[np.ndarray, ...]] = []
    tot, cnt, nreg, rows, top_day, top, grid_parts = _accumulate(parts, len(names), ndays, day0, found)
    if flagged is not None:
        flagged.append(flagged_rows(regs, found))
    level, top_level = register_levels(grid_parts, seg_of_reg, len(names), day0, ndays)
    day_grid = (
        _day_grid(grid_parts, mrid, grid_from, short_from, min_short_days)
        if grid_parts and grid_from is not None
        else empty_grid
    )
    partial = _segment_partial(names, day0, ndays, tot, cnt, nreg, rows, top_day, top, level, top_level)
    return partial, day_grid, kept_rows()


def register_levels(
    grid_parts: list[tuple[np.ndarray, ...]], seg_of_reg: np.ndarray, nseg: int, day0: int, ndays: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per (segment, day): the sum and the largest of the **levels** of the registers with an
    actual half hour that day (the registers ``nreg`` counts) — a register's level is its mean day
    over its days with actual data in the window read, each day's actual half hours scaled to 48
    (a register's own days only: the same on any shard count). The combine divides the profile by
    the mean level of the registers present, so that which registers report on a day does not move
    it (tasks/domain/profile_combine.py, ``composition_factors``)."""
    level = np.zeros((nseg, ndays))
    top_level = np.full((nseg, ndays), -np.inf)
    if not grid_parts:
        return level, top_level
    reg, day, actual, mask = (np.concatenate(c) for c in zip(*grid_parts, strict=True))
    slots = np.bitwise_count(mask.astype(np.uint64)).astype(np.float64)
    nregs = len(seg_of_reg)
    days = np.bincount(reg, minlength=nregs).astype(np.float64)
    # the order of every addition is the read order: the same bytes on every run
    total = np.bincount(reg, weights=actual * (SLOTS / np.maximum(slots, 1.0)), minlength=nregs)
    with np.errstate(invalid="ignore", divide="ignore"):
        lev = np.where(days > 0, total / np.where(days > 0, days, 1.0), 0.0)
    seg = seg_of_reg[reg]
    cell = seg * ndays + (day - day0)
    level = np.bincount(cell, weights=lev[reg], minlength=nseg * ndays).reshape(nseg, ndays)
    np.maximum.at(top_level.reshape(-1), cell, lev[reg])
    return level, top_level


def _no_grid(g: Grid) -> tuple:  # interval_grids' fn, unused with raw=
    raise AssertionError("profile_read reads raw parts")


def _reduce_raw(
    part: RawPart, caps: RegisterCaps | None, seg_of_reg: np.ndarray, nseg: int, g_from: int | None
) -> tuple:
    """:func:`tasks.domain.profile_kernel.reduce_part` (one compiled pass over the part's rows),
    numba imported on the first part, not by every program that imports this module."""
    from tasks.domain.profile_kernel import reduce_part

    return reduce_part(part, caps, seg_of_reg, nseg, g_from)


def _accumulate(
    parts: Iterable[tuple], nseg: int, ndays: int, day0: int, flagged: list[tuple[np.ndarray, ...]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]:
    """The parts of :func:`_reduce_raw` added into dense (segment, day[, slot]) arrays, in part
    order: tot, cnt, nreg, rows, top_day, top, and the day-grid parts; flagged rows appended to
    ``flagged``."""
    grid_parts: list[tuple[np.ndarray, ...]] = []
    tot = np.zeros((nseg, ndays, SLOTS))
    cnt = np.zeros((nseg, ndays, SLOTS))
    nreg = np.zeros((nseg, ndays))
    rows = np.zeros((nseg, ndays), dtype=np.int64)
    top_day = np.full((nseg, ndays), -np.inf)  # the largest register day (tasks/domain/robust_profile.py)
    top = np.zeros((nseg, ndays, SLOTS))
    for (dlo, p_tot, p_cnt, p_reg, p_rows, p_top_day, p_top), grid, flags in parts:
        if len(flags[0]):
            flagged.append(flags)
        if grid and len(grid[0]):
            grid_parts.append(grid)
        at = slice(dlo - day0, dlo - day0 + p_tot.shape[1])
        tot[:, at] += p_tot
        cnt[:, at] += p_cnt
        nreg[:, at] += p_reg
        rows[:, at] += p_rows
        keep_larger(top_day[:, at], top[:, at], p_top_day, p_top)
    return tot, cnt, nreg, rows, top_day, top, grid_parts


def _segment_partial(
    names: list[str],
    day0: int,
    ndays: int,
    tot: np.ndarray,
    cnt: np.ndarray,
    nreg: np.ndarray,
    rows: np.ndarray,
    top_day: np.ndarray,
    top: np.ndarray,
    level: np.ndarray,
    top_level: np.ndarray,
) -> pl.DataFrame:
    """The partial-sums frame of the segments and their parents (sorted by segment, day)."""
    # a register belongs to exactly one segment: the parent's sums are its children's, added in
    # segment order
    parents = sorted({"*|" + "|".join(s.split("|")[1:3]) for s in names})
    pidx = {p: i for i, p in enumerate(parents)}
    ptot = np.zeros((len(parents), ndays, SLOTS))
    pcnt = np.zeros((len(parents), ndays, SLOTS))
    pnreg = np.zeros((len(parents), ndays))
    prows = np.zeros((len(parents), ndays), dtype=np.int64)
    plevel = np.zeros((len(parents), ndays))
    for i, s in enumerate(names):
        j = pidx["*|" + "|".join(s.split("|")[1:3])]
        ptot[j] += tot[i]
        pcnt[j] += cnt[i]
        pnreg[j] += nreg[i]
        prows[j] += rows[i]
        plevel[j] += level[i]
    all_names = names + parents
    seg_i, day_i = np.nonzero(np.concatenate([rows, prows]) > 0)
    if len(seg_i) == 0:
        return _empty_partial()
    keys = pl.DataFrame(
        {
            "segment": pl.Series(all_names, dtype=pl.Utf8).gather(seg_i),
            "read_date": pl.Series((day0 + day_i).astype("datetime64[D]"), dtype=pl.Date),
        }
    )
    partial = _partial_frame(
        keys,
        np.concatenate([tot, ptot])[seg_i, day_i],
        np.concatenate([cnt, pcnt])[seg_i, day_i],
        np.concatenate([nreg, pnreg])[seg_i, day_i],
        # parents have no top of their own: they are the sums of their trimmed children
        np.concatenate([top_day, np.full((len(parents), ndays), -np.inf)])[seg_i, day_i],
        np.concatenate([top, np.zeros((len(parents), ndays, SLOTS))])[seg_i, day_i],
        np.concatenate([level, plevel])[seg_i, day_i],
        # parents' levels are the sums of their children's trimmed levels (as their totals)
        np.concatenate([top_level, np.full((len(parents), ndays), -np.inf)])[seg_i, day_i],
    ).sort("segment", "read_date")
    return partial


def _day_grid(
    parts: list[tuple[np.ndarray, ...]],
    mrid: np.ndarray,
    grid_from: dt.date,
    short_from: dt.date | None,
    min_short_days: int,
) -> pl.DataFrame:
    """The day-grid frame from the reduce parts (rows in read order); see
    :func:`profile_partials_and_day_grid` for which rows are kept."""
    reg, day, actual, mask = (np.concatenate(c) for c in zip(*parts, strict=True))
    on = day >= _days(grid_from)
    reg, day, actual, mask = reg[on], day[on], actual[on], mask[on]
    if short_from is not None:
        short = day >= _days(short_from)
        n_short = np.bincount(reg[short], minlength=len(mrid))
        keep = short | (n_short[reg] < min_short_days)
        reg, day, actual, mask = reg[keep], day[keep], actual[keep], mask[keep]
    return pl.DataFrame(
        {
            "meter_register_id": mrid[reg],
            "read_date": day.astype("datetime64[D]"),
            "actual_sum": actual,
            "ok_mask": mask,
        }
    ).cast(DAY_GRID_SCHEMA)  # type: ignore[arg-type]


def _days(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days
