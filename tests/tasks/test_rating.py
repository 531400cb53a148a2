"""Rating (SPEC §4.4): every test states its arithmetic."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from tasks.domain.discounts import discount_days, pay_on_time_propensity
from tasks.domain.rating import rate_unbilled, round_half_away
from tasks.domain.unbilled import account_days

D = dt.date


def _windows(start: D, end: D, jurisdiction: str = "NSW") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "account_id": [1],
            "account_number": ["A1"],
            "ili_state": ["UNBILLED_NOT_DUE"],
            "jurisdiction": [jurisdiction],
            "timezone": [{"NSW": "Australia/Sydney", "QLD": "Australia/Brisbane"}[jurisdiction]],
            "unbilled_from": [start],
            "unbilled_to": [end],
        }
    )


def _basic_usage(
    start: D, end: D, per_day: float, stream: str = "CONSUMPTION", tc: str = "ANYTIME", est: bool = False
) -> pl.DataFrame:
    days = pl.date_range(start, end, "1d", eager=True)
    n = len(days)
    return pl.DataFrame(
        {
            "account_id": [1] * n,
            "meter_register_id": [10] * n,
            "stream": [stream] * n,
            "register_time_class": [tc] * n,
            "unit": ["KWH"] * n,
            "read_date": days,
            "interval_minutes": [1440] * n,
            "values": [[per_day]] * n,
            "estimated": [[est]] * n,
            "method": ["BASIC"] * n,
        },
        schema=USAGE_SCHEMA,
    )


USAGE_SCHEMA = {
    "account_id": pl.Int64,
    "meter_register_id": pl.Int64,
    "stream": pl.String,
    "register_time_class": pl.String,
    "unit": pl.String,
    "read_date": pl.Date,
    "interval_minutes": pl.Int64,
    "values": pl.List(pl.Float64),
    "estimated": pl.List(pl.Boolean),
    "method": pl.String,
}


def _rates(*rows: tuple) -> pl.DataFrame:
    """(item_type, time_class, block_limit_per_day, rate, valid_from, valid_to) for plan 1."""
    return pl.DataFrame(
        [(1, *r) for r in rows],
        orient="row",
        schema={
            "plan_id": pl.Int64,
            "item_type": pl.String,
            "time_class": pl.String,
            "block_limit_per_day": pl.Float64,
            "rate": pl.Float64,
            "valid_from": pl.Date,
            "valid_to": pl.Date,
        },
    )


FLAT = pl.DataFrame(
    {"plan_id": [1], "tou_scheme_id": [None], "holidays_as_weekend": [True]},
    schema_overrides={"tou_scheme_id": pl.Int64},
)
NO_TOU = pl.DataFrame(
    schema={
        "tou_scheme_id": pl.Int64,
        "time_class": pl.String,
        "day_type": pl.String,
        "start_minute": pl.Int64,
        "end_minute": pl.Int64,
    }
)
NO_DISCOUNT = pl.DataFrame(
    schema={
        "account_id": pl.Int64,
        "discount_type": pl.String,
        "percent": pl.Float64,
        "applies_to": pl.String,
        "start_date": pl.Date,
        "end_date": pl.Date,
    }
)
P1 = pl.DataFrame({"account_id": [1], "propensity": [1.0]})


def _plan(start: D = D(2020, 1, 1), end: D | None = None, plan_id: int = 1) -> pl.DataFrame:
    return pl.DataFrame(
        {"account_id": [1], "plan_id": [plan_id], "start_date": [start], "end_date": [end]},
        schema_overrides={"end_date": pl.Date},
    )


def _rate(
    windows, usage, rates, *, plans=FLAT, tou=NO_TOU, discounts=NO_DISCOUNT, propensity=P1, account_plans=None
):
    return rate_unbilled(
        windows,
        account_days(windows),
        usage,
        _plan() if account_plans is None else account_plans,
        plans,
        rates,
        tou,
        discounts,
        propensity,
        gst_rate=0.10,
    )


def _row(lines: pl.DataFrame, **match: object) -> dict:
    f = lines
    for k, v in match.items():
        f = f.filter(pl.col(k) == v)
    assert f.height == 1, f
    return f.row(0, named=True)


@pytest.mark.parametrize(
    ("x", "cents"),
    [(0.125, 0.13), (-0.125, -0.13), (2.675, 2.68), (1.005, 1.01), (-2.675, -2.68), (0.124999, 0.12)],
)
def test_round_half_away_from_zero_on_decimals(x: float, cents: float) -> None:
    assert pl.select(round_half_away(pl.lit(x), 2)).item() == cents


def test_quantities_round_to_three_decimals_half_away() -> None:
    assert pl.select(round_half_away(pl.lit(1.0005), 3)).item() == 1.001
    assert pl.select(round_half_away(pl.lit(-1.0005), 3)).item() == -1.001


def test_supply_across_a_1_july_rate_change() -> None:
    # 2026-06-29..07-02: June 2 days × $1.00 = $2.00; July 2 days × $1.10 = $2.20
    w = _windows(D(2026, 6, 29), D(2026, 7, 2))
    rates = _rates(
        ("SUPPLY", "ANYTIME", None, 1.00, D(2025, 7, 1), D(2026, 6, 30)),
        ("SUPPLY", "ANYTIME", None, 1.10, D(2026, 7, 1), None),
    )
    lines, exc = _rate(w, _basic_usage(D(2026, 6, 29), D(2026, 6, 28), 0.0), rates)
    june = _row(lines, year_mnth=202606)
    july = _row(lines, year_mnth=202607)
    assert (june["plan_item_type_name"], june["feature_type_name"], june["unit"]) == (
        "DAILY_RETAIL",
        "SUPPLY",
        "DAY",
    )
    assert (june["quantity"], june["net_amount"], june["gst_amount"]) == (2.0, 2.00, 0.20)
    assert (july["quantity"], july["net_amount"], july["gst_amount"]) == (2.0, 2.20, 0.22)
    assert exc.height == 0


def test_rate_change_inside_a_month_is_one_row_with_the_sum() -> None:
    # usage 10 kWh/day 10-01..10-04; $0.20 to 10-02, $0.30 after: 2×10×0.20 + 2×10×0.30 = 4 + 6 = $10.00
    w = _windows(D(2026, 10, 1), D(2026, 10, 4))
    rates = _rates(
        ("USAGE", "ANYTIME", None, 0.20, D(2026, 1, 1), D(2026, 10, 2)),
        ("USAGE", "ANYTIME", None, 0.30, D(2026, 10, 3), None),
        ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
    )
    lines, _ = _rate(w, _basic_usage(D(2026, 10, 1), D(2026, 10, 4), 10.0), rates)
    u = _row(lines, plan_item_type_name="USAGE_RETAIL")
    assert (u["quantity"], u["net_amount"], u["feature_type_name"]) == (40.0, 10.00, "USAGE")


def test_block_threshold_scales_with_unbilled_days_in_the_month() -> None:
    # 10 unbilled October days × 12 kWh = 120 kWh; threshold = 10 kWh/day × 10 days = 100
    # block 1: 100 × 0.30 = 30.00; block 2: 20 × 0.40 = 8.00
    w = _windows(D(2026, 10, 22), D(2026, 10, 31))
    rates = _rates(
        ("USAGE", "ANYTIME", 10.0, 0.30, D(2026, 1, 1), None),
        ("USAGE", "ANYTIME", None, 0.40, D(2026, 1, 1), None),
        ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
    )
    lines, _ = _rate(w, _basic_usage(D(2026, 10, 22), D(2026, 10, 31), 12.0), rates)
    b1 = _row(lines, feature_type_name="USAGE_BLOCK_1")
    b2 = _row(lines, feature_type_name="USAGE_BLOCK_2")
    assert (b1["quantity"], b1["net_amount"]) == (100.0, 30.00)
    assert (b2["quantity"], b2["net_amount"]) == (20.0, 8.00)


def test_block_threshold_is_per_month() -> None:
    # 10-30..11-01: October 2 days (threshold 20, usage 24 → 20 + 4), November 1 day (threshold 10, usage 12 → 10 + 2)
    w = _windows(D(2026, 10, 30), D(2026, 11, 1))
    rates = _rates(
        ("USAGE", "ANYTIME", 10.0, 0.30, D(2026, 1, 1), None),
        ("USAGE", "ANYTIME", None, 0.40, D(2026, 1, 1), None),
        ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
    )
    lines, _ = _rate(w, _basic_usage(D(2026, 10, 30), D(2026, 11, 1), 12.0), rates)
    assert _row(lines, year_mnth=202610, feature_type_name="USAGE_BLOCK_2")["quantity"] == 4.0
    assert _row(lines, year_mnth=202611, feature_type_name="USAGE_BLOCK_1")["quantity"] == 10.0
    assert _row(lines, year_mnth=202611, feature_type_name="USAGE_BLOCK_2")["quantity"] == 2.0


def test_controlled_load() -> None:
    # 5 days × 4 kWh = 20 kWh × $0.15 = $3.00, GST $0.30
    w = _windows(D(2026, 10, 1), D(2026, 10, 5))
    rates = _rates(
        ("CONTROLLED_LOAD", "CONTROLLED", None, 0.15, D(2026, 1, 1), None),
        ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
    )
    lines, exc = _rate(
        w, _basic_usage(D(2026, 10, 1), D(2026, 10, 5), 4.0, stream="CONTROLLED_LOAD", tc="CONTROLLED"), rates
    )
    r = _row(lines, plan_item_type_name="CONTROLLED_LOAD_RETAIL")
    assert (
        r["feature_type_name"],
        r["time_class_name"],
        r["quantity"],
        r["net_amount"],
        r["gst_amount"],
    ) == ("CONTROLLED_LOAD", "CONTROLLED", 20.0, 3.00, 0.30)
    assert exc.height == 0


def test_feed_in_credit_is_negative_without_gst_or_discount() -> None:
    # 10 days × 3 kWh exported = 30 kWh × $0.05 = −$1.50; no GST; the 10% USAGE_AND_SUPPLY discount skips it
    w = _windows(D(2026, 10, 1), D(2026, 10, 10))
    rates = _rates(
        ("FEED_IN", "ANYTIME", None, 0.05, D(2026, 1, 1), None),
        ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
    )
    disc = pl.DataFrame(
        {
            "account_id": [1],
            "discount_type": ["GUARANTEED"],
            "percent": [10.0],
            "applies_to": ["USAGE_AND_SUPPLY"],
            "start_date": [D(2020, 1, 1)],
            "end_date": [None],
        },
        schema_overrides={"end_date": pl.Date},
    )
    lines, _ = _rate(
        w, _basic_usage(D(2026, 10, 1), D(2026, 10, 10), 3.0, stream="GENERATION"), rates, discounts=disc
    )
    r = _row(lines, plan_item_type_name="FEED_IN_RETAIL")
    assert (r["quantity"], r["net_amount"], r["gst_amount"], r["discount_net"], r["discount_state"]) == (
        30.0,
        -1.50,
        0.0,
        0.0,
        "NONE",
    )


def test_discounts_and_gst_on_net_less_propensity_discount() -> None:
    # 10 days; supply $1/day = $10.00; usage 10 kWh/day × $0.30 = $30.00
    # PAY_ON_TIME 10% on usage and supply with p = 0.5; GUARANTEED 5% on usage
    # usage: discount_net = 30 × 15% = 4.50; propensity = 30 × (10%×0.5 + 5%) = 3.00; GST = 10% × (30 − 3) = 2.70
    # supply: discount_net = 10 × 10% = 1.00; propensity = 10 × 10% × 0.5 = 0.50; GST = 10% × 9.50 = 0.95
    w = _windows(D(2026, 10, 1), D(2026, 10, 10))
    rates = _rates(
        ("USAGE", "ANYTIME", None, 0.30, D(2026, 1, 1), None),
        ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
    )
    disc = pl.DataFrame(
        {
            "account_id": [1, 1],
            "discount_type": ["PAY_ON_TIME", "GUARANTEED"],
            "percent": [10.0, 5.0],
            "applies_to": ["USAGE_AND_SUPPLY", "USAGE"],
            "start_date": [D(2020, 1, 1)] * 2,
            "end_date": [None, None],
        },
        schema_overrides={"end_date": pl.Date},
    )
    lines, _ = _rate(
        w,
        _basic_usage(D(2026, 10, 1), D(2026, 10, 10), 10.0),
        rates,
        discounts=disc,
        propensity=pl.DataFrame({"account_id": [1], "propensity": [0.5]}),
    )
    u = _row(lines, plan_item_type_name="USAGE_RETAIL")
    s = _row(lines, plan_item_type_name="DAILY_RETAIL")
    assert (
        u["net_amount"],
        u["discount_net"],
        u["discount_net_propensity"],
        u["gst_amount"],
        u["discount_state"],
    ) == (30.00, 4.50, 3.00, 2.70, "GUARANTEED")
    assert (
        s["net_amount"],
        s["discount_net"],
        s["discount_net_propensity"],
        s["gst_amount"],
        s["discount_state"],
    ) == (10.00, 1.00, 0.50, 0.95, "PAY_ON_TIME")


def test_discount_days_sum_percents_per_day_with_one_or_two_discounts() -> None:
    # account 1, 1–3 Oct: PAY_ON_TIME 10% on USAGE_AND_SUPPLY all three days → each day
    # pot_usage = pot_supply = 10, guar_usage = guar_supply = 0 (one discount a day: no group-by)
    # add GUARANTEED 5% on USAGE from 2 Oct → 1 Oct as before; 2 and 3 Oct: pot_usage 10,
    # guar_usage 5, pot_supply 10, guar_supply 0 (two discounts on a day: summed per day)
    days = pl.DataFrame(
        {"account_id": [1] * 3, "day": pl.date_range(D(2026, 10, 1), D(2026, 10, 3), "1d", eager=True)}
    )
    pot = {"account_id": 1, "discount_type": "PAY_ON_TIME", "percent": 10.0, "applies_to": "USAGE_AND_SUPPLY",
           "start_date": D(2020, 1, 1), "end_date": None}  # fmt: skip
    guar = {"account_id": 1, "discount_type": "GUARANTEED", "percent": 5.0, "applies_to": "USAGE",
            "start_date": D(2026, 10, 2), "end_date": None}  # fmt: skip
    cols = ["day", "pot_usage", "guar_usage", "pot_supply", "guar_supply"]
    one = discount_days(days, pl.DataFrame([pot], schema_overrides={"end_date": pl.Date})).sort("day")
    assert one.select(cols).rows() == [(D(2026, 10, d), 10.0, 0.0, 10.0, 0.0) for d in (1, 2, 3)]
    two = discount_days(days, pl.DataFrame([pot, guar], schema_overrides={"end_date": pl.Date})).sort("day")
    assert two.select(cols).rows() == [
        (D(2026, 10, 1), 10.0, 0.0, 10.0, 0.0),
        (D(2026, 10, 2), 10.0, 5.0, 10.0, 0.0),
        (D(2026, 10, 3), 10.0, 5.0, 10.0, 0.0),
    ]


def test_cent_rounding_once_per_row_not_per_day() -> None:
    # 3 days × 1 kWh × $0.333333 = 0.999999 → $1.00 (per-day rounding would give 3 × 0.33 = 0.99)
    w = _windows(D(2026, 10, 1), D(2026, 10, 3))
    rates = _rates(
        ("USAGE", "ANYTIME", None, 0.333333, D(2026, 1, 1), None),
        ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
    )
    lines, _ = _rate(w, _basic_usage(D(2026, 10, 1), D(2026, 10, 3), 1.0), rates)
    assert _row(lines, plan_item_type_name="USAGE_RETAIL")["net_amount"] == 1.00


def test_actual_and_estimated_quantities_are_split() -> None:
    w = _windows(D(2026, 10, 1), D(2026, 10, 2))
    rates = _rates(
        ("USAGE", "ANYTIME", None, 0.30, D(2026, 1, 1), None),
        ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
    )
    usage = pl.concat(
        [
            _basic_usage(D(2026, 10, 1), D(2026, 10, 1), 5.0),
            _basic_usage(D(2026, 10, 2), D(2026, 10, 2), 7.0, est=True),
        ]
    )
    u = _row(_rate(w, usage, rates)[0], plan_item_type_name="USAGE_RETAIL")
    assert (u["quantity"], u["quantity_actual"], u["quantity_estimated"]) == (12.0, 5.0, 7.0)


def test_tou_windows_in_local_time_across_daylight_saving() -> None:
    # NSW, 30-minute data in market time (UTC+10), value of interval i = i kWh. PEAK = weekdays 14:00–20:00 local.
    # Fri 2026-10-02 (AEST = market): PEAK intervals 28..39 → Σ = (28+39)×12/2 = 402
    # Mon 2026-10-05 is Labour Day in NSW → a weekend day: no PEAK
    # Tue 2026-10-06 (AEDT = market + 1 h): local 14:00 = market 13:00 → intervals 26..37 → Σ = (26+37)×6 = 378
    # PEAK = 780 × $0.50 = $390.00; OFFPEAK = 3 × Σ0..47 (1128) − 780 = 2604 × $0.20 = $520.80
    days = [D(2026, 10, 2), D(2026, 10, 5), D(2026, 10, 6)]
    usage = pl.DataFrame(
        {
            "account_id": [1] * 3,
            "meter_register_id": [10] * 3,
            "stream": ["CONSUMPTION"] * 3,
            "register_time_class": ["ANYTIME"] * 3,
            "unit": ["KWH"] * 3,
            "read_date": days,
            "interval_minutes": [30] * 3,
            "values": [[float(i) for i in range(48)]] * 3,
            "estimated": [[False] * 48] * 3,
            "method": ["INTERVAL"] * 3,
        }
    )
    plans = pl.DataFrame({"plan_id": [1], "tou_scheme_id": [7], "holidays_as_weekend": [True]})
    tou = pl.DataFrame(
        {
            "tou_scheme_id": [7, 7],
            "time_class": ["PEAK", "OFFPEAK"],
            "day_type": ["WEEKDAY", "ALL"],
            "start_minute": [840, 0],
            "end_minute": [1200, 1440],
        }
    )
    rates = _rates(
        ("USAGE", "PEAK", None, 0.50, D(2026, 1, 1), None),
        ("USAGE", "OFFPEAK", None, 0.20, D(2026, 1, 1), None),
        ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
    )
    lines, exc = _rate(_windows(D(2026, 10, 2), D(2026, 10, 6)), usage, rates, plans=plans, tou=tou)
    peak = _row(lines, time_class_name="PEAK")
    off = _row(lines, time_class_name="OFFPEAK")
    assert (peak["quantity"], peak["net_amount"]) == (780.0, 390.00)
    assert (off["quantity"], off["net_amount"]) == (2604.0, 520.80)
    assert exc.height == 0
    # holidays_as_weekend = false: Labour Day becomes a weekday: + market 14:00..19:30 on 10-06-like AEDT day → 26..37 = 378
    lines2, _ = _rate(
        _windows(D(2026, 10, 2), D(2026, 10, 6)),
        usage,
        rates,
        plans=plans.with_columns(pl.lit(False).alias("holidays_as_weekend")),
        tou=tou,
    )
    assert _row(lines2, time_class_name="PEAK")["quantity"] == 780.0 + 378.0


def test_pay_on_time_propensity_from_last_six_invoices_and_segment_average() -> None:
    # account 1: 8 invoices; the latest 6 have 4 paid on or before due (the 2 oldest, both on time, are ignored) → 4/6
    # account 2 (same segment): 1 invoice paid late → 0/1 = 0; segment average = (4/6 + 0)/2 = 1/3
    # account 3 (same segment): no history → 1/3; account 4 (other segment, nobody with history) → portfolio mean 1/3
    R = D(2026, 11, 1)
    issue = [D(2026, m, 1) for m in range(2, 10)]
    due = [d + dt.timedelta(days=14) for d in issue]
    paid = [
        due[0],
        due[1],
        due[2],
        due[3] + dt.timedelta(days=1),
        due[4],
        None,
        due[6] - dt.timedelta(days=3),
        due[7],
    ]
    inv = pl.DataFrame(
        {
            "account_id": [1] * 8 + [2],
            "status": ["ISSUED"] * 9,
            "issue_date": issue + [D(2026, 9, 1)],
            "due_date": due + [D(2026, 9, 15)],
            "paid_date": paid + [D(2026, 9, 20)],
        }
    )
    accounts = pl.DataFrame({"account_id": [1, 2, 3, 4], "journal_segment": ["RES", "RES", "RES", "SME"]})
    p = pay_on_time_propensity(accounts, inv, R).sort("account_id")
    assert p["propensity"].to_list() == pytest.approx([4 / 6, 0.0, 1 / 3, 1 / 3])
    assert p["propensity_source"].to_list() == ["HISTORY", "HISTORY", "SEGMENT", "PORTFOLIO"]


def test_missing_plan_days_overlaps_and_missing_rates_become_exceptions() -> None:
    # window 10-01..10-10; plan 1 from 10-04; plan 2 also 10-08.. → NO_PLAN for 10-01..10-03 (3 days), overlap 10-08..10-10
    # plan 2 (the later start) has no SUPPLY rate → NO_RATE; the 4 days 10-04..10-07 on plan 1 are rated: 4 × $1 = $4.00
    w = _windows(D(2026, 10, 1), D(2026, 10, 10))
    ap = pl.DataFrame(
        {
            "account_id": [1, 1],
            "plan_id": [1, 2],
            "start_date": [D(2026, 10, 4), D(2026, 10, 8)],
            "end_date": [None, None],
        },
        schema_overrides={"end_date": pl.Date},
    )
    rates = _rates(("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None))
    lines, exc = _rate(
        w,
        _basic_usage(D(2026, 10, 1), D(2026, 10, 0 + 1), 0.0),
        rates,
        account_plans=ap,
        plans=pl.concat([FLAT, FLAT.with_columns(pl.lit(2, pl.Int64).alias("plan_id"))]),
    )
    assert _row(lines, plan_item_type_name="DAILY_RETAIL")["net_amount"] == 4.00
    assert sorted(exc["code"].to_list()) == ["NO_PLAN", "NO_RATE", "OVERLAPPING_PLANS"]
    assert "3 unbilled day(s)" in _row(exc, code="NO_PLAN")["detail"]


def test_first_block_fills_in_date_order_across_a_rate_change() -> None:
    # 10-01..10-04 at 10 kWh/day (rows given newest first); threshold = 5 kWh/day × 4 days = 20 kWh,
    # filled by 10-01 and 10-02 at the old block-1 rate $0.30 → 20 × 0.30 = $6.00 (not 20 × 0.40 = $8.00);
    # 10-03 and 10-04 go to block 2 at $0.50 → $10.00
    w = _windows(D(2026, 10, 1), D(2026, 10, 4))
    rates = _rates(
        ("USAGE", "ANYTIME", 5.0, 0.30, D(2026, 1, 1), D(2026, 10, 2)),
        ("USAGE", "ANYTIME", 5.0, 0.40, D(2026, 10, 3), None),
        ("USAGE", "ANYTIME", None, 0.50, D(2026, 1, 1), None),
        ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
    )
    usage = _basic_usage(D(2026, 10, 1), D(2026, 10, 4), 10.0).reverse()
    lines, _ = _rate(w, usage, rates)
    assert (
        _row(lines, feature_type_name="USAGE_BLOCK_1")["quantity"],
        _row(lines, feature_type_name="USAGE_BLOCK_1")["net_amount"],
    ) == (20.0, 6.00)
    assert (
        _row(lines, feature_type_name="USAGE_BLOCK_2")["quantity"],
        _row(lines, feature_type_name="USAGE_BLOCK_2")["net_amount"],
    ) == (20.0, 10.00)


def test_accounts_with_and_without_block_limits_and_two_registers_in_one_shard() -> None:
    # One call rates two accounts over 10 October days; rating only sums repeated keys and only
    # computes block thresholds for accounts with a block-limited rate, so both kinds must mix.
    # Account 1, block plan 1: 12 kWh/day → threshold 10 × 10 = 100 kWh: 100 × 0.30 = 30.00 and
    # 20 × 0.40 = 8.00. Account 2, flat plan 2, two CONSUMPTION registers of 5 kWh/day each:
    # one USAGE row of 2 × 5 × 10 = 100 kWh × 0.25 = 25.00 (not split into blocks).
    start, end = D(2026, 10, 1), D(2026, 10, 10)
    w = pl.concat(
        [_windows(start, end), _windows(start, end).with_columns(pl.lit(2, pl.Int64).alias("account_id"))]
    )
    acct2 = lambda df, reg: df.with_columns(  # noqa: E731
        pl.lit(2, pl.Int64).alias("account_id"), pl.lit(reg, pl.Int64).alias("meter_register_id")
    )
    usage = pl.concat(
        [
            _basic_usage(start, end, 12.0),
            acct2(_basic_usage(start, end, 5.0), 20),
            acct2(_basic_usage(start, end, 5.0), 21),
        ]
    )
    rates = pl.concat(
        [
            _rates(
                ("USAGE", "ANYTIME", 10.0, 0.30, D(2026, 1, 1), None),
                ("USAGE", "ANYTIME", None, 0.40, D(2026, 1, 1), None),
                ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
            ),
            _rates(
                ("USAGE", "ANYTIME", None, 0.25, D(2026, 1, 1), None),
                ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
            ).with_columns(pl.lit(2, pl.Int64).alias("plan_id")),
        ]
    )
    plans = pl.DataFrame(
        {"plan_id": [1, 2], "tou_scheme_id": [None, None], "holidays_as_weekend": [True, True]},
        schema_overrides={"tou_scheme_id": pl.Int64},
    )
    account_plans = pl.concat(
        [_plan(), _plan(plan_id=2).with_columns(pl.lit(2, pl.Int64).alias("account_id"))]
    )
    propensity = pl.DataFrame({"account_id": [1, 2], "propensity": [1.0, 1.0]})
    lines, exc = _rate(w, usage, rates, plans=plans, account_plans=account_plans, propensity=propensity)
    b1 = _row(lines, account_id=1, feature_type_name="USAGE_BLOCK_1")
    b2 = _row(lines, account_id=1, feature_type_name="USAGE_BLOCK_2")
    flat = _row(lines, account_id=2, plan_item_type_name="USAGE_RETAIL")
    assert (b1["quantity"], b1["net_amount"], b2["quantity"], b2["net_amount"]) == (100.0, 30.00, 20.0, 8.00)
    assert (flat["feature_type_name"], flat["quantity"], flat["net_amount"]) == ("USAGE", 100.0, 25.00)
    assert exc.height == 0


def test_other_accounts_plans_and_discounts_in_the_extract_change_nothing() -> None:
    # a shard is rated with the whole extract's account plans and discounts; rows of accounts not in
    # the shard (account 2: two overlapping plans, a 50% discount) must neither be rated nor reported.
    # Account 1: 10 days × $1 supply = $10.00; usage 10 kWh/day × $0.30 × 10 = $30.00; its own
    # GUARANTEED 10% on supply → discount_net 10 × 10% = $1.00, on usage none.
    w = _windows(D(2026, 10, 1), D(2026, 10, 10))
    rates = _rates(
        ("USAGE", "ANYTIME", None, 0.30, D(2026, 1, 1), None),
        ("SUPPLY", "ANYTIME", None, 1.0, D(2026, 1, 1), None),
    )
    ap = pl.DataFrame(
        {
            "account_id": [2, 1, 2],
            "plan_id": [1, 1, 2],
            "start_date": [D(2020, 1, 1), D(2020, 1, 1), D(2026, 10, 5)],
            "end_date": [None, None, None],
        },
        schema_overrides={"end_date": pl.Date},
    )
    disc = pl.DataFrame(
        {
            "account_id": [2, 1],
            "discount_type": ["GUARANTEED", "GUARANTEED"],
            "percent": [50.0, 10.0],
            "applies_to": ["USAGE_AND_SUPPLY", "SUPPLY"],
            "start_date": [D(2020, 1, 1)] * 2,
            "end_date": [None, None],
        },
        schema_overrides={"end_date": pl.Date},
    )
    lines, exc = _rate(
        w, _basic_usage(D(2026, 10, 1), D(2026, 10, 10), 10.0), rates, account_plans=ap, discounts=disc
    )
    assert lines["account_id"].unique().to_list() == [1]
    assert exc.height == 0
    u = _row(lines, plan_item_type_name="USAGE_RETAIL")
    s = _row(lines, plan_item_type_name="DAILY_RETAIL")
    assert (u["net_amount"], u["discount_net"], s["net_amount"], s["discount_net"]) == (
        30.00,
        0.00,
        10.00,
        1.00,
    )
