"""Interval estimation: actual kept, gaps = scalar × profile, missing days the same way."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from tasks.domain.interval_estimate import estimate_interval, estimate_interval_shard
from tests.interval_rows import actual_day

SEG = "RES|NSW|CONSUMPTION"
D1, D2 = dt.date(2024, 2, 27), dt.date(2024, 2, 28)


def _regs(minutes: int = 30) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_register_id": [1],
            "account_id": [11],
            "nmi": ["N1"],
            "suffix": ["E1"],
            "stream": ["CONSUMPTION"],
            "time_class": ["ANYTIME"],
            "unit": ["KWH"],
            "customer_class": ["RES"],
            "jurisdiction": ["NSW"],
            "tni": [None],
            "interval_minutes": [minutes],
            "register_start": [dt.date(2023, 1, 1)],
            "register_end": [None],
        },
        schema_overrides={"register_end": pl.Date, "tni": pl.Utf8},
    )


WINDOWS = pl.DataFrame({"account_id": [11], "unbilled_from": [D1], "unbilled_to": [D2]})
PROFILE = [1.0] * 3 + [2.0] + [1.0] * 44  # slot 3 = 2.0
FIXED = pl.DataFrame({"segment": [SEG, SEG], "read_date": [D1, D2], "profile": [PROFILE, PROFILE]})
SCALARS = pl.DataFrame({"meter_register_id": [1], "scalar": [1.5]})


def test_gap_filled_with_scalar_times_profile_and_missing_day_estimated() -> None:
    # D1: 2.0 actual everywhere except slot 3 (quality N) and slot 4 (null value); slot 5 is an
    # MDP estimate (E, 7.0) and is kept as given. s = 1.5:
    #   slot 3 = 1.5 × 2.0 = 3.0, slot 4 = 1.5 × 1.0 = 1.5.
    # D2 has no row: every slot = 1.5 × P -> Σ = 1.5 × (47 + 2) = 73.5, all estimated.
    values = [2.0] * 48
    values[4] = None
    values[5] = 7.0
    q = "AAANAE" + "A" * 42
    data = pl.DataFrame(
        [
            {
                "nmi": "N1",
                "suffix": "E1",
                "read_date": D1,
                "interval_minutes": 30,
                "values": values,
                "quality": q,
            }
        ]
    ).lazy()
    usage, exc = estimate_interval(_regs(), WINDOWS, data, FIXED, SCALARS)
    d1, d2 = usage.sort("read_date").to_dicts()
    assert d1["values"][:7] == pytest.approx([2.0, 2.0, 2.0, 3.0, 1.5, 7.0, 2.0])
    assert d1["estimated"][:7] == [False, False, False, True, True, False, False]
    assert sum(d1["estimated"]) == 2
    assert sum(d2["values"]) == pytest.approx(73.5) and all(d2["estimated"])
    assert d2["interval_minutes"] == 30 and d2["method"] == "INTERVAL"
    assert exc.height == 0


def test_fifteen_minute_register_gets_half_of_the_half_hour_profile() -> None:
    # no data at all on D1..D2 for a 15-minute register: interval 7 (slot 3) = 1.5 × 2.0 / 2 = 1.5
    usage, _ = estimate_interval(
        _regs(15),
        WINDOWS,
        pl.DataFrame(
            schema={
                "nmi": pl.Utf8,
                "suffix": pl.Utf8,
                "read_date": pl.Date,
                "interval_minutes": pl.Int64,
                "values": pl.List(pl.Float64),
                "quality": pl.Utf8,
            }
        ).lazy(),
        FIXED,
        SCALARS,
    )
    row = usage.to_dicts()[0]
    assert len(row["values"]) == 96
    assert row["values"][6] == pytest.approx(1.5) and row["values"][0] == pytest.approx(0.75)


def test_no_history_register_estimated_at_scalar_one_with_exception() -> None:
    # no data anywhere: s = 1 -> D1 total = Σ P = 49; NO_HISTORY exception
    empty = pl.DataFrame(
        schema={
            "nmi": pl.Utf8,
            "suffix": pl.Utf8,
            "read_date": pl.Date,
            "interval_minutes": pl.Int64,
            "values": pl.List(pl.Float64),
            "quality": pl.Utf8,
        }
    ).lazy()
    usage, exc, scalars = estimate_interval_shard(_regs(), WINDOWS, empty, FIXED, dt.date(2024, 2, 29))
    assert sum(usage.sort("read_date")["values"][0]) == pytest.approx(49.0)
    assert exc["code"].to_list() == ["NO_HISTORY"]
    assert scalars["scalar"].to_list() == [1.0]


def _day(read_date: dt.date, value: float) -> dict:
    return actual_day("N1", read_date, value)


def test_window_across_months_read_from_each_month_partition() -> None:
    # window 2024-02-28 .. 2024-03-01 (2024 is a leap year: 02-28, 02-29, 03-01). The February
    # partition holds 02-28 = 2.0 per interval (and 02-10, outside the window, = 9.0); the March
    # partition holds 03-01 = 3.0; 02-29 has no row anywhere -> 1.5 × P: Σ = 1.5 × 49 = 73.5.
    # ``interval`` holds only a decoy 02-28 row (5.0): with ``months`` given, a month present
    # there is read from its partition, never from ``interval``.
    d0, d1, d2 = dt.date(2024, 2, 28), dt.date(2024, 2, 29), dt.date(2024, 3, 1)
    fixed = pl.DataFrame({"segment": [SEG] * 3, "read_date": [d0, d1, d2], "profile": [PROFILE] * 3})
    windows = pl.DataFrame({"account_id": [11], "unbilled_from": [d0], "unbilled_to": [d2]})
    months = {
        "2024-02": pl.DataFrame([_day(dt.date(2024, 2, 10), 9.0), _day(d0, 2.0)]).lazy(),
        "2024-03": pl.DataFrame([_day(d2, 3.0)]).lazy(),
    }
    decoy = pl.DataFrame([_day(d0, 5.0)]).lazy()
    usage, exc = estimate_interval(_regs(), windows, decoy, fixed, SCALARS, months=months)
    rows = usage.sort("read_date").to_dicts()
    assert [r["read_date"] for r in rows] == [d0, d1, d2]
    assert [sum(r["values"]) for r in rows] == pytest.approx([96.0, 73.5, 144.0])
    assert [any(r["estimated"]) for r in rows] == [False, True, False]
    assert exc.height == 0
    # a month the mapping lacks is read from ``interval`` with a date filter: 02-28 = 5.0 (Σ 240)
    usage, _ = estimate_interval(
        _regs(), windows, decoy, fixed, SCALARS, months={"2024-03": months["2024-03"]}
    )
    assert [sum(r["values"]) for r in usage.sort("read_date").to_dicts()] == pytest.approx(
        [240.0, 73.5, 144.0]
    )


def test_window_rows_kept_by_the_profiles_read_give_the_same_usage_as_the_store() -> None:
    # the same window and data as above; the store rows of the window's days kept by the
    # profiles' read (profiles.profile_read with keep = window_keys) are handed in as ``data``
    # with ``interval`` an empty decoy: the usage frame is equal to the store path's (02-28 2.0 →
    # 96, 02-29 estimated 1.5 × 49 = 73.5, 03-01 3.0 → 144).
    from tasks.domain.interval_estimate import window_keys
    from tasks.domain.profiles import profile_read

    d0, d1, d2 = dt.date(2024, 2, 28), dt.date(2024, 2, 29), dt.date(2024, 3, 1)
    fixed = pl.DataFrame({"segment": [SEG] * 3, "read_date": [d0, d1, d2], "profile": [PROFILE] * 3})
    windows = pl.DataFrame({"account_id": [11], "unbilled_from": [d0], "unbilled_to": [d2]})
    store = pl.DataFrame([_day(dt.date(2024, 2, 10), 9.0), _day(d0, 2.0), _day(d2, 3.0)]).lazy()
    regs = _regs().with_columns(pl.lit(None, pl.Utf8).alias("customer_class"))  # no segment: no profile sums
    _, _, kept = profile_read(
        regs, store, date_from=dt.date(2024, 2, 1), date_to=d2, keep=window_keys(regs, windows)
    )
    assert kept["read_date"].to_list() == [d0, d2]
    empty = pl.DataFrame(schema=store.collect_schema()).lazy()
    from_kept, _ = estimate_interval(_regs(), windows, empty, fixed, SCALARS, data=kept)
    from_store, _ = estimate_interval(_regs(), windows, store, fixed, SCALARS)
    assert from_kept.equals(from_store)
    assert [sum(r["values"]) for r in from_kept.sort("read_date").to_dicts()] == pytest.approx(
        [96.0, 73.5, 144.0]
    )


def test_interval_lengths_mixed_with_an_odd_profile_and_a_day_without_profile() -> None:
    # Four registers of one account, window D1..D2, s = 1.5 each; profiles exist on D1 only, so
    # D2 is all zeros and estimated for every register (one NO_PROFILE exception each).
    #   1: 30-min, D1 row 2.0 everywhere, quality N at slot 47 -> slot 47 = 1.5 × 1.0 = 1.5.
    #   2: 15-min, no row -> interval i = 1.5 × P[i // 2] / 2: 0.75, intervals 6-7 = 1.5 × 2 / 2 = 1.5.
    #   3: 5-min, D1 row 0.1 everywhere but interval 0 null -> 1.5 × P[0] / 6 = 0.25.
    #   4: 30-min in VIC, whose D1 profile has 49 slots (1.0 each): not a 48-slot day, so the
    #      polars-list path; D1 row 3.0 with quality N at slot 0 -> slot 0 = 1.5 × 1.0 = 1.5.
    # The numpy rows (three lengths) and the list row come back in one frame, each row its own.
    regs = pl.concat(
        [
            _regs(m).with_columns(
                meter_register_id=pl.lit(i, pl.Int64), suffix=pl.lit(f"E{i}"), jurisdiction=pl.lit(j)
            )
            for i, m, j in [(1, 30, "NSW"), (2, 15, "NSW"), (3, 5, "NSW"), (4, 30, "VIC")]
        ]
    )
    fine = [0.1] * 288
    fine[0] = None
    rows = [
        ("E1", [2.0] * 48, "A" * 47 + "N", 30),
        ("E3", fine, "A" * 288, 5),
        ("E4", [3.0] * 48, "N" + "A" * 47, 30),
    ]
    data = pl.DataFrame(
        [
            {"nmi": "N1", "suffix": s, "read_date": D1, "interval_minutes": m, "values": v, "quality": q}
            for s, v, q, m in rows
        ]
    ).lazy()
    fixed = pl.DataFrame(
        {"segment": [SEG, "RES|VIC|CONSUMPTION"], "read_date": [D1, D1], "profile": [PROFILE, [1.0] * 49]}
    )
    scalars = pl.DataFrame({"meter_register_id": [1, 2, 3, 4], "scalar": [1.5] * 4})
    usage, exc = estimate_interval(regs, WINDOWS, data, fixed, scalars)
    got = {(r["meter_register_id"], r["read_date"]): r for r in usage.to_dicts()}
    r1, r2, r3, r4 = (got[(i, D1)] for i in (1, 2, 3, 4))
    assert r1["values"] == [2.0] * 47 + [1.5] and r1["estimated"] == [False] * 47 + [True]
    assert r2["values"] == [0.75] * 6 + [1.5, 1.5] + [0.75] * 88 and all(r2["estimated"])
    assert r3["values"] == [0.25] + [0.1] * 287 and r3["estimated"] == [True] + [False] * 287
    assert r4["values"] == [1.5] + [3.0] * 47 and r4["estimated"] == [True] + [False] * 47
    for i, n in [(1, 48), (2, 96), (3, 288), (4, 48)]:
        assert got[(i, D2)]["values"] == [0.0] * n and all(got[(i, D2)]["estimated"])
    assert sorted(exc["meter_register_id"].to_list()) == [1, 2, 3, 4]
    assert set(exc["detail"]) == {f"no segment profile for 1 day(s) {D2}..{D2}; missing intervals set to 0"}
