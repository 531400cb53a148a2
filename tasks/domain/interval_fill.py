"""The interval estimate's arithmetic (SPEC §4.3, tasks.domain.interval_estimate): values =
present·actual + (1 − present)·s_r·P(slot)/k per register-day, in numpy from the lists' flat
buffers, or with polars list expressions for rows of an unusual shape (the same bytes)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view

from tasks.domain.half_hour_grid import GRID_MINUTES, SLOTS, SUPPORTED_MINUTES
from tasks.domain.interval_grids import _flat_lists, _flat_strings

# values per block of rows in the numpy estimate: a block's arrays stay in the CPU caches
BLOCK_VALUES = 1 << 16


def _slot_index() -> pl.DataFrame:
    """interval_minutes → for each of its intervals, the index of its half-hour slot."""
    return pl.DataFrame(
        {
            "interval_minutes": list(SUPPORTED_MINUTES),
            "_slot": [[i // (GRID_MINUTES // m) for i in range(1440 // m)] for m in SUPPORTED_MINUTES],
        },
        schema={"interval_minutes": pl.Int64, "_slot": pl.List(pl.Int64)},
    )


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
