"""Macro profiles: M = daily total of P; gas shape fitted from read pairs, with fallback."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from tasks.macro import gas_shape, macro_profile, night_heating, smooth_heating_index, weather_factors

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
    # read every 60 days over a year (6 pairs, 72 pairs >= 30). Normalising each pair's rate by
    # its register's mean removes k, so the θ = 0 driver fits exactly: b / a = 2, mse = 0.
    # NSW has no pairs -> FALLBACK (θ = −1, a = 1, b = 2).
    rows = []
    for k in range(1, 13):
        for p in range(6):
            start = D0 + dt.timedelta(days=60 * p + k)
            days = [start + dt.timedelta(days=i) for i in range(60)]
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


def test_night_heating_is_the_night_and_morning_excess_of_the_electricity_population() -> None:
    # *|VIC|CONSUMPTION on five weekdays, 1 kWh per interval plus e = 0, 1, 2, 3, 4 on the 18
    # intervals 00:00-09:00: x = 18·(1 + e) = 18, 36, 54, 72, 90; the 10th percentile is 18, so
    # h = (x - 18) / 72 = 0, 0.25, 0.5, 0.75, 1. Afternoon cooling (+5 on intervals 26-33 of day 1)
    # and other segments do not count.
    days = [dt.date(2025, 1, 6) + dt.timedelta(days=i) for i in range(5)]
    prof = [[1.0 + e] * 18 + [1.0] * 30 for e in range(5)]
    prof[0] = [1.0] * 26 + [6.0] * 8 + [1.0] * 14
    fixed = pl.DataFrame(
        {
            "segment": ["*|VIC|CONSUMPTION"] * 5 + ["BUS|VIC|CONSUMPTION"],
            "read_date": days + days[:1],
            "profile": prof + [[9.0] * 48],
        }  # fmt: skip
    )
    h = night_heating(fixed)
    assert h["jurisdiction"].to_list() == ["VIC"] * 5
    assert h["h"].to_list() == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])


def test_gas_shape_follows_the_electricity_populations_actual_cold() -> None:
    # the electricity night excess of VIC is a step "weather" no cosine curve follows: e = 1 on
    # days of year 150-249, 0.5 on 100-149 and 250-279, else 0 (0 on most days, so h = e).
    # 12 registers use k·(1 + 2·e(day)) MJ/day, 5 pairs of 60 days each: the ELECTRIC_NIGHT
    # driver fits exactly (mse 0, b / a = 2) and wins over the climatological indices.
    year = [D0 + dt.timedelta(days=i) for i in range(365)]

    def e(d: dt.date) -> float:
        doy = d.timetuple().tm_yday
        return 1.0 if 150 <= doy < 250 else 0.5 if 100 <= doy < 150 or 250 <= doy < 280 else 0.0

    fixed = pl.DataFrame(
        {
            "segment": ["*|VIC|CONSUMPTION"] * 365,
            "read_date": year,
            "profile": [[1.0 + e(d)] * 18 + [1.0] * 30 for d in year],
        }  # fmt: skip
    )
    rows = []
    for k in range(1, 13):
        for p in range(5):
            start = D0 + dt.timedelta(days=60 * p + k)
            rows.append(
                {"meter_register_id": k, "jurisdiction": "VIC", "start": start, "end": start + dt.timedelta(days=60),
                 "days": 60, "consumption": sum(k * (1 + 2 * e(start + dt.timedelta(days=i))) for i in range(60))}
            )  # fmt: skip
    macro, fit = gas_shape(pl.DataFrame(rows), ["VIC"], D0, dt.date(2025, 12, 31), fixed=fixed)
    vic = fit.row(0, named=True)
    assert vic["driver"] == "ELECTRIC_NIGHT" and vic["b"] / vic["a"] == pytest.approx(2.0, rel=1e-6)
    # the shape follows e day by day: a day with e = 1 is three times a day with e = 0
    daily = dict(zip(macro["read_date"].to_list(), macro["daily"].to_list(), strict=True))
    hot, cold = next(d for d in year if e(d) == 0.0), next(d for d in year if e(d) == 1.0)
    assert daily[cold] / daily[hot] == pytest.approx(3.0, rel=1e-6)


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
            rows.append({"meter_register_id": int(k), "jurisdiction": "VIC", "start": span[0],
                         "end": span[-1] + dt.timedelta(days=1), "days": 7, "consumption": use})  # fmt: skip
    g = weather_factors(pl.DataFrame(rows), hfull, fits).sort("period")
    jan, feb = g["g"].to_list()
    assert feb / jan == pytest.approx(2.0, rel=0.02)
    hj, hf = sum(h(d) for d in days if d.month == 1), sum(h(d) for d in days if d.month == 2)
    assert hj * jan + hf * feb == pytest.approx(hj + hf)  # Σ g·H over the range is unchanged
