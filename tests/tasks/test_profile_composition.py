"""Segment profiles that do not move with which registers report (docs/METHOD.md, "Segment
profiles: who reports"; tasks/domain/profile_combine.py ``composition_factors``).

Every figure below is worked by hand from the rule: a register's level L is its mean day (actual
half hours scaled to 48); per segment-day the factor is L̄ × registers / Σ L of the registers
present, L̄ = Σ over the segment's days of Σ L present ÷ Σ registers present; P is the plain mean
times the factor.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from tasks.domain.profile_combine import combine_partials, composition_factors
from tasks.domain.profiles import combine_profiles, profile_partial_sums
from tasks.domain.scalars import interval_day_sums
from tests.interval_rows import actual_day

D1 = dt.date(2024, 2, 1)
SEG = "RES|NSW|CONSUMPTION"


def _regs(nmis: list[str]) -> pl.DataFrame:
    n = len(nmis)
    return pl.DataFrame(
        {
            "meter_register_id": list(range(1, n + 1)),
            "account_id": list(range(1, n + 1)),
            "nmi": nmis,
            "suffix": ["E1"] * n,
            "customer_class": ["RES"] * n,
            "jurisdiction": ["NSW"] * n,
            "stream": ["CONSUMPTION"] * n,
            "tni": [None] * n,
            "interval_minutes": [30] * n,
            "register_start": [dt.date(2024, 1, 1)] * n,
            "register_end": [None] * n,
        },
        schema_overrides={"register_end": pl.Date, "tni": pl.Utf8},
    )


def _rows(per_half_hour: dict[str, float], days: int, missing: dict[str, set[int]]) -> pl.DataFrame:
    """Register-days: each NMI its constant value every half hour, on days 0 … days − 1 except its
    ``missing`` days."""
    return pl.DataFrame(
        [
            actual_day(nmi, D1 + dt.timedelta(days=d), v)
            for nmi, v in per_half_hour.items()
            for d in range(days)
            if d not in missing.get(nmi, set())
        ]
    )


def _profile(regs: pl.DataFrame, rows: pl.DataFrame, composition: bool = True) -> pl.DataFrame:
    part = profile_partial_sums(regs, rows.lazy())
    return combine_profiles([part], composition).filter(pl.col("segment") == SEG).sort("read_date")


def test_a_large_register_missing_a_day_does_not_move_the_profile() -> None:
    # A and B use 1 kWh every half hour (L = 48), C 4 (L = 192); C misses day 4 (index 3).
    # Plain mean: days 1-3 (1 + 1 + 4) / 3 = 2 per half hour; day 4 (1 + 1) / 2 = 1: C's absence
    # halves its segment's day. Levels present: days 1-3 288 (3 registers), day 4 96 (2).
    # L̄ = (3 × 288 + 96) / (3 × 3 + 2) = 960 / 11. Factors: days 1-3 (960/11) × 3 / 288 = 10/11,
    # day 4 (960/11) × 2 / 96 = 20/11. P: 2 × 10/11 = 20/11 and 1 × 20/11 = 20/11 — flat, as every
    # register is.
    regs = _regs(["A", "B", "C"])
    rows = _rows({"A": 1.0, "B": 1.0, "C": 4.0}, 4, {"C": {3}})
    plain = _profile(regs, rows, composition=False)["profile"].to_list()
    assert [p[0] for p in plain] == pytest.approx([2.0, 2.0, 2.0, 1.0])
    prof = _profile(regs, rows)["profile"].to_list()
    assert [p[0] for p in prof] == pytest.approx([20 / 11] * 4, rel=1e-12)
    assert all(p == pytest.approx([20 / 11] * 48, rel=1e-12) for p in prof)


def test_the_missing_registers_own_estimate_is_its_level() -> None:
    # The case that motivated the factor (holdout-g: a 1 700 kWh/day business register 35% low
    # on its missing day). C's scalar over days 1-3: Σ actual / Σ P = 3 × 192 / (3 × 48 × 20/11)
    # = 2.2, so its day 4 is 2.2 × 48 × 20/11 = 192, its true day. With the plain mean: 576 /
    # (3 × 96) = 2, day 4 = 2 × 48 × 1 = 96, half of it.
    regs = _regs(["A", "B", "C"])
    rows = _rows({"A": 1.0, "B": 1.0, "C": 4.0}, 4, {"C": {3}})
    for composition, day4 in ((True, 192.0), (False, 96.0)):
        fixed = _profile(regs, rows, composition).select("segment", "read_date", "profile")
        sums = interval_day_sums(regs, rows.lazy(), fixed, D1, D1 + dt.timedelta(days=3))
        c = sums.filter(pl.col("meter_register_id") == 3)
        s = c["actual_sum"].sum() / c["profile_sum"].sum()
        p4 = sum(fixed.filter(pl.col("read_date") == D1 + dt.timedelta(days=3))["profile"][0])
        assert s * p4 == pytest.approx(day4, rel=1e-12)


def test_a_wild_register_cannot_set_the_factor() -> None:
    # A, B, C at 1 kWh a half hour (L = 48); W, a register misconfigured by a multiplier, at 100
    # (L = 4 800), misses day 4. Days 1-3: the day trim (robust_profile) caps W's day 4 800 at
    # 20 × the others' mean day 48 = 960, so the plain P is (3 × 48 + 960) / 4 / 48 = 5.75; day 4:
    # 1. The level trim caps W's level the same way: days 1-3 Σ L = 144 + 960 = 1 104 (4
    # registers), day 4 144 (3). L̄ = (3 × 1 104 + 144) / (3 × 4 + 3) = 230.4. Factors: days 1-3
    # 230.4 × 4 / 1 104, day 4 230.4 × 3 / 144 = 4.8. P = 5.75 × 230.4 × 4 / 1 104 = 4.8 every
    # day. (Without the level trim W's full 4 800 would count: day 4's factor 20.8, P jumping
    # 4.5× on the day W is away.)
    regs = _regs(["A", "B", "C", "W"])
    rows = _rows({"A": 1.0, "B": 1.0, "C": 1.0, "W": 100.0}, 4, {"W": {3}})
    plain = _profile(regs, rows, composition=False)["profile"].to_list()
    assert [p[0] for p in plain] == pytest.approx([5.75, 5.75, 5.75, 1.0])
    prof = _profile(regs, rows)["profile"].to_list()
    assert [p[0] for p in prof] == pytest.approx([4.8] * 4, rel=1e-12)


def test_every_register_reporting_every_day_leaves_the_plain_mean_bit_for_bit() -> None:
    # A 1, B 2, C 6 kWh a half hour on all 3 days: the level present is the same every day, so
    # every factor is 1 and P the plain mean (1 + 2 + 6) / 3 = 3, to the bit.
    regs = _regs(["A", "B", "C"])
    rows = _rows({"A": 1.0, "B": 2.0, "C": 6.0}, 3, {})
    on, off = _profile(regs, rows), _profile(regs, rows, composition=False)
    assert on.equals(off)
    assert on["profile"][0][0] == 3.0
    assert (
        composition_factors(combine_partials([profile_partial_sums(regs, rows.lazy())])).tolist() == [1.0] * 6
    )


def test_the_same_profile_from_any_split_into_shards() -> None:
    # A register's level is its own days only, and the combine adds levels like counts: the
    # registers split over two partials give the profile of one partial, to the bit.
    regs = _regs(["A", "B", "C", "D"])
    rows = _rows({"A": 1.0, "B": 3.0, "C": 4.0, "D": 0.5}, 5, {"C": {1, 2}, "D": {4}})
    one = combine_profiles([profile_partial_sums(regs, rows.lazy())])
    halves = [
        profile_partial_sums(
            regs.filter(pl.col("nmi").is_in(group)), rows.filter(pl.col("nmi").is_in(group)).lazy()
        )
        for group in (["A", "C"], ["B", "D"])
    ]
    assert combine_profiles(halves).equals(one)
    # and the factor did bind: day 2 (index 1) lacks C, so its plain mean differs
    plain = combine_profiles([profile_partial_sums(regs, rows.lazy())], composition=False)
    assert not plain.equals(one)
