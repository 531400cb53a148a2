"""Sums per group in a fixed order: the same bytes on every run."""

from __future__ import annotations

import numpy as np
import polars as pl


def group_sums(frame: pl.DataFrame, keys: list[str], order: list[str], **values: pl.Expr) -> pl.DataFrame:
    """Σ of each value expression per group of ``keys``, added in a fixed order (rows sorted by
    keys + ``order``, which must make them unique; numpy ``reduceat``): polars' parallel group-by
    sums change in the last bits from run to run, and a re-run must give the same bytes."""
    f = frame.sort([*keys, *order]).with_columns(**values)
    if f.height == 0:
        return f.select(*keys, *values.keys())
    run = f.select(pl.struct(keys).rle_id().alias("_run"))["_run"].to_numpy()
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    out = f.select(keys)[starts]
    return out.with_columns(
        [pl.Series(k, np.add.reduceat(f[k].cast(pl.Float64).to_numpy(), starts)) for k in values]
    )
