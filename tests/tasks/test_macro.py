"""Macro profiles: M = daily total of P; gas shape fitted from read pairs, with fallback."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from tasks.domain.macro import (
    electric_heating,
    gas_shape,
    macro_profile,
    smooth_heating_index,
    weather_factors,
)

D0 = dt.date(2025, 1, 1)


def _h0(d: dt.date) -> float:
    """h_θ for θ = 0: max(0, cos(2π(doy − 196)/365.25))."""
    doy = d.timetuple().tm_yday
    return max(0.0, math.cos(2 * math.pi * (doy - 196) / 365.25))


def test_macro_is_daily_total_of_the_profile() -> None:
    # P = 0.5 kWh in every half hour -> M = 48 × 0.5 = 24; base = 24, W = 0
    fixed = pl.DataFrame({"segment": ["S"], "read_date": [D0], "profile": [[0.5] * 48]})
    m = macro_profile(fixed).row(0, named=True)
    assert (m["daily"], m["base"], m["w"]) == pytest.approx((24.0, 24.0, 0.0))


def test_gas_shape_recovers_threshold_heating_and_falls_back_without_pairs() -> None:
    # 12 VIC registers of different sizes k (1..12) truly use k·(1 + 2·h_0(day)) MJ/day; each is
    # read every 60 days over a year (6 pairs, 72 pairs >= 30; a read closes its day, SPEC §4.3, so
    # the pair (start, end) holds the days start + 1 … end). Normalising each pair's rate by
    # its register's mean removes k, so the θ = 0 driver fits exactly: b / a = 2, mse = 0.
    # NSW has no pairs -> FALLBACK (θ = −1, a = 1, b = 2).
    rows = []
    for k in range(1, 13):
        for p in range(6):
            start = D0 + dt.timedelta(days=60 * p + k)
            days = [start + dt.timedelta(days=i + 1) for i in range(60)]
            rows.append(
                {
                    "meter_register_id": k,
                    "jurisdiction": "VIC",
                    "start": start,
                    "end": start + dt.timedelta(days=60),
                    "days": 60,
                    "consumption": sum(k * (1 + 2 * _h0(d)) for d in days),
                }  # fmt: skip
            )
    macro, fit = gas_shape(pl.DataFrame(rows), ["VIC", "NSW"], D0, dt.date(2025, 12, 31))
    vic = fit.filter(pl.col("jurisdiction") == "VIC").row(0, named=True)
    assert vic["driver"] == "THETA=+0.0" and vic["source"] == "FIT"
    assert vic["b"] / vic["a"] == pytest.approx(2.0, rel=1e-6)
    nsw = fit.filter(pl.col("jurisdiction") == "NSW").row(0, named=True)
    assert (nsw["source"], nsw["driver"], nsw["a"], nsw["b"]) == ("FALLBACK", "THETA=-1.0", 1.0, 2.0)
    # the VIC shape: a mid-January day (no heating) is the base, mid-July three times it
    v = macro.filter(pl.col("jurisdiction") == "VIC")
    jan = v.filter(pl.col("read_date") == dt.date(2025, 1, 15))["daily"].item()
    jul = v.filter(pl.col("read_date") == dt.date(2025, 7, 15))["daily"].item()
    assert jul / jan == pytest.approx(1 + 2 * _h0(dt.date(2025, 7, 15)), rel=1e-6)


def test_smooth_heating_index_is_expected_degree_days_under_normal_noise() -> None:
    # θ = 0, s = 0.5. Mid-July (doy 196, c = 1): 1 by scaling. A quarter year later (c = 0):
    # z = 0, E = s·φ(0) = 0.5 × 0.398942 = 0.199471; at c = 1, z = 2:
    # E = 0.5 × (2 × Φ(2) + φ(2)) = 0.5 × (2 × 0.977250 + 0.053991) = 1.004246 -> 0.198628.
    doy = np.array([196.0, 196.0 + 365.25 / 4])
    assert smooth_heating_index(0.0, 0.5, doy) == pytest.approx([1.0, 0.198628], abs=2e-6)
    # a tiny spread is the threshold index h_0 = max(0, c): c = cos(60°) = 0.5 -> 0.5
    assert smooth_heating_index(0.0, 0.01, np.array([196.0 + 365.25 / 6]))[0] == pytest.approx(0.5, abs=1e-4)


def _shapes() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unit-sum intraday shapes of 48 intervals: weekday and weekend base, heating (all day with
    morning and evening peaks), cooling (afternoon only, ~0 at night, like real air conditioning)."""
    t = (np.arange(48) + 0.5) / 2

    def g(mu: float, sd: float) -> np.ndarray:
        return np.exp(-0.5 * (((t - mu + 12) % 24 - 12) / sd) ** 2)

    def unit(v: np.ndarray) -> np.ndarray:
        return v / v.sum()

    return (
        unit(0.4 + g(8, 1) + 1.5 * g(19, 2)),
        unit(0.5 + g(10, 2) + g(19, 2)),
        unit(0.2 + 0.5 * g(7, 1.5) + g(20, 2.5)),
        unit(g(16, 3)),
    )


def _population(
    days: list[dt.date],
    heat: np.ndarray,
    cool: np.ndarray,
    segment: str = "RES|VIC|CONSUMPTION",
    base: float = 20.0,
) -> pl.DataFrame:
    """A segment's day profiles: base kWh (0.9 of it at weekends) + heat·H + cool·C, exactly."""
    bwd, bwe, h_shape, c_shape = _shapes()
    weekend = np.array([d.weekday() >= 5 for d in days])
    x = np.where(weekend, 0.9 * base, base)[:, None] * np.where(weekend[:, None], bwe, bwd)
    x = x + heat[:, None] * h_shape + cool[:, None] * c_shape
    return pl.DataFrame({"segment": segment, "read_date": days, "profile": x.tolist(), "source": "OWN"})


def test_electric_heating_reads_each_days_heating_from_the_shape_of_its_profile() -> None:
    # A year of VIC days whose class profiles are exactly base + heat·H + cool·C (shapes above,
    # unknown to the decomposition): heat = 8·max(0, s + 0.3·w), cool = 6·max(0, −s − 0.3·w − 0.2)
    # with s the annual cosine (1 mid-July) and w = sin(0.7·day) a "weather" no annual curve
    # follows. RES has base 20 and that heat; BUS base 60 and three times the heat and cooling.
    # Each class's coefficients are divided by their mean and averaged, then scaled to peak 1:
    # h = heat / max heat, checked to 0.01 (alternating least squares stops short of exact:
    # measured 0.003). Day 200 is filled from another day (source not OWN) and left out; the
    # parent profile (flat here) is not used while class segments decompose; generation neither.
    days = [D0 + dt.timedelta(days=i) for i in range(365)]
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    s = np.cos(2 * np.pi * (doy - 196) / 365.25)
    w = np.sin(np.arange(365) * 0.7)
    heat, cool = 8 * np.clip(s + 0.3 * w, 0, None), 6 * np.clip(-s - 0.3 * w - 0.2, 0, None)
    filled = pl.when(pl.col("read_date") == days[200]).then(pl.lit("SAME_DAY_TYPE")).otherwise(pl.lit("OWN"))
    flat = {"read_date": days, "profile": [[9.0] * 48] * 365, "source": "OWN"}
    fixed = pl.concat(
        [
            _population(days, heat, cool).with_columns(source=filled),
            _population(days, 3 * heat, 3 * cool, "BUS|VIC|CONSUMPTION", 60.0).with_columns(source=filled),
            pl.DataFrame({"segment": "*|VIC|CONSUMPTION", **flat}),
            pl.DataFrame({"segment": "RES|VIC|GENERATION", **flat}),
        ]
    )
    h = electric_heating(fixed)
    assert h["jurisdiction"].unique().to_list() == ["VIC"] and h.height == 364
    assert days[200] not in h["read_date"].to_list()
    kept = np.delete(heat, 200)
    assert np.abs(h["h"].to_numpy() - kept / kept.max()).max() < 0.01
    # without class segments the parent profile is decomposed
    parent = _population(days, heat, cool, "*|VIC|CONSUMPTION")
    assert np.abs(electric_heating(parent)["h"].to_numpy() - heat / heat.max()).max() < 0.01
    # too few days (under MIN_DECOMPOSE_DAYS = 60) or a flat profile: no driver for the jurisdiction
    assert electric_heating(parent.filter(pl.col("read_date") < D0 + dt.timedelta(days=50))).height == 0
    assert electric_heating(pl.DataFrame({"segment": "RES|VIC|CONSUMPTION", **flat})).height == 0


def test_gas_shape_follows_the_electricity_populations_actual_cold() -> None:
    # the electricity population's heating in VIC is a step "weather" no cosine curve follows:
    # e = 1 on days of year 150-249, 0.5 on 100-149 and 250-279, else 0; its profile is
    # base + 4·e·H + cooling in the summer (shapes of _shapes). 12 gas registers use
    # k·(1 + 2·e(day)) MJ/day, 5 pairs of 60 days each: the ELECTRIC_HEATING driver (h ≈ e, the
    # decomposition of the day profiles) fits almost exactly (b / a ≈ 2) and wins over the
    # climatological indices.
    year = [D0 + dt.timedelta(days=i) for i in range(365)]

    def e(d: dt.date) -> float:
        doy = d.timetuple().tm_yday
        return 1.0 if 150 <= doy < 250 else 0.5 if 100 <= doy < 150 or 250 <= doy < 280 else 0.0

    def c(d: dt.date) -> float:
        doy = d.timetuple().tm_yday
        return 3.0 if doy < 60 or doy >= 335 else 0.0

    fixed = _population(year, np.array([4 * e(d) for d in year]), np.array([c(d) for d in year]))
    rows = []
    for k in range(1, 13):
        for p in range(5):
            start = D0 + dt.timedelta(days=60 * p + k)
            rows.append(
                {"meter_register_id": k, "jurisdiction": "VIC", "start": start, "end": start + dt.timedelta(days=60),
                 "days": 60, "consumption": sum(k * (1 + 2 * e(start + dt.timedelta(days=i + 1))) for i in range(60))}
            )  # fmt: skip
    macro, fit = gas_shape(pl.DataFrame(rows), ["VIC"], D0, dt.date(2025, 12, 31), fixed=fixed, weather=False)
    vic = fit.row(0, named=True)
    assert vic["driver"] == "ELECTRIC_HEATING" and vic["b"] / vic["a"] == pytest.approx(2.0, rel=0.02)
    # the shape follows e day by day: a day with e = 1 is three times a day with e = 0
    daily = dict(zip(macro["read_date"].to_list(), macro["daily"].to_list(), strict=True))
    hot, cold = next(d for d in year if e(d) == 0.0), next(d for d in year if e(d) == 1.0)
    assert daily[cold] / daily[hot] == pytest.approx(3.0, rel=0.02)


def test_weather_factors_find_a_colder_month_from_the_gas_pairs() -> None:
    # VIC, January and February 2025. Average-year heating index h = 1 on days 1-14 of each
    # month, 0.2 after; February was twice as cold: two registers truly use k·(1 + g·h) MJ/day
    # with g = 1 in January and 2 in February, read every 7 days (one pair spans both months).
    # Within a month the pairs' mean h differ, which separates a register's base from its
    # heating, so g is found up to a common scale (rescaled so that Σ g·H is unchanged); the
    # ridge (1% of each month's weight) pulls it slightly towards 1: February / January ≈ 2.
    days = [D0 + dt.timedelta(days=i) for i in range(59)]

    def h(d: dt.date) -> float:
        return 1.0 if d.day <= 14 else 0.2

    hfull = pl.DataFrame({"jurisdiction": "VIC", "read_date": days, "h": [h(d) for d in days]})
    fits = pl.DataFrame({"jurisdiction": ["VIC"], "a": [1.0], "b": [1.0]})
    rows = []
    for k in (1.0, 3.0):
        for s in range(0, 56, 7):
            span = [D0 + dt.timedelta(days=s + i) for i in range(7)]
            use = sum(k * (1 + (2.0 if d.month == 2 else 1.0) * h(d)) for d in span)
            # the pair's reads close the day before the span and its last day (SPEC §4.3)
            rows.append({"meter_register_id": int(k), "jurisdiction": "VIC", "start": span[0] - dt.timedelta(days=1),
                         "end": span[-1], "days": 7, "consumption": use})  # fmt: skip
    g = weather_factors(pl.DataFrame(rows), hfull, fits).sort("period")
    jan, feb = g["g"].to_list()
    assert feb / jan == pytest.approx(2.0, rel=0.02)
    hj, hf = sum(h(d) for d in days if d.month == 1), sum(h(d) for d in days if d.month == 2)
    assert hj * jan + hf * feb == pytest.approx(hj + hf)  # Σ g·H over the range is unchanged


def test_gas_shape_is_driven_by_measured_degree_days_when_given() -> None:
    # VIC temperatures T(d) = 14 + 7·cos(2π(d − 15)/365) + 3·sin(0.6·d) over 2025 (a weather no
    # climatological curve follows); 12 registers truly use k·(1 + 2·h(d)) MJ/day with
    # h = HDD_17 / max HDD_17 (HDD_17 = max(0, 17 − T)), read every 60 days (the pair (start, end)
    # holds days start + 1 … end). Among the candidates the HDD=17 driver fits exactly (mse 0):
    # it is chosen with b / a = 2, and the shape follows the measured weather day by day.
    days = [D0 + dt.timedelta(days=i) for i in range(365)]
    temps = [14 + 7 * math.cos(2 * math.pi * (i - 15) / 365) + 3 * math.sin(0.6 * i) for i in range(365)]
    hdd = [max(0.0, 17 - t) for t in temps]
    h = {d: x / max(hdd) for d, x in zip(days, hdd, strict=True)}
    rows = []
    for k in range(1, 13):
        for p in range(5):
            start = D0 + dt.timedelta(days=60 * p + k)
            rows.append(
                {"meter_register_id": k, "jurisdiction": "VIC", "start": start, "end": start + dt.timedelta(days=60),
                 "days": 60, "consumption": sum(k * (1 + 2 * h[start + dt.timedelta(days=i + 1)]) for i in range(60))}
            )  # fmt: skip
    temperature = pl.DataFrame({"jurisdiction": "VIC", "read_date": days, "temp": temps})
    macro, fit = gas_shape(pl.DataFrame(rows), ["VIC"], D0, dt.date(2025, 12, 31), temperature=temperature)
    vic = fit.row(0, named=True)
    assert vic["driver"] == "HDD=17" and vic["b"] / vic["a"] == pytest.approx(2.0, rel=1e-4)
    daily = dict(zip(macro["read_date"].to_list(), macro["daily"].to_list(), strict=True))
    warm = next(d for d in days if h[d] == 0.0)
    cold = max(days, key=lambda d: h[d])
    assert daily[cold] / daily[warm] == pytest.approx(3.0, rel=1e-4)


def test_fit_drivers_fits_each_driver_on_the_pairs_by_hand() -> None:
    """Two drivers, fitted one at a time (issue 14: never pairs × drivers rows at once).

    VIC, 1–10 Jan 2026. Driver A: h = 1 on 1–5 Jan, 0 on 6–10 Jan; driver B: h = 0.5 every day.
    Register 1: pairs 31 Dec → 5 Jan (covers 1–5 Jan, 5 days, 50 MJ) and 5 → 10 Jan (6–10 Jan,
    5 days, 25 MJ): its mean 75 / 10 = 7.5 a day, so y = 50/5/7.5 = 4/3 and 25/5/7.5 = 2/3, weight
    5 each. A: x = 1 and 0, so b = (4/3 − 2/3) / (1 − 0) = 2/3, a = 2/3, mse 0 (a perfect fit).
    B: x = 0.5 for both, det = s·Σwx² − (Σwx)² = 10 · 2.5 − 5² = 0: no fit (_good false). Level
    75 / 10 = 7.5 for both; 2 pairs (< MIN_GAS_PAIRS, so A is not _good either). Register 2 (NSW)
    has one pair only and register 3 a zero-day pair: left out, so NSW has no row."""
    from tasks.domain.macro import _fit_drivers

    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(10)]
    rows = []
    for jur in ("VIC", "NSW"):
        for driver, hs in (("A", [1.0] * 5 + [0.0] * 5), ("B", [0.5] * 10)):
            cum = 0.0
            for d, h in zip(days, hs, strict=True):
                cum += h
                rows.append({"driver": driver, "jurisdiction": jur, "read_date": d, "h": h, "cum_h": cum})
    drivers = pl.DataFrame(rows)
    pairs = pl.DataFrame(
        {
            "meter_register_id": [1, 1, 2, 3, 3],
            "jurisdiction": ["VIC", "VIC", "NSW", "NSW", "NSW"],
            "start": [dt.date(2025, 12, 31), dt.date(2026, 1, 5), dt.date(2025, 12, 31), dt.date(2026, 1, 5),
                      dt.date(2026, 1, 5)],
            "end": [dt.date(2026, 1, 5), dt.date(2026, 1, 10), dt.date(2026, 1, 10), dt.date(2026, 1, 5),
                    dt.date(2026, 1, 5)],
            "days": [5, 5, 10, 0, 0],
            "consumption": [50.0, 25.0, 30.0, 0.0, 0.0],
        }
    )  # fmt: skip
    fit = {r["driver"]: r for r in _fit_drivers(pairs, drivers).to_dicts()}
    assert set(fit) == {"A", "B"}
    assert {r["jurisdiction"] for r in fit.values()} == {"VIC"}
    a = fit["A"]
    assert a["a"] == pytest.approx(2 / 3) and a["b"] == pytest.approx(2 / 3)
    assert a["mse"] == pytest.approx(0.0, abs=1e-12)
    assert a["level"] == pytest.approx(7.5) and a["pairs"] == 2 and a["_good"] is False
    assert fit["B"]["level"] == pytest.approx(7.5) and fit["B"]["_good"] is False
