"""Segment profile partial sums as frames, and the one combine of the shards' partials into
P(segment, day, slot) (SPEC §4.2, tasks.domain.profiles)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from tasks.domain.half_hour_grid import SLOTS
from tasks.domain.robust_profile import best_tops, trimmed_totals


def _empty_partial() -> pl.DataFrame:
    return _partial_frame(
        pl.DataFrame(schema={"segment": pl.Utf8, "read_date": pl.Date}),
        np.zeros((0, SLOTS)),
        np.zeros((0, SLOTS)),
        np.zeros(0),
    )


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


def _partial_frame(
    keys: pl.DataFrame,
    total: np.ndarray,
    count: np.ndarray,
    registers: np.ndarray,
    top_day: np.ndarray | None = None,
    top: np.ndarray | None = None,
) -> pl.DataFrame:
    """Partial sums; ``top_day``/``top``: each row's largest register day and its half hours
    (tasks/domain/robust_profile.py; none: -inf and zeros)."""
    n = len(keys)
    return keys.with_columns(
        slot_arrays("total", total),
        slot_arrays("count", count),
        pl.Series("registers", registers, dtype=pl.Float64),
        pl.Series("top_day", top_day if top_day is not None else np.full(n, -np.inf), dtype=pl.Float64),
        slot_arrays("top", top if top is not None else np.zeros((n, SLOTS))),
    )


def slot_arrays(name: str, a: np.ndarray) -> pl.Series:
    """An ``Array(Float64, 48)`` series of a (rows, 48) array (a flat series reshaped: given a
    2-D array, ``pl.Series`` converts it row by row)."""
    a = np.ascontiguousarray(a, dtype=np.float64).reshape(-1, SLOTS)
    return pl.Series(name, a.ravel()).reshape((len(a), SLOTS))


def combine_partials(partials: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Add partial sums of the same (segment, read_date)."""
    allp = pl.concat(list(partials))
    keys, (tot, cnt, reg) = group_sum(
        allp.select("segment", "read_date"),
        [allp["total"].to_numpy(), allp["count"].to_numpy(), allp["registers"].to_numpy().reshape(-1, 1)],
    )
    tops = best_tops(allp, keys)
    return _partial_frame(keys, tot, cnt, reg[:, 0], tops["top_day"].to_numpy(), tops["top"].to_numpy()).sort(
        "segment", "read_date"
    )


def combine_profiles(partials: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Sum the shards' partials; P = total / count per slot (null where no register contributed),
    the largest register of a segment-day capped (tasks/domain/robust_profile.py)."""
    total = combine_partials(partials)
    tot, cnt = trimmed_totals(total), total["count"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cnt > 0, tot / np.where(cnt > 0, cnt, 1.0), np.nan)
    return total.select(
        "segment",
        "read_date",
        slot_arrays("profile", mean).arr.to_list().list.eval(pl.element().fill_nan(None)),
        pl.col("registers").cast(pl.UInt32),
    )
