"""Interval register scalar: latest 28 days, fallback 365, no history → 1 + NO_HISTORY."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from tasks.domain.scalars import interval_day_sums, interval_scalars
from tests.interval_rows import actual_day

R = dt.date(2024, 3, 1)
SEG = "RES|NSW|CONSUMPTION"


def _regs() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_register_id": [1, 2, 3],
            "account_id": [11, 12, 13],
            "nmi": ["N1", "N2", "N3"],
            "suffix": ["E1"] * 3,
            "customer_class": ["RES"] * 3,
            "jurisdiction": ["NSW"] * 3,
            "stream": ["CONSUMPTION"] * 3,
            "tni": [None] * 3,
            "interval_minutes": [30, 30, 30],
            "register_start": [dt.date(2023, 1, 1)] * 3,
            "register_end": [None] * 3,
        },
        schema_overrides={"register_end": pl.Date, "tni": pl.Utf8},
    )


def _days(nmi: str, first: dt.date, n: int, value: float) -> list[dict]:
    return [actual_day(nmi, first + dt.timedelta(days=i), value) for i in range(n)]


def _fixed(first: dt.date, last: dt.date) -> pl.DataFrame:
    days = pl.date_range(first, last, "1d", eager=True)
    return pl.DataFrame(
        {"segment": [SEG] * len(days), "read_date": days, "profile": [[1.0] * 48] * len(days)}
    )


def test_scalar_from_latest_28_days_else_365_else_one_with_exception() -> None:
    # P = 1.0 every half hour (Σ P = 48 per day).
    # N1: 20 days at 2.0 inside R-28..R-1 (>= 14 days) -> s = 20·96 / 20·48 = 2.0; its 10 older
    #     days at 10.0 are ignored.
    # N2: only 10 days at 3.0 inside the 28 days (< 14) -> 365-day window also takes its 30
    #     days at 1.0 in December: s = (10·3 + 30·1)·48 / (40·48) = 1.5.
    # N3: no data at all -> s = 1 and NO_HISTORY.
    rows = (
        _days("N1", R - dt.timedelta(days=20), 20, 2.0)
        + _days("N1", dt.date(2024, 1, 1), 10, 10.0)
        + _days("N2", R - dt.timedelta(days=10), 10, 3.0)
        + _days("N2", dt.date(2023, 12, 1), 30, 1.0)
    )
    lf = pl.DataFrame(rows).lazy()
    fixed = _fixed(dt.date(2023, 3, 1), R - dt.timedelta(days=1))
    sums = interval_day_sums(_regs(), lf, fixed, R - dt.timedelta(days=365), R - dt.timedelta(days=1))
    scalars, exc = interval_scalars(_regs(), sums, R)
    got = {r["meter_register_id"]: (r["scalar"], r["reference"]) for r in scalars.to_dicts()}
    assert got[1][0] == pytest.approx(2.0) and got[1][1] == "28D"
    assert got[2][0] == pytest.approx(1.5) and got[2][1] == "365D"
    assert got[3] == (1.0, "NONE")
    assert exc.select("account_id", "meter_register_id", "code").rows() == [(13, 3, "NO_HISTORY")]


def test_scalar_uses_only_actual_half_hours_on_both_sides() -> None:
    # N1 on one day: 47 half hours at 2.0 (A), one at 50.0 with quality E. P = 1.0 except that
    # E slot where P = 9.0. Excluding the slot on both sides: s = 47·2 / 47·1 = 2.0.
    day = R - dt.timedelta(days=1)
    rows = [
        {
            "nmi": "N1",
            "suffix": "E1",
            "read_date": day,
            "interval_minutes": 30,
            "values": [2.0] * 47 + [50.0],
            "quality": "A" * 47 + "E",
        }
    ]
    fixed = pl.DataFrame({"segment": [SEG], "read_date": [day], "profile": [[1.0] * 47 + [9.0]]})
    sums = interval_day_sums(_regs(), pl.DataFrame(rows).lazy(), fixed, day, day)
    assert sums.select("actual_sum", "profile_sum").row(0) == pytest.approx((94.0, 47.0))


def test_scalars_from_the_profiles_day_grid_match_the_store_path() -> None:
    # Same data as the 28/365/none test, but the scalars come from the day grid the profiles
    # phase keeps (actual sum and actual half hours per register-day) instead of a second read:
    # N1 = 20·96 / 20·48 = 2.0 (28D); N2 = (10·3 + 30·1)·48 / (40·48) = 1.5 (365D, its December
    # days are in the grid because it has < 14 days in R-28..R-1); N3 = 1 with NO_HISTORY.
    from tasks.domain.interval_estimate import scalars_from_grid, scalars_shard
    from tasks.domain.profiles import profile_partials_and_day_grid

    rows = (
        _days("N1", R - dt.timedelta(days=20), 20, 2.0)
        + _days("N1", dt.date(2024, 1, 1), 10, 10.0)
        + _days("N2", R - dt.timedelta(days=10), 10, 3.0)
        + _days("N2", dt.date(2023, 12, 1), 30, 1.0)
    )
    lf = pl.DataFrame(rows).lazy()
    fixed = _fixed(dt.date(2023, 3, 1), R - dt.timedelta(days=1))
    _, grid = profile_partials_and_day_grid(
        _regs(), lf, False, dt.date(2023, 3, 1), R - dt.timedelta(days=1),
        grid_from=R - dt.timedelta(days=365), short_from=R - dt.timedelta(days=28),
    )  # fmt: skip
    # N1: its 20 recent days only (10 January days are dropped: it has >= 14 recent days);
    # N2: all 40 days. All 48 half hours actual: mask = 2^48 - 1.
    assert grid.group_by("meter_register_id").len().sort("meter_register_id").rows() == [(1, 20), (2, 40)]
    assert set(grid["ok_mask"]) == {2**48 - 1}
    scalars, exc = scalars_from_grid(_regs(), grid, lf, fixed, R)
    got = {r["meter_register_id"]: (r["scalar"], r["reference"]) for r in scalars.to_dicts()}
    assert got[1][0] == pytest.approx(2.0) and got[1][1] == "28D"
    assert got[2][0] == pytest.approx(1.5) and got[2][1] == "365D"
    assert got[3] == (1.0, "NONE")
    assert exc.select("code").to_series().to_list() == ["NO_HISTORY"]
    assert scalars.equals(scalars_shard(_regs(), lf, fixed, R)[0])


def test_scalars_from_the_day_grid_read_the_store_for_long_days_the_grid_left_out() -> None:
    # N1 has 20 actual days in R-28..R-1, so the grid keeps none of its older days; but the
    # profile ends at R-11, so only 10 of them count (< 14) and N1 falls back to 365 days: those
    # must come from the store. s = (10 days·96 + 10 January days·480) / (20·48) = 6.0.
    from tasks.domain.interval_estimate import scalars_from_grid
    from tasks.domain.profiles import profile_partials_and_day_grid

    rows = _days("N1", R - dt.timedelta(days=20), 20, 2.0) + _days("N1", dt.date(2024, 1, 1), 10, 10.0)
    lf = pl.DataFrame(rows).lazy()
    fixed = _fixed(dt.date(2023, 3, 1), R - dt.timedelta(days=11))
    _, grid = profile_partials_and_day_grid(
        _regs(), lf, False, dt.date(2023, 3, 1), R - dt.timedelta(days=1),
        grid_from=R - dt.timedelta(days=365), short_from=R - dt.timedelta(days=28),
    )  # fmt: skip
    assert grid["read_date"].min() == R - dt.timedelta(days=20)
    scalars, _ = scalars_from_grid(_regs(), grid, lf, fixed, R)
    got = {r["meter_register_id"]: (r["scalar"], r["reference"]) for r in scalars.to_dicts()}
    assert got[1][0] == pytest.approx(6.0) and got[1][1] == "365D"


def test_scalars_have_the_same_bytes_whatever_the_row_order() -> None:
    # issue 17: the scalar's sums add the register's days in date order whatever order the day
    # sums come in (a hash group-by may add them in another order: other bytes, other NEM12 files).
    # 1e16 + 0.1 = 1e16 in floating point, so the order decides the result.
    days = [R - dt.timedelta(days=i) for i in range(1, 21)]
    actual = [0.1 * (i % 7) for i in range(20)]
    actual[3], actual[11] = 1e16, -1e16
    sums = pl.DataFrame(
        {
            "meter_register_id": [1] * 20,
            "read_date": days,
            "actual_sum": actual,
            "profile_sum": [1.0] * 20,
            "actual_slots": [48] * 20,
        }
    )
    outs = {
        interval_scalars(_regs(), sums.sample(fraction=1.0, shuffle=True, seed=s), R)[0].filter(
            pl.col("meter_register_id") == 1
        )["scalar"][0]
        for s in range(8)
    }
    assert len(outs) == 1
