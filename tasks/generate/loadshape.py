"""Consumption, generation and controlled load: daily totals and interval values, vectorised.

Weather: per jurisdiction a smooth annual temperature cycle plus correlated day-to-day noise
(QLD warm, so summer cooling dominates; VIC/SA cold winters and hot summer spells). Daily
consumption of a register = base × day-type factor + heat × HDD(18 °C) + cool × CDD(21 °C), with
each site's own base, heat and cool (portfolio.py), times day noise. Gas is base + heat × HDD
(strongly winter). Solar = capacity × yield(season) × clearness(jurisdiction, day). Controlled
load = a nightly hot-water block that grows in winter. Interval values split the day with shapes
evaluated at interval midpoints in local standard time: residential morning and evening peaks
(broader at weekends), business daytime plateau, cooling in the afternoon, heating morning and
evening, solar a bell between sunrise and sunset, controlled load 22:00–06:00; each interval then
gets its own noise. Values are rounded to 0.001 (the NEM12 resolution) and the day's truth is the
sum of the rounded values, so the files and the truth agree exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl

from tasks.generate.calendar import Calendar, rng_for
from tasks.generate.nem12_out import quantise
from tasks.generate.reference import JURISDICTIONS, LOCAL_OFFSET_HOURS
from tasks.generate.variant import Variant, bdew_dynamisation

# temperature cycle: mean, amplitude (warmest mid-January)
_CLIMATE = {"NSW": (18.0, 5.5), "VIC": (15.0, 5.5), "QLD": (22.5, 4.5), "SA": (17.0, 6.5)}


def weather(cal: Calendar, seed: int, variant: Variant | None = None) -> dict[str, np.ndarray]:
    """Per jurisdiction (rows in JURISDICTIONS order) and day: temperature, HDD, CDD (at the
    variant's mean balance points), solar clearness. The day-to-day noise is regional: every site of
    a jurisdiction sees the same weather; a variant may add heat waves and cold snaps (shocks)."""
    v = variant or Variant()
    rng = rng_for(seed, "weather")
    doy = cal.day_of_year
    n = cal.n_days
    temps, clear = [], []
    kernel = np.exp(-np.arange(7) / 2.0)
    for j in JURISDICTIONS:
        mean, amp = _CLIMATE[j]
        noise = np.convolve(rng.normal(0, 1, n + 6), kernel / np.sqrt((kernel**2).sum()), mode="valid")[:n]
        temps.append(
            mean + v.temp_shift + amp * np.cos(2 * np.pi * (doy - 15) / 365.25) + v.temp_noise * noise
        )
        clear.append(np.clip(rng.beta(6, 1.6, n), 0.1, 1.0))
    t = np.vstack(temps)
    if v.shock_rate > 0:
        sr = rng_for(seed, "weather-shocks")
        for j in range(len(JURISDICTIONS)):
            k = sr.poisson(v.shock_rate * n / 365.25)
            for start, sign in zip(sr.integers(0, n, k), sr.choice([-1.0, 1.0], k), strict=True):
                t[j, start : start + v.shock_days] += sign * v.shock_size
    return {
        "temp": t,
        "hdd": np.maximum(v.heat_base - t, 0.0),
        "cdd": np.maximum(t - v.cool_base, 0.0),
        "clear": np.vstack(clear),
    }


def _gauss(t: np.ndarray, mu: float, sd: float) -> np.ndarray:
    d = (t - mu + 12.0) % 24.0 - 12.0  # circular distance in hours
    return np.exp(-0.5 * (d / sd) ** 2)


def _plateau(t: np.ndarray, on: float, off: float, soft: float = 0.6) -> np.ndarray:
    up = 1 / (1 + np.exp(-((t - on + 12) % 24 - 12) / soft))
    down = 1 / (1 + np.exp(((t - off + 12) % 24 - 12) / soft))
    return up * down if on < off else np.maximum(up, down)


def _norm(s: np.ndarray) -> np.ndarray:
    return s / s.sum(axis=-1, keepdims=True)


def day_shapes(k: int) -> dict[str, np.ndarray]:
    """Normalised intraday shapes for ``k`` intervals a day, per jurisdiction (local time offset)."""
    out: dict[str, list[np.ndarray]] = {"base": [], "cool": [], "heat": [], "controlled": []}
    for j in JURISDICTIONS:
        t = ((np.arange(k) + 0.5) * 24.0 / k + LOCAL_OFFSET_HOURS[j]) % 24.0
        res_wd = 0.35 + 0.9 * _gauss(t, 7.5, 1.0) + 1.7 * _gauss(t, 19.0, 1.8) + 0.25 * _gauss(t, 13, 3)
        res_we = 0.35 + 0.6 * _gauss(t, 9.5, 1.8) + 1.5 * _gauss(t, 19.0, 2.0) + 0.5 * _gauss(t, 13, 3)
        bus_wd = 0.2 + 1.6 * _plateau(t, 7.5, 18.0)
        bus_we = 0.3 + 0.15 * _plateau(t, 8.0, 16.0)
        # [class RES=0/BUS=1][weekend 0/1]
        out["base"].append(_norm(np.array([[res_wd, res_we], [bus_wd, bus_we]])))
        out["cool"].append(_norm(_gauss(t, 16.5, 3.0)))
        out["heat"].append(_norm(0.2 + 0.5 * _gauss(t, 7.5, 1.5) + _gauss(t, 19.5, 2.5)))
        out["controlled"].append(_norm(0.02 + _plateau(t, 22.0, 6.0, 0.3)))
    return {name: np.array(v) for name, v in out.items()}


def solar_shapes(cal: Calendar, k: int) -> np.ndarray:
    """(jurisdiction, day, k) normalised solar bell: cos^1.5 between sunrise and sunset."""
    doy = cal.day_of_year
    daylen = 12.0 + 1.8 * np.cos(2 * np.pi * (doy - 355) / 365.25)
    shapes = []
    for j in JURISDICTIONS:
        t = ((np.arange(k) + 0.5) * 24.0 / k + LOCAL_OFFSET_HOURS[j]) % 24.0
        x = (t[None, :] - 12.3) / daylen[:, None]
        shapes.append(_norm(np.clip(np.cos(np.pi * x), 0.0, None) ** 1.5 + 1e-9 * (np.abs(x) < 0.5)))
    return np.array(shapes)


@lru_cache(maxsize=1)
def _normal_levels() -> np.ndarray:
    """256 equiprobable levels of a standard normal (bin means of a large fixed sample)."""
    sample = np.sort(np.random.default_rng(0).standard_normal(256 * 4096))
    return sample.reshape(256, 4096).mean(axis=1)


def _jidx(regs: pl.DataFrame) -> np.ndarray:
    return (
        regs["jurisdiction"]
        .replace_strict({j: i for i, j in enumerate(JURISDICTIONS)}, return_dtype=pl.Int64)
        .to_numpy()
    )


def expected_daily(
    regs: pl.DataFrame, cal: Calendar, wx: dict[str, np.ndarray], variant: Variant | None = None
) -> dict[str, np.ndarray]:
    """Components (n, days) of each register's expected daily quantity: base, heat, cool parts.

    A variant may give each site its own balance points (heat_base / cool_base columns), a yearly
    growth of its base (drift) and a seasonal base (BDEW dynamisation)."""
    v = variant or Variant()
    j = _jidx(regs)
    weekend = cal.weekend[None, :]
    stream = regs["stream"].to_numpy()
    res = (regs["customer_class"].to_numpy() == "RES")[:, None]
    gas = (regs["service_type"].to_numpy() == "GAS")[:, None]
    factor = np.where(weekend, np.where(res, np.where(gas, 1.10, 1.08), v.business_weekend), 1.0)
    base = regs["base"].to_numpy()[:, None] * factor
    if v.drift_sd > 0 and "drift" in regs.columns:
        # years since a fixed day, so that every calendar (meter data, bills) sees the same growth
        years = ((cal.dates - np.datetime64("2026-01-01")).astype(np.int64) / 365.25)[None, :]
        base = base * (1.0 + regs["drift"].to_numpy()[:, None]) ** years
    if v.base_season == "bdew":
        base = base * bdew_dynamisation(cal.day_of_year)[None, :]
    if (v.heat_base_sd > 0 or v.cool_base_sd > 0) and "heat_base" in regs.columns:
        t = wx["temp"][j]
        hdd = np.maximum(regs["heat_base"].to_numpy()[:, None] - t, 0.0)
        cdd = np.maximum(t - regs["cool_base"].to_numpy()[:, None], 0.0)
    else:
        hdd, cdd = wx["hdd"][j], wx["cdd"][j]
    heat = regs["heat"].to_numpy()[:, None] * hdd
    cool = regs["cool"].to_numpy()[:, None] * cdd
    doy = cal.day_of_year[None, :]
    winter = np.cos(2 * np.pi * (doy - 196) / 365.25)
    ctl = regs["controlled_kwh"].to_numpy()[:, None] * (1 + 0.35 * winter)
    yield_kwh = (
        4.0
        + 1.5 * np.cos(2 * np.pi * (doy - 355) / 365.25)
        + 0.4 * (j == JURISDICTIONS.index("QLD"))[:, None]
    )
    sol = regs["solar_kw"].to_numpy()[:, None] * yield_kwh * wx["clear"][j]
    is_c, is_g = (stream == "CONTROLLED_LOAD")[:, None], (stream == "GENERATION")[:, None]
    zero = np.zeros_like(base)
    return {
        "base": np.where(is_c, ctl, np.where(is_g, sol, base)),
        "heat": np.where(is_c | is_g, zero, heat),
        "cool": np.where(is_c | is_g, zero, cool),
    }


def basic_daily(
    regs: pl.DataFrame,
    cal: Calendar,
    wx: dict[str, np.ndarray],
    seed: int,
    part: int = 0,
    variant: Variant | None = None,
) -> np.ndarray:
    """True daily quantity (n, days) of registers without interval data, rounded to 0.001."""
    v = variant or Variant()
    comp = expected_daily(regs, cal, wx, v)
    noise = rng_for(seed, "basic-daily", part).lognormal(0.0, v.basic_day_noise, comp["base"].shape)
    return np.round((comp["base"] + comp["heat"] + comp["cool"]) * noise, 3)


def interval_values(
    regs: pl.DataFrame,
    cal: Calendar,
    wx: dict[str, np.ndarray],
    k: int,
    seed: int,
    part: int,
    variant: Variant | None = None,
) -> np.ndarray:
    """True interval values of registers with ``k`` intervals a day: int32 thousandths, (n, days, k).

    Per (jurisdiction, class, stream) group and day type the day's values are one matrix product
    [base, cool, heat] × [shapes]; then each interval gets multiplicative noise.
    """
    v = variant or Variant()
    rng = rng_for(seed, "intervals", part)
    comp = expected_daily(regs, cal, wx, v)
    n, d = comp["base"].shape
    day_noise = rng.lognormal(0.0, v.interval_day_noise, (n, d))
    parts = np.stack(
        [comp["base"] * day_noise, comp["cool"] * day_noise, comp["heat"] * day_noise], axis=2
    ).astype(np.float32)
    shapes = day_shapes(k)
    solar = solar_shapes(cal, k).astype(np.float32)
    j = _jidx(regs)
    cls = (regs["customer_class"].to_numpy() == "BUS").astype(np.int64)
    stream = regs["stream"].to_numpy()
    weekend = cal.weekend
    out = np.empty((n, d, k), dtype=np.float32)
    group = j * 100 + cls * 10 + np.select([stream == "CONTROLLED_LOAD", stream == "GENERATION"], [1, 2], 0)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        jj, cc, ss = g // 100, g // 10 % 10, g % 10
        if ss == 2:
            out[rows] = parts[rows][:, :, :1] * solar[jj][None, :, :]
            continue
        for wk in (False, True):
            days = np.flatnonzero(weekend == wk)
            if ss == 1:
                m = np.stack([shapes["controlled"][jj], np.zeros(k), np.zeros(k)])
            else:
                m = np.stack([shapes["base"][jj, cc, int(wk)], shapes["cool"][jj], shapes["heat"][jj]])
            out[np.ix_(rows, days)] = parts[np.ix_(rows, days)] @ m.astype(np.float32)
    # interval noise: one random byte per interval → a normal quantile (256 levels) scaled by the
    # register's σ; the ×1000 (thousandths) and the +0.5 (round half up) are folded into the table
    sigma_idx = np.where(stream == "GENERATION", 0, np.where(cls == 1, 1, 2)).astype(np.int16)
    table = (
        np.maximum(1.0 + np.array([0.10, 0.12, 0.30])[:, None] * _normal_levels()[None, :], 0.05) * 1000.0
    ).astype(np.float32)
    idx = np.frombuffer(rng.bytes(n * d * k), dtype=np.uint8).reshape(n, d, k).astype(np.int16)
    idx += (sigma_idx * 256)[:, None, None]
    out *= table.ravel()[idx]
    del idx
    out += 0.5
    return quantise(out.astype(np.int32))
