"""Macro profiles: M = daily total of P; gas shape fitted from read pairs, with fallback."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from tasks.macro import gas_shape, macro_profile

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
