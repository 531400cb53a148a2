"""Segment profile partial sums as frames, and the one combine of the shards' partials into
P(segment, day, slot) (SPEC §4.2, tasks.domain.profiles)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from tasks.domain.half_hour_grid import SLOTS
from tasks.domain.robust_profile import trim_largest, trimmed_totals


def _empty_partial() -> pl.DataFrame:
    return _partial_frame(
        pl.DataFrame(schema={"segment": pl.Utf8, "read_date": pl.Date}),
        np.zeros((0, SLOTS)),
        np.zeros((0, SLOTS)),
        np.zeros(0),
    )


def _partial_frame(
    keys: pl.DataFrame,
    total: np.ndarray,
    count: np.ndarray,
    registers: np.ndarray,
    top_day: np.ndarray | None = None,
    top: np.ndarray | None = None,
    level: np.ndarray | None = None,
    top_level: np.ndarray | None = None,
) -> pl.DataFrame:
    """Partial sums; ``top_day``/``top``: each row's largest register day and its half hours
    (tasks/domain/robust_profile.py; none: -inf and zeros); ``level``/``top_level``: the sum and
    the largest of the present registers' levels (tasks.domain.profiles.register_levels; none: 0
    and -inf)."""
    n = len(keys)
    return keys.with_columns(
        slot_arrays("total", total),
        slot_arrays("count", count),
        pl.Series("registers", registers, dtype=pl.Float64),
        pl.Series("top_day", top_day if top_day is not None else np.full(n, -np.inf), dtype=pl.Float64),
        slot_arrays("top", top if top is not None else np.zeros((n, SLOTS))),
        pl.Series("level", level if level is not None else np.zeros(n), dtype=pl.Float64),
        pl.Series("top_level", top_level if top_level is not None else np.full(n, -np.inf), dtype=pl.Float64),
    )


def slot_arrays(name: str, a: np.ndarray) -> pl.Series:
    """An ``Array(Float64, 48)`` series of a (rows, 48) array (a flat series reshaped: given a
    2-D array, ``pl.Series`` converts it row by row)."""
    a = np.ascontiguousarray(a, dtype=np.float64).reshape(-1, SLOTS)
    return pl.Series(name, a.ravel()).reshape((len(a), SLOTS))


def combine_partials(partials: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Add partial sums of the same (segment, read_date), folding the partials in one at a time
    (only the running sums and one partial are held: the shards' partials are never concatenated).

    Each (segment, day)'s sums add its rows in the order given, starting from 0.0 — the order one
    bincount over all the partials concatenated would add them in, so the bytes are the same; its
    top is the largest ``top_day`` (NaN above any number, as a descending sort puts it), ties to the
    first."""
    keys = pl.DataFrame(schema={"segment": pl.Utf8, "read_date": pl.Date})
    tot, cnt = np.zeros((0, SLOTS)), np.zeros((0, SLOTS))
    reg, top_day, top = np.zeros(0), np.zeros(0), np.zeros((0, SLOTS))
    level, top_level = np.zeros(0), np.zeros(0)
    for part in partials:
        if not part.height:
            continue
        # a key twice in one partial: its rows are added in their order, one occurrence at a time
        occ = part.select(pl.int_range(pl.len()).over("segment", "read_date").alias("_o"))["_o"]
        runs = [part] if occ.max() == 0 else [part.filter(occ == o) for o in range(int(occ.max()) + 1)]
        for rows in runs:
            keys, tot, cnt, reg, top_day, top, level, top_level = _fold(
                rows, keys, tot, cnt, reg, top_day, top, level, top_level
            )
    return _partial_frame(keys, tot, cnt, reg, top_day, top, level, top_level)


def _fold(
    part: pl.DataFrame,
    keys: pl.DataFrame,
    tot: np.ndarray,
    cnt: np.ndarray,
    reg: np.ndarray,
    top_day: np.ndarray,
    top: np.ndarray,
    level: np.ndarray,
    top_level: np.ndarray,
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The running sums with one partial (unique keys) added: the union of keys in (segment,
    read_date) order, the old rows copied, the partial's rows added; its tops where larger."""
    pkeys = part.select("segment", "read_date")
    union = pl.concat([keys, pkeys]).unique().sort("segment", "read_date").with_row_index("_i")
    old = keys.join(union, on=["segment", "read_date"], how="left", maintain_order="left")["_i"].to_numpy()
    new = pkeys.join(union, on=["segment", "read_date"], how="left", maintain_order="left")["_i"].to_numpy()
    n = union.height
    t2, c2, r2 = np.zeros((n, SLOTS)), np.zeros((n, SLOTS)), np.zeros(n)
    t2[old], c2[old], r2[old] = tot, cnt, reg
    t2[new] += part["total"].to_numpy()
    c2[new] += part["count"].to_numpy()
    r2[new] += part["registers"].to_numpy()
    have = np.zeros(n, dtype=bool)
    have[old] = True
    d2, p2 = np.full(n, -np.inf), np.zeros((n, SLOTS))
    d2[old], p2[old] = top_day, top
    pd, cur = part["top_day"].to_numpy(), d2[new]
    with np.errstate(invalid="ignore"):
        wins = ~have[new] | (pd > cur) | (np.isnan(pd) & ~np.isnan(cur))
    d2[new[wins]] = pd[wins]
    p2[new[wins]] = part["top"].to_numpy()[wins]
    lv2, tl2 = np.zeros(n), np.full(n, -np.inf)
    lv2[old], tl2[old] = level, top_level
    lv2[new] += part["level"].to_numpy()
    tl2[new] = np.maximum(tl2[new], part["top_level"].to_numpy())
    return union.drop("_i"), t2, c2, r2, d2, p2, lv2, tl2


def combine_profiles(partials: Iterable[pl.DataFrame], composition: bool = True) -> pl.DataFrame:
    """Sum the shards' partials; P = total / count per slot (null where no register contributed),
    the largest register of a segment-day capped (tasks/domain/robust_profile.py); with
    ``composition``, each segment-day scaled by :func:`composition_factors`."""
    total = combine_partials(partials)
    tot, cnt = trimmed_totals(total), total["count"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cnt > 0, tot / np.where(cnt > 0, cnt, 1.0), np.nan)
    if composition:
        mean = mean * composition_factors(total)[:, None]
    return total.select(
        "segment",
        "read_date",
        slot_arrays("profile", mean).arr.to_list().list.eval(pl.element().fill_nan(None)),
        pl.col("registers").cast(pl.UInt32),
    )


def composition_factors(total: pl.DataFrame) -> np.ndarray:
    """Per row (segment, day) of combined partials: L̄ / (mean level of the registers present that
    day), L̄ the segment's mean level over all its register-days (docs/METHOD.md, "Segment
    profiles: who reports"). The plain mean per register moves with which registers report: a
    large business register missing for a day takes its share out of its segment's mean, and its
    own estimate for that day (s_r × P) comes out low by that share. Scaled by the factor, P is the
    segment's shape at one fixed register size, whoever reported. The largest level of a
    segment-day is capped like its largest day (tasks/domain/robust_profile.py): at TRIM_FACTOR ×
    the others' mean level, so a register misconfigured by a multiplier cannot set the factor;
    parents take the sum of their children's capped levels. 1 where nothing reported, and exactly
    1 where the factor is within 1e-12 of it (a segment whose registers all report every day)."""
    n = total.height
    if n == 0:
        return np.ones(0)
    level = trimmed_levels(total)
    nreg = total["registers"].to_numpy()
    seg = total["segment"].to_numpy()
    codes = pl.Series(seg).rank("dense").cast(pl.Int64).to_numpy() - 1
    lbar_num = np.bincount(codes, weights=level)
    lbar_den = np.bincount(codes, weights=nreg)
    with np.errstate(invalid="ignore", divide="ignore"):
        lbar = np.where(lbar_den > 0, lbar_num / np.where(lbar_den > 0, lbar_den, 1.0), 0.0)[codes]
        f = np.where(
            (level > 0) & (nreg > 0) & (lbar > 0), lbar * nreg / np.where(level > 0, level, 1.0), 1.0
        )
    f[np.abs(f - 1.0) < 1e-12] = 1.0
    return f


def trimmed_levels(total: pl.DataFrame) -> np.ndarray:
    """The rows' level sums with each segment-day's largest level capped at TRIM_FACTOR × the
    others' mean level, as ``trimmed_totals`` caps the largest day (the same rule, one value per
    row); a parent's less its children's excess."""
    level, top = total["level"].to_numpy(), total["top_level"].to_numpy()
    return trim_largest(total, level[:, None], top, top[:, None])[:, 0]
