"""Segment profiles robust to one register's outlier (issue 17; docs/METHOD.md "Implausible meter data").

A value below the plausibility caps can still be far out of line with its segment (a meter
misconfigured by a multiplier, a business site filed as residential). The profile is a mean, so
one such register would move it for every register estimated from it. The **largest register of
each (segment, day)** — by its day's total of actual half hours — is therefore capped at
``TRIM_FACTOR`` times the mean day of the segment's other registers that day (with at least
``MIN_REGISTERS`` registers that day): when above, its 48
half hours are scaled down to that level (its shape kept) before the mean is taken. On clean data
the cap does not bind (generated portfolios: the largest register of a segment-day is at most
6.6x the others' mean at 150 accounts, 12.4x at 500 — a large Victorian business site; a factor
of 10 would have trimmed 9 of its 7,524 segment-days), so the profile is the plain mean. A parent segment (``*|jurisdiction|stream``,
which mixes residential and business registers) is the sum of its trimmed children.

The largest register of each (segment, day) travels with the partial sums (``top_day``, ``top``):
per chunk it is the first row (store order) with the largest day (tasks/domain/profile_kernel.py); across chunks and shards the larger day wins
(ties: the first, in a fixed order), so the bytes are the same on every run.
"""

from __future__ import annotations

import numpy as np
import polars as pl

TRIM_FACTOR = 20.0
MIN_REGISTERS = 3  # with two registers neither can be told to be the outlier


def keep_larger(top_day: np.ndarray, top: np.ndarray, new_day: np.ndarray, new: np.ndarray) -> None:
    """Where ``new_day`` is larger than ``top_day``, take the new top (in place; views of the
    accumulators may be given)."""
    better = new_day > top_day
    top_day[better] = new_day[better]
    top[better] = new[better]


def trimmed_totals(total: pl.DataFrame) -> np.ndarray:
    """The (rows, 48) totals of combined partials with each segment-day's largest register capped
    at TRIM_FACTOR x the others' mean day, and parents less their children's excess."""
    return trim_largest(
        total, total["total"].to_numpy(), total["top_day"].to_numpy(), total["top"].to_numpy()
    )


def trim_largest(total: pl.DataFrame, sums: np.ndarray, top_size: np.ndarray, top: np.ndarray) -> np.ndarray:
    """``sums`` (rows, k) of the rows (segment, read_date, registers) of ``total`` with each
    segment-day's largest register — its size ``top_size``, its k values ``top`` — capped at
    TRIM_FACTOR x the others' mean size (sizes: the rows of ``sums`` added up), and parents less
    their children's excess. The segment profile trims register days with it (``trimmed_totals``),
    the composition factor register levels (tasks/domain/profile_combine.py)."""
    nreg = total["registers"].to_numpy()
    parent = total["segment"].str.starts_with("*|").to_numpy()
    others = (sums.sum(axis=1) - top_size) / np.maximum(nreg - 1, 1)
    with np.errstate(invalid="ignore"):
        trim = ~parent & (nreg >= MIN_REGISTERS) & np.isfinite(top_size) & (top_size > TRIM_FACTOR * others)
    if not trim.any():
        return sums
    excess = top[trim] * (1.0 - TRIM_FACTOR * others[trim] / top_size[trim])[:, None]
    out = sums.copy()
    out[trim] -= excess
    # the parents are sums of their children: less the same excess
    child = total.filter(pl.Series(trim)).select(
        pl.concat_str([pl.lit("*"), *(pl.col("segment").str.split("|").list.get(i) for i in (1, 2))],
                      separator="|").alias("segment"),
        "read_date",
    )  # fmt: skip
    rows = total.select("segment", "read_date").with_row_index("_i").join(child.with_row_index("_c"),
                                                                         on=["segment", "read_date"])  # fmt: skip
    np.subtract.at(out, rows["_i"].to_numpy(), excess[rows["_c"].to_numpy()])
    return out
