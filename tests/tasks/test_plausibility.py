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
    _flagged,
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


def _flag_frame_reference(data: pl.DataFrame, regs: pl.DataFrame, caps: Caps) -> pl.DataFrame:
    """flag_frame as first written: every row's figures over its finite values filtered out by
    list.eval."""
    rate, day = caps.exprs()
    keyed = regs.select(
        "meter_register_id", "account_id", "nmi", "suffix", "unit", rate.alias("_rate"), day.alias("_day")
    ).unique(["nmi", "suffix"], keep="last", maintain_order=True)
    el = pl.element()
    fin = pl.col("values").list.eval(el.filter(el.is_finite()))
    rows = data.join(keyed, on=["nmi", "suffix"], how="inner", maintain_order="left").with_columns(
        minutes=pl.col("data_minutes").cast(pl.Int64),
        _nf=pl.col("values").list.eval(el.is_infinite() | el.is_nan()).list.any().fill_null(False),
        _bad=pl.col("values").list.eval(el.filter(el.is_infinite() | el.is_nan())).list.first(),
        _max=fin.list.max().fill_null(0.0),
        _min=fin.list.min().fill_null(0.0),
        _sum=fin.list.sum().fill_null(0.0),
    )
    # the reasons, values and caps from those figures: the module's own rule (the hand-computed
    # tests above check it); what this reference checks is the figures
    return _flagged(rows.with_row_index("_i"), caps).drop("_i")


def test_frame_rules_fast_path_equals_the_filtering_expressions():
    """flag_frame takes a row's own max/min/sum where it has no null and its sum is finite, and
    filters out the non-finite values only on the other rows: the same rows, reasons and caps as
    filtering every row (the reference above), the same values but for a day total's last bits, on 6,000 random register-days of 5-, 15- and
    30-minute data with nulls, stored NaN, ±inf, negatives, values above either cap, all-null days,
    a null list and an empty one, in several orders."""
    rng = np.random.default_rng(20261207)
    rows = []
    for i in range(6000):
        n = int(rng.choice([48, 96, 288]))
        scale = float(rng.choice([0.01, 0.3, 3.0, 30.0, 60.0]))  # 30, 60: above a residential cap
        v: list[float | None] = (rng.random(n) * scale).tolist()
        kind = rng.random()
        if kind < 0.15:
            for j in rng.integers(0, n, 3):
                v[j] = None
        elif kind < 0.2:
            v[int(rng.integers(n))] = float("nan")
        elif kind < 0.25:
            v[int(rng.integers(n))] = float(rng.choice([np.inf, -np.inf]))
        elif kind < 0.3:
            v[int(rng.integers(n))] = -float(rng.random())
        elif kind < 0.31:
            v = [None] * n
        nmi = f"N{1 + i % 3}"
        rows.append({**_day(nmi, v, 1440 // n), "read_date": D + dt.timedelta(days=i // 3)})
    data = pl.DataFrame(rows, schema_overrides={"values": pl.List(pl.Float64)})
    extra = pl.DataFrame(
        [{**_day("N1", None), "read_date": D - dt.timedelta(days=1)}, {**_day("N2", []), "read_date": D}],
        schema=data.schema,
    )
    data = pl.concat([data, extra])
    for caps in (Caps(), Caps(allow_negative=True, kw_residential=5.0)):
        for frame in (data, data.reverse(), data.sample(fraction=1.0, shuffle=True, seed=7)):
            got, want = flag_frame(frame, REGS, caps), _flag_frame_reference(frame, REGS, caps)
            assert want.height > 300  # every reason occurs
            assert set(want["reason"].to_list()) == {NOT_FINITE, NEGATIVE, ABOVE_INTERVAL, ABOVE_DAY} - (
                {NEGATIVE} if caps.allow_negative else set()
            )
            # the same rows, reasons, caps, largest/smallest/first bad values; a day's total may
            # differ in its last bits (a list's sum in polars depends on its memory layout)
            assert got.drop("value").equals(want.drop("value"))
            exact = got["reason"] != ABOVE_DAY
            assert got.filter(exact)["value"].equals(want.filter(exact)["value"])
            rel = ((got["value"] - want["value"]).abs() / want["value"].abs()).filter(~exact)
            assert rel.max() < 1e-13
            assert flag_frame(frame, REGS, caps).equals(got)  # and the same bytes every time
