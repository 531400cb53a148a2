"""Plausibility caps (issue 17): which register-days are implausible, and what the exception says."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from tasks.domain.basic_estimate import read_pairs
from tasks.domain.plausibility import (
    ABOVE_DAY,
    ABOVE_INTERVAL,
    NEGATIVE,
    NOT_FINITE,
    Caps,
    flag_frame,
    flag_rows,
    implausible_exceptions,
)

D = dt.date(2026, 10, 28)
REGS = pl.DataFrame(
    {
        "meter_register_id": [1, 2, 3],
        "account_id": [10, 20, 30],
        "nmi": ["N1", "N2", "N3"],
        "suffix": ["E1", "E1", "E1"],
        "customer_class": ["RES", "BUS", "RES"],
        "unit": ["KWH", "KWH", "MJ"],
    }
)


def _day(nmi: str, values: list[float | None], minutes: int = 30) -> dict:
    return {"nmi": nmi, "suffix": "E1", "read_date": D, "data_minutes": minutes, "values": values}


def test_caps_by_class_and_unit():
    # residential 50 kW over 30 minutes = 25 kWh; business 2,000 kW → 1,000 kWh; MJ: the day cap only
    data = pl.DataFrame(
        [
            _day("N1", [25.0] * 24 + [0.0] * 24),  # 600 kWh: at both caps, not above → plausible
            _day("N2", [26.0] * 48),  # business: 26 kWh per half hour, 1,248 kWh a day → plausible
            _day("N3", [100.0] * 48),  # 4,800 MJ a day, below 5,000
        ]
    )
    assert flag_frame(data, REGS, Caps()).height == 0
    data = pl.DataFrame([_day("N1", [25.001] + [0.0] * 47), _day("N3", [110.0] * 48)])
    flagged = flag_frame(data, REGS, Caps())
    assert flagged.select("nmi", "reason", "value", "cap").rows() == [
        ("N1", ABOVE_INTERVAL, 25.001, 25.0),
        ("N3", ABOVE_DAY, 5280.0, 5000.0),  # 48 × 110 MJ
    ]


def test_non_finite_and_negative_values_nulls_are_missing_not_bad():
    data = pl.DataFrame(
        [
            _day("N1", [float("inf")] + [0.1] * 47),
            _day("N2", [float("nan")] + [0.1] * 47),
            _day("N3", [-0.5] + [0.1] * 47),
            {**_day("N1", [None] * 48), "read_date": D + dt.timedelta(days=1)},
        ]
    )
    flagged = flag_frame(data, REGS, Caps())
    assert flagged.select("nmi", "reason").rows() == [
        ("N1", NOT_FINITE),
        ("N2", NOT_FINITE),
        ("N3", NEGATIVE),
    ]
    assert flag_frame(data.filter(pl.col("nmi") == "N3"), REGS, Caps(allow_negative=True)).height == 0
    rows = implausible_exceptions(flagged)["detail"].to_list()
    assert rows[0] == (
        f"register N1/E1 on {D}: interval value inf is not a finite number; the day is left out of "
        "profiles and scalars and estimated"
    )
    assert rows[2].startswith(f"register N3/E1 on {D}: interval value -0.500 MJ is negative")


def test_numpy_rules_match_the_frame_rules():
    # the store read (numpy, NaN = null unless marked stored) flags the same days for the same reasons
    values = np.array([[30.0, 0.2, np.inf, np.nan, -1.0, 13.0]] + [[0.1, 0.2, 0.1, 0.1, 0.1, 13.0]] * 47)
    stored = np.zeros_like(values, dtype=bool)
    stored[0, 3] = True  # the NaN of row 3 is stored, not a null
    rate, day = np.full(6, 50.0), np.full(6, 600.0)
    reason, value, cap = flag_rows(values, stored, rate, day, 30, allow_negative=False)
    assert reason.tolist() == [ABOVE_INTERVAL, 0, NOT_FINITE, NOT_FINITE, NEGATIVE, ABOVE_DAY]
    assert value[0] == 30.0 and cap[0] == 25.0 and value[5] == 13.0 * 48 and cap[5] == 600.0
    reason, *_ = flag_rows(values, None, rate, day, 30, allow_negative=False)
    assert reason[3] == 0  # an unmarked NaN is a null: missing data


def test_a_basic_read_above_the_daily_cap_is_skipped():
    regs = pl.DataFrame(
        {
            "meter_register_id": [5], "account_id": [50], "interval_minutes": [None], "dial_digits": [6],
            "multiplier": [1.0], "register_start": [dt.date(2026, 1, 1)], "register_end": [None],
            "customer_class": ["RES"], "unit": ["KWH"],
        },
        schema_overrides={"interval_minutes": pl.Int64, "register_end": pl.Date},
    )  # fmt: skip
    dates = [dt.date(2026, 1, 1), dt.date(2026, 7, 1), dt.date(2026, 10, 1)]
    # 181 days of 10 kWh/day; then 92 days of 1,000 kWh/day (above 600): that read is skipped
    reads = pl.DataFrame(
        {"meter_register_id": [5] * 3, "read_date": dates, "index_value": [0.0, 1810.0, 93810.0],
         "quality": ["A"] * 3}
    )  # fmt: skip
    pairs, exc = read_pairs(regs, reads, Caps())
    assert pairs["end"].to_list() == [dates[1]]
    assert exc.rows() == [
        (50, 5, "IMPLAUSIBLE_VALUE", "read 2026-10-01 index 93810.0 (previous 1810.0 on 2026-07-01): implied "
         "consumption 1000.0 kWh per day is above the cap of 600.0 kWh per day; read skipped"),
    ]  # fmt: skip
    assert read_pairs(regs, reads)[0].height == 2  # without caps (two pairs: no median rule): kept
