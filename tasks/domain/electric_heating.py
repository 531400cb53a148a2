"""The electricity interval population's heating per day (:mod:`tasks.domain.macro`'s
ELECTRIC_HEATING gas driver): each day's profile decomposed into a base load, a heating and a cooling
shape by least squares, so that the heating of every day up to the last interval read is measured,
not a climatological curve."""

from __future__ import annotations

import numpy as np
import polars as pl

from tasks.domain.sums import group_sums

HEATING_PEAK_DOY = 196
# decomposition of the electricity day profiles into base, heating and cooling (electric_heating)
MILD_QUANTILE = 0.15  # the mildest days per day type give the first base shape
SEASON_EDGE = 0.8  # |cos| of the annual cycle beyond which days give the first heating / cooling shape
DECOMPOSE_ITERATIONS = 60
MIN_DECOMPOSE_DAYS = 60


def _solve_nonnegative_weather(shapes: np.ndarray, wk: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Per day d, least squares of the day's profile on the shapes of its day type
    ``shapes[wk[d]]`` (base, heating, cooling; ``r[d]`` = the shapes · the profile) with the
    weather coefficients a[1], a[2] ≥ 0: a negative one is dropped (set to 0) and the day solved
    again without it (an active set of at most two steps); the base coefficient a[0] is clipped
    at 0. The normal matrices depend on the day type only: their inverses for each set of active
    coefficients (2 day types × 4 sets) are computed once and gathered per day."""
    g = np.einsum("tik,tjk->tij", shapes, shapes)
    inv = np.zeros((2, 4, 3, 3))
    for t in range(2):
        for p in range(4):  # p = 2·(heating active) + (cooling active)
            idx = np.flatnonzero([True, p >= 2, p % 2 == 1])
            inv[t, p][np.ix_(idx, idx)] = np.linalg.inv(g[t][np.ix_(idx, idx)])
    pattern = np.full(len(wk), 3)
    for _ in range(3):
        a = np.einsum("dij,dj->di", inv[wk, pattern], r)
        new = pattern & ~(2 * (a[:, 1] < 0) + (a[:, 2] < 0))
        if (new == pattern).all():
            break
        pattern = new
    return np.clip(a, 0.0, None)


def decompose_day_profiles(x: np.ndarray, weekend: np.ndarray, doy: np.ndarray) -> np.ndarray | None:
    """Heating coefficient per day of one population's day profiles ``x`` (days × intervals), or
    None when the days do not support the decomposition.

    Model: x_d = a_d·B_{day type} + h_d·H + c_d·C — a base load with one intraday shape per day
    type (weekday / weekend), a heating shape and a cooling shape, all ≥ 0 and of unit sum, so
    a_d, h_d and c_d are the day's kWh of each part; h_d, c_d ≥ 0. The shapes come from the data:
    B from the mildest days (the ``MILD_QUANTILE`` of daily totals per day type), H and C from
    the cold-season and warm-season days (|cos| of the annual cycle beyond ``SEASON_EDGE``) less
    the most base each day holds; then ``DECOMPOSE_ITERATIONS`` rounds of alternating least
    squares (coefficients per day given the shapes, then the shapes given the coefficients). A
    share of H in B or C would bend h_d; the days without heating (h_d clipped at 0) keep H out
    of them. h_d is the population's heating per register on day d, ∝ its heating degree days
    (per jurisdiction, classes averaged: correlation 0.995–0.998 with the generator's, bench/results/accuracy-history-issue4.md)."""
    n, k = x.shape
    wk = weekend.astype(np.int64)
    season = np.cos(2 * np.pi * (doy.astype(np.float64) - HEATING_PEAK_DOY) / 365.25)
    cold, warm = season > SEASON_EDGE, season < -SEASON_EDGE
    counts = np.bincount(wk, minlength=2)
    if n < MIN_DECOMPOSE_DAYS or counts.min() < 7 or cold.sum() < 7 or warm.sum() < 7:
        return None
    total = x.sum(axis=1)
    base = np.zeros((2, k))
    for t in (0, 1):
        idx = np.flatnonzero(wk == t)
        mild = idx[total[idx] <= np.quantile(total[idx], MILD_QUANTILE)]
        base[t] = x[mild].mean(axis=0)
    if (base.sum(axis=1) <= 0).any() or (base <= 0).any():
        return None
    base /= base.sum(axis=1, keepdims=True)

    def excess_shape(days: np.ndarray) -> np.ndarray:
        b = base[wk[days]]
        s = (x[days] / b).min(axis=1, keepdims=True)  # the most base each day holds
        e = np.clip((x[days] - s * b).mean(axis=0), 0.0, None)
        return e / e.sum() if e.sum() > 0 else np.full(k, 1.0 / k)

    heat, cool = excess_shape(np.flatnonzero(cold)), excess_shape(np.flatnonzero(warm))
    try:
        return _alternate(x, wk, base, heat, cool)
    except np.linalg.LinAlgError:  # shapes that cannot be told apart (a flat profile)
        return None


def _alternate(
    x: np.ndarray, wk: np.ndarray, base: np.ndarray, heat: np.ndarray, cool: np.ndarray
) -> np.ndarray:
    """The alternating least squares of :func:`decompose_day_profiles`: the heating coefficients."""
    n, k = x.shape
    a = np.zeros((n, 3))
    for _ in range(DECOMPOSE_ITERATIONS):
        shapes = np.stack([np.stack([base[t], heat, cool]) for t in range(2)])  # day type × 3 × k
        r = np.column_stack([(x * base[wk]).sum(axis=1), x @ heat, x @ cool])
        a = _solve_nonnegative_weather(shapes, wk, r)
        f = np.column_stack([a[:, 0] * (wk == 0), a[:, 0] * (wk == 1), a[:, 1], a[:, 2]])
        shapes = np.clip(np.linalg.solve(f.T @ f + 1e-12 * np.eye(4), f.T @ x), 1e-12, None)
        shapes /= shapes.sum(axis=1, keepdims=True)
        base, heat, cool = shapes[:2], shapes[2], shapes[3]
    return a[:, 1]


def _segment_heating(f: pl.DataFrame) -> pl.DataFrame | None:
    """read_date, h of one segment's day profiles (:func:`decompose_day_profiles`), or None."""
    f = f.filter(pl.col("_k") == pl.col("_k").max()).sort("read_date")
    x = np.array(f["profile"].to_list(), dtype=np.float64).reshape(f.height, -1)
    ok = np.isfinite(x).all(axis=1)
    f, x = f.filter(pl.Series(ok)), x[ok]
    if f.height == 0:
        return None
    h = decompose_day_profiles(
        x, (f["read_date"].dt.weekday() >= 6).to_numpy(), f["read_date"].dt.ordinal_day().to_numpy()
    )
    if h is None or h.mean() <= 0:
        return None
    return f.select("read_date").with_columns(h=pl.Series(h))


def electric_heating(fixed: pl.DataFrame) -> pl.DataFrame:
    """The electricity interval population's heating per jurisdiction and day (jurisdiction,
    read_date, h), scaled to peak 1: :func:`decompose_day_profiles` of each customer-class
    consumption segment ``C|J|CONSUMPTION[|tni]`` on its days with data of their own (``source``
    OWN: a day filled from another day would carry that day's weather), each divided by its mean
    and averaged per jurisdiction and day. Heating, cooling and the base load have different
    intraday shapes, so each day's heating is read from the day's whole profile, up to the last
    day of interval data. Per class, because a class's base load has one shape while the parent
    profile's base shape moves with its mix of residential and business registers; divided by
    the mean, because a class's heating per register drifts as registers come and go and the
    two classes' heating differ tenfold (each class then counts as one estimate of the degree
    days). A jurisdiction without a class segment that supports the decomposition uses its
    parent profile ``*|J|CONSUMPTION``; one without either is left out."""
    parts = pl.col("segment").str.split("|")
    cons = fixed.filter(
        (parts.list.get(2, null_on_oob=True) == "CONSUMPTION")
        & ((pl.col("source") == "OWN") if "source" in fixed.columns else pl.lit(True))
    ).with_columns(
        jurisdiction=parts.list.get(1),
        _parent=parts.list.get(0) == "*",
        _k=pl.col("profile").list.len(),
    )
    out = []
    for jur in sorted(cons["jurisdiction"].unique().to_list()):
        found = []
        for parent in (False, True):
            segs = cons.filter((pl.col("jurisdiction") == jur) & (pl.col("_parent") == parent))
            for seg in sorted(segs["segment"].unique().to_list()):
                h = _segment_heating(segs.filter(pl.col("segment") == seg))
                if h is not None:
                    found.append(h.with_columns(h=pl.col("h") / pl.col("h").mean(), _s=pl.lit(seg)))
            if found:
                break
        if found:
            mean = group_sums(
                pl.concat(found).with_columns(_n=pl.lit(1.0)),
                ["read_date"],
                ["_s"],
                h=pl.col("h"),
                n=pl.col("_n"),
            )
            out.append(
                mean.select(
                    pl.lit(jur).alias("jurisdiction"), "read_date", (pl.col("h") / pl.col("n")).alias("h")
                ).with_columns(h=pl.col("h") / pl.col("h").max())
            )
    if not out:
        return pl.DataFrame(schema={"jurisdiction": pl.Utf8, "read_date": pl.Date, "h": pl.Float64})
    return pl.concat(out).sort("jurisdiction", "read_date")
