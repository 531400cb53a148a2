"""Interval register estimation over the unbilled window (SPEC §4.3), one shard.

Method: one row per register-day of the account's unbilled window (clipped to the register's
life). Values present in the meter store are kept as given (MDP estimates, quality E, included:
the retailer is billed on them); an interval with no row, a null value or quality N is estimated
as s_r × P(segment, day, slot) / k, where P is the fixed 30-minute segment profile (check/fix
already extends it to days after the last data with the same day type's latest 4 weeks) and k the
number of the register's intervals per half hour. Everything is list arithmetic on register-day
rows: ``values = present·actual + (1 − present)·s_r·P``; ``estimated`` marks the estimated slots.
A register-day without any profile gets zeros for its missing intervals and a ``NO_PROFILE``
exception. Output follows the ``usage`` contract of docs/DESIGN.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view

from tasks.domain.plausibility import Caps, flag_frame, implausible_exceptions
from tasks.domain.profiles import (
    GRID_MINUTES,
    SLOTS,
    SUPPORTED_MINUTES,
    _flat_lists,
    _flat_strings,
    interval_registers,
)
from tasks.domain.scalars import (
    MIN_SHORT_DAYS,
    day_sums_from_grid,
    interval_day_sums,
    interval_scalars,
    reference_windows,
)
from tasks.domain.usage import usage_rows

USAGE_COLUMNS = [
    "account_id",
    "meter_register_id",
    "nmi",
    "suffix",
    "stream",
    "register_time_class",
    "unit",
    "read_date",
    "interval_minutes",
    "values",
    "estimated",
    "method",
]
# the register columns estimation uses (usage columns, the segment, the register's life)
REGISTER_COLUMNS = [
    "account_id",
    "meter_register_id",
    "nmi",
    "suffix",
    "stream",
    "time_class",
    "unit",
    "interval_minutes",
    "segment",
    "register_start",
    "register_end",
]
# values per block of rows in the numpy estimate: a block's arrays stay in the CPU caches
BLOCK_VALUES = 1 << 16
EXCEPTION_SCHEMA = {"account_id": pl.Int64, "meter_register_id": pl.Int64, "code": pl.Utf8, "detail": pl.Utf8}


def register_days(regs: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """One row per (register, day) of its account's unbilled window within the register's life."""
    lo = pl.max_horizontal("unbilled_from", "register_start")
    hi = pl.min_horizontal("unbilled_to", pl.col("register_end").fill_null(pl.col("unbilled_to")))
    return (
        regs.join(windows.select("account_id", "unbilled_from", "unbilled_to"), on="account_id")
        .with_columns(_lo=lo, _hi=hi)
        .filter(pl.col("_lo") <= pl.col("_hi"))
        .with_columns(read_date=pl.date_ranges("_lo", "_hi"))
        .explode("read_date")
        .drop("_lo", "_hi", "unbilled_from", "unbilled_to")
    )


def _slot_index() -> pl.DataFrame:
    """interval_minutes → for each of its intervals, the index of its half-hour slot."""
    return pl.DataFrame(
        {
            "interval_minutes": list(SUPPORTED_MINUTES),
            "_slot": [[i // (GRID_MINUTES // m) for i in range(1440 // m)] for m in SUPPORTED_MINUTES],
        },
        schema={"interval_minutes": pl.Int64, "_slot": pl.List(pl.Int64)},
    )


def estimate_interval(
    registers: pl.DataFrame,
    windows: pl.DataFrame,
    interval: pl.LazyFrame,
    fixed: pl.DataFrame,
    scalars: pl.DataFrame,
    segment_with_tni: bool = False,
    months: Mapping[str, pl.LazyFrame] | None = None,
    data: pl.DataFrame | None = None,
    caps: Caps | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``usage`` rows (method INTERVAL) for the shard's interval registers, and NO_PROFILE exceptions
    (with ``caps``: IMPLAUSIBLE_VALUE ones too, the implausible register-days estimated as missing).

    ``months`` (``meter_store.interval_month_scans``: one scan per month partition, keyed
    ``YYYY-MM``) lets each month of the window be read from its partition without a date filter.
    ``data``: the store rows of the window's register-days (:func:`window_keys`), already read
    (the profiles phase keeps them from its own read, ``profiles.profile_read``): then the store
    is not read.
    """
    regs = interval_registers(registers, segment_with_tni).select(REGISTER_COLUMNS)
    days = register_days(regs, windows).drop("register_start", "register_end")
    if days.height == 0:
        return _empty_usage(), pl.DataFrame(schema=EXCEPTION_SCHEMA)
    if data is None:
        data = _window_data(days, interval, months)
    implausible = pl.DataFrame(schema=EXCEPTION_SCHEMA)
    if caps is not None:
        data, implausible = _without_implausible(
            data, days, interval_registers(registers, segment_with_tni), caps
        )
    data = data.rechunk()
    profiles = fixed.select("segment", "read_date", "profile").rechunk()
    # the joins carry row numbers into ``data`` / ``profiles`` (and list lengths), not the lists:
    # the numpy estimate reads the lists' flat buffers at those rows (:func:`_estimate_arrays`)
    rows = (
        days.join(
            data.select(
                *DATA_KEY,
                "data_minutes",
                pl.int_range(pl.len(), dtype=pl.Int64).alias("_d"),
                pl.col("values").list.len().alias("_vlen"),
                pl.col("quality").str.len_bytes().alias("_qlen"),
            ),
            on=DATA_KEY,
            how="left",
            maintain_order="left",
        )
        .join(
            profiles.select(
                "segment",
                "read_date",
                pl.int_range(pl.len(), dtype=pl.Int64).alias("_f"),
                pl.col("profile").list.len().alias("_plen"),
            ),
            on=["segment", "read_date"],
            how="left",
            maintain_order="left",
        )
        .join(
            scalars.select("meter_register_id", "scalar"),
            on="meter_register_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            interval_minutes=pl.coalesce("data_minutes", pl.col("interval_minutes").cast(pl.Int64)),
            scalar=pl.col("scalar").fill_null(1.0),
        )
    )
    rows = _with_estimates(rows, data, profiles)
    usage = usage_rows(
        rows,
        interval_minutes=pl.col("interval_minutes"),
        values=pl.col("values"),
        estimated=pl.col("estimated"),
        method="INTERVAL",
    )
    no_profile = (
        rows.filter(pl.col("_plen").is_null())  # no profile row, or a null profile
        .filter(pl.col("estimated").list.any())
        .group_by("account_id", "meter_register_id")
        .agg(
            pl.col("read_date").min().alias("first"),
            pl.col("read_date").max().alias("last"),
            pl.len().alias("n"),
        )
        .select(
            "account_id",
            "meter_register_id",
            pl.lit("NO_PROFILE").alias("code"),
            pl.format(
                "no segment profile for {} day(s) {}..{}; missing intervals set to 0", "n", "first", "last"
            ).alias("detail"),
        )
    )
    return usage, pl.concat([implausible, no_profile.cast(EXCEPTION_SCHEMA)])  # type: ignore[arg-type]


DATA_KEY = ["nmi", "suffix", "read_date"]


def _without_implausible(
    data: pl.DataFrame, days: pl.DataFrame, regs: pl.DataFrame, caps: Caps
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The store rows less the implausible register-days (then estimated as missing), and one
    IMPLAUSIBLE_VALUE exception per account and register-day of the window."""
    bad = flag_frame(data, regs, caps)
    if bad.height == 0:
        return data, pl.DataFrame(schema=EXCEPTION_SCHEMA)
    held = days.select("account_id", "meter_register_id", *DATA_KEY).join(
        bad.drop("account_id", "meter_register_id"), on=DATA_KEY, how="inner"
    )
    kept = data.join(bad.select(DATA_KEY), on=DATA_KEY, how="anti", maintain_order="left")
    return kept, implausible_exceptions(held).cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]


def window_keys(registers: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """The (nmi, suffix, read_date) keys whose store rows :func:`estimate_interval` reads."""
    return register_days(interval_registers(registers), windows).select(DATA_KEY).unique(maintain_order=True)


def _window_data(
    days: pl.DataFrame, interval: pl.LazyFrame, months: Mapping[str, pl.LazyFrame] | None
) -> pl.DataFrame:
    """The store rows of the register-days in ``days``, in store order (month, then nmi, suffix,
    read_date).

    Month by month: each month's partition is read whole (without ``months``: a date-range scan
    of ``interval``) and a semi join keeps that month's register-days; the months are collected
    together (``collect_all``: both cores), each dropping its decoded values after its join (the
    old single scan of the whole window joined only after holding all of them: ~7 months when a
    few stale accounts reach back to the period start). A predicate per NMI saves nothing:
    polars still decodes the whole values column of a month (~0.08 CPU s per month partition at
    100k accounts), and a row-range slice costs a quarter of that per range while stale
    registers make tens of ranges per month; so every month of the window is still decoded
    once. Skipping the date filter saves ~30% of the read's CPU.
    """
    cols = [
        "nmi",
        "suffix",
        "read_date",
        pl.col("interval_minutes").cast(pl.Int64).alias("data_minutes"),
        "values",
        "quality",
    ]
    keys = days.select(DATA_KEY).unique().with_columns(_month=pl.col("read_date").dt.strftime("%Y-%m"))
    parts = []
    for (month,), wanted in sorted(keys.partition_by("_month", as_dict=True, include_key=False).items()):
        lo, hi = wanted["read_date"].min(), wanted["read_date"].max()
        scan = (
            months[str(month)]
            if months is not None and str(month) in months
            else interval.filter(pl.col("read_date").is_between(lo, hi))
        )
        parts.append(scan.select(cols).join(wanted.lazy(), on=DATA_KEY, how="semi", maintain_order="left"))
    return pl.concat(pl.collect_all(parts), how="vertical")


def _with_estimates(rows: pl.DataFrame, data: pl.DataFrame, profiles: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with ``values`` = present·actual + (1 − present)·s_r·P(slot)/k and ``estimated``.

    ``rows`` carry ``_d`` / ``_f``, their row in ``data`` (store rows: values, quality) and in
    ``profiles`` (segment-day profiles), and those rows' list lengths ``_vlen``, ``_qlen``,
    ``_plen``. Register-days of a supported length whose values and quality cover the day and
    whose profile has 48 slots (every row in practice) are computed with numpy straight from the
    lists' flat buffers (:func:`_estimate_arrays`); any other row with the same formula as polars
    list expressions (same IEEE operations, so both give the same bytes).
    """
    n = 1440 // pl.col("interval_minutes")
    clean = (
        pl.col("interval_minutes").is_in(SUPPORTED_MINUTES)
        & (pl.col("_vlen").is_null() | ((pl.col("_vlen") == n) & (pl.col("_qlen") == n)))
        & (pl.col("_plen").is_null() | (pl.col("_plen") == SLOTS))
    ).fill_null(False)
    rows = rows.with_columns(_clean=clean)
    values, estimated = _estimate_arrays(rows, data, profiles)
    rows = rows.with_columns(values=values, estimated=estimated)
    if rows["_clean"].all():
        return rows.drop("_clean")
    odd = (
        rows.with_row_index("_i")
        .filter(~pl.col("_clean"))
        .drop("values")
        .join(
            data.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("_d"), "values", "quality"),
            on="_d",
            how="left",
        )
        .join(
            profiles.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("_f"), "profile"),
            on="_f",
            how="left",
        )
        .join(_slot_index(), on="interval_minutes", how="left")
    )
    fix = _estimate_lists(odd)
    return (
        rows.with_row_index("_i")
        .join(fix, on="_i", how="left", suffix="_odd", maintain_order="left")
        .with_columns(
            values=pl.when("_clean").then("values").otherwise("values_odd"),
            estimated=pl.when("_clean").then("estimated").otherwise("estimated_odd"),
        )
        .drop("_i", "_clean", "values_odd", "estimated_odd")
    )


def _estimate_lists(rows: pl.DataFrame) -> pl.DataFrame:
    """The estimate with polars list expressions (rows of an unusual shape)."""
    n = 1440 // pl.col("interval_minutes")
    zeros = pl.lit(0.0).repeat_by(n)
    present = (
        pl.when(pl.col("values").is_null())
        .then(zeros)
        .otherwise(
            pl.col("quality").str.split("").list.eval((pl.element() != "N").cast(pl.Float64))
            * pl.col("values").list.eval(pl.element().is_not_null().cast(pl.Float64))
        )
    )
    actual = (
        pl.when(pl.col("values").is_null())
        .then(zeros)
        .otherwise(pl.col("values").list.eval(pl.element().fill_null(0.0)))
    )
    k = (GRID_MINUTES // pl.col("interval_minutes")).cast(pl.Float64)
    estimate = (
        pl.when(pl.col("profile").is_null())
        .then(zeros)
        .otherwise(pl.col("profile").list.gather(pl.col("_slot")) * (pl.col("scalar") / k))
    )
    return (
        rows.with_columns(_present=present, _actual=actual, _estimate=estimate)
        .with_columns(
            values=pl.col("_actual") * pl.col("_present") + (1.0 - pl.col("_present")) * pl.col("_estimate"),
            estimated=pl.col("_present").list.eval(pl.element() == 0.0),
        )
        .select("_i", "values", "estimated")
    )


def _gather_rows(
    flat: np.ndarray, off: np.ndarray, at: np.ndarray, has: np.ndarray, width: int, fill: float | int
) -> np.ndarray:
    """(len(at), width) array: row ``at[i]`` of a flat list/string buffer with offsets ``off``
    where ``has[i]`` (that row has ``width`` items), ``fill`` elsewhere."""
    if not has.any():
        return np.full((len(at), width), fill, dtype=flat.dtype)
    # one gather of every row (a row without items reads row 0's, then gets ``fill``)
    out = sliding_window_view(flat, width)[off[:-1][np.where(has, at, at[has][0])]]
    out[~has] = fill
    return out


def _estimate_block(
    values_at: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    quality_buf: tuple[np.ndarray, np.ndarray],
    profile_at: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    scalar: np.ndarray,
    minutes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(values, present) of a block of rows of one interval length: ``values_at`` = (flat values,
    offsets, row of each, has a row), ``quality_buf`` = (flat quality bytes, offsets) of the same
    rows, ``profile_at`` likewise for the profiles; ``scalar`` s_r per row."""
    vflat, voff, d, has = values_at
    qflat, qoff = quality_buf
    pflat, poff, f, hp = profile_at
    n, k = 1440 // minutes, GRID_MINUTES // minutes
    values = _gather_rows(vflat, voff, d, has, n, np.nan)
    quality = _gather_rows(qflat, qoff, d, has, n, 0)
    missing = np.isnan(values)
    present = quality != ord("N")
    present &= ~missing
    present &= has[:, None]
    values[missing] = 0.0  # actual
    p = present.astype(np.float64)
    values *= p  # actual·present
    np.subtract(1.0, p, out=p)  # 1 − present
    profile = _gather_rows(pflat, poff, f, hp, SLOTS, 0.0)
    estimate = profile if k == 1 else profile[:, np.arange(n) // k]
    estimate *= (scalar / float(k))[:, None]
    estimate[~hp] = 0.0
    estimate *= p  # (1 − present)·estimate
    values += estimate
    return values, present


def _estimate_arrays(
    rows: pl.DataFrame, data: pl.DataFrame, profiles: pl.DataFrame
) -> tuple[pl.Series, pl.Series]:
    """``values`` and ``estimated`` list columns of the ``_clean`` rows, one 2-D numpy array per
    interval length, written into one flat buffer in row order (other rows: empty lists).

    Same formula and IEEE operations as :func:`_estimate_lists` (products and sums commute
    exactly), done in place: present = value row given, quality not N, value not null;
    values = actual·present + (1 − present)·(P[slot]·(s_r / k)), P = 0 without a profile.
    """
    clean = rows["_clean"].to_numpy()
    minutes = rows["interval_minutes"].fill_null(0).to_numpy()
    counts = np.where(clean, 1440 // np.where(minutes > 0, minutes, 1440), 0)
    off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    out = np.empty(int(off[-1]), dtype=np.float64)
    est = np.empty(int(off[-1]), dtype=np.bool_)
    nan = False
    if off[-1]:
        vflat, voff = _flat_lists(data["values"])
        qflat, qoff = _flat_strings(data["quality"])
        pflat, poff = _flat_lists(profiles["profile"])
        d = rows["_d"].fill_null(0).to_numpy()
        f = rows["_f"].fill_null(0).to_numpy()
        has_values = rows["_vlen"].is_not_null().to_numpy()
        has_profile = rows["_plen"].is_not_null().to_numpy()
        scalar = rows["scalar"].to_numpy()
        for m in SUPPORTED_MINUTES:
            group = np.flatnonzero(clean & (minutes == m))
            if not len(group):
                continue
            n = 1440 // m
            out_rows = sliding_window_view(out, n, writeable=True)
            est_rows = sliding_window_view(est, n, writeable=True)
            step = max(1, BLOCK_VALUES // n)
            for start in range(0, len(group), step):
                at = group[start : start + step]
                values, present = _estimate_block(
                    (vflat, voff, d[at], has_values[at]),
                    (qflat, qoff),
                    (pflat, poff, f[at], has_profile[at]),
                    scalar[at],
                    m,
                )
                out_rows[off[at]] = values
                est_rows[off[at]] = ~present
                nan = nan or bool(np.isnan(values).any())
    offsets = pa.array(off, pa.int64())
    # a null profile slot gives NaN: null, as in polars
    values_list = pa.LargeListArray.from_arrays(offsets, pa.array(out, mask=np.isnan(out) if nan else None))
    estimated_list = pa.LargeListArray.from_arrays(offsets, pa.array(est))
    return (
        pl.Series("values", values_list, dtype=pl.List(pl.Float64)),
        pl.Series("estimated", estimated_list, dtype=pl.List(pl.Boolean)),
    )


def scalars_shard(
    registers: pl.DataFrame,
    interval: pl.LazyFrame,
    fixed: pl.DataFrame,
    run_date: dt.date,
    segment_with_tni: bool = False,
    caps: Caps | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The shard's interval scalars and NO_HISTORY exceptions.

    The 365-day reference scan is made only for the registers that lack 14 days in the last 28.
    """
    short_from, long_from = reference_windows(run_date)
    end = run_date - dt.timedelta(days=1)
    short = interval_day_sums(registers, interval, fixed, short_from, end, segment_with_tni, caps)
    rest = _short_of_days(registers, short)
    long = interval_day_sums(
        rest, interval, fixed, long_from, short_from - dt.timedelta(days=1), segment_with_tni, caps
    )
    scalars, no_history = interval_scalars(registers, pl.concat([short, long]), run_date)
    return scalars, no_history.cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]


def _short_of_days(registers: pl.DataFrame, short: pl.DataFrame) -> pl.DataFrame:
    """The registers with fewer than 14 days of actual data in the 28-day window (they need 365)."""
    enough = (
        short.group_by("meter_register_id").len().filter(pl.col("len") >= MIN_SHORT_DAYS)["meter_register_id"]
    )
    return registers.filter(~pl.col("meter_register_id").is_in(enough.implode()))


def scalars_from_grid(
    registers: pl.DataFrame,
    day_grid: pl.DataFrame,
    interval: pl.LazyFrame,
    fixed: pl.DataFrame,
    run_date: dt.date,
    segment_with_tni: bool = False,
    caps: Caps | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`scalars_shard` from the shard's day grid (written by the profiles phase): the grid
    holds every register-day with an actual half hour in R − 28 … R − 1, and the older days of
    the registers with fewer than 14 of them. A register needing the 365-day window that the grid
    does not cover (its segment lacks profile days, so fewer days count than the grid saw) is
    read from the store as before (``interval``)."""
    short_from, long_from = reference_windows(run_date)
    end = run_date - dt.timedelta(days=1)
    short = day_sums_from_grid(registers, day_grid, fixed, short_from, end, segment_with_tni)
    rest = _short_of_days(registers, short)
    seen = day_grid.filter(pl.col("read_date") >= short_from).group_by("meter_register_id").len()
    not_kept = seen.filter(pl.col("len") >= MIN_SHORT_DAYS)["meter_register_id"]  # long days left out
    in_grid = rest.filter(~pl.col("meter_register_id").is_in(not_kept.implode()))
    from_store = rest.filter(pl.col("meter_register_id").is_in(not_kept.implode()))
    long_to = short_from - dt.timedelta(days=1)
    long = pl.concat(
        [
            day_sums_from_grid(in_grid, day_grid, fixed, long_from, long_to, segment_with_tni),
            interval_day_sums(from_store, interval, fixed, long_from, long_to, segment_with_tni, caps),
        ]
    )
    scalars, no_history = interval_scalars(registers, pl.concat([short, long]), run_date)
    return scalars, no_history.cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]


def estimate_interval_shard(
    registers: pl.DataFrame,
    windows: pl.DataFrame,
    interval: pl.LazyFrame,
    fixed: pl.DataFrame,
    run_date: dt.date,
    segment_with_tni: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Scalars then estimation for one shard: returns (usage, exceptions, scalars)."""
    scalars, no_history = scalars_shard(registers, interval, fixed, run_date, segment_with_tni)
    usage, no_profile = estimate_interval(registers, windows, interval, fixed, scalars, segment_with_tni)
    return usage, pl.concat([no_history, no_profile]), scalars


def _empty_usage() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "account_id": pl.Int64,
            "meter_register_id": pl.Int64,
            "nmi": pl.Utf8,
            "suffix": pl.Utf8,
            "stream": pl.Utf8,
            "register_time_class": pl.Utf8,
            "unit": pl.Utf8,
            "read_date": pl.Date,
            "interval_minutes": pl.Int64,
            "values": pl.List(pl.Float64),
            "estimated": pl.List(pl.Boolean),
            "method": pl.Utf8,
        }
    )
