"""Basic registers: rollover, BAD_READ, spread by the macro profile, scalar after the last read,
estimated index at period end, and the seasonal fit."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from tasks.domain import basic_pairs
from tasks.domain.basic_estimate import (
    _ambiguous_exceptions,
    _with_class_scalars,
    _with_pair_sums,
    estimate_basic,
    fit_registers,
    gas_class_scalars,
    read_pairs,
    register_macro,
    resolve_turns,
)
from tasks.domain.billed import billed_boundaries, with_billed
from tasks.domain.macro import with_components

SEG = "RES|NSW|CONSUMPTION"
J = dt.date(2024, 1, 1)


def day(n: int) -> dt.date:
    return J + dt.timedelta(days=n)


def _regs(multiplier: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_register_id": [1],
            "account_id": [11],
            "nmi": ["N1"],
            "suffix": ["11"],
            "service_type": ["ELECTRICITY"],
            "stream": ["CONSUMPTION"],
            "time_class": ["ANYTIME"],
            "unit": ["KWH"],
            "customer_class": ["RES"],
            "jurisdiction": ["NSW"],
            "tni": [None],
            "interval_minutes": [None],
            "dial_digits": [5],
            "multiplier": [multiplier],
            "register_start": [dt.date(2023, 1, 1)],
            "register_end": [None],
        },
        schema_overrides={"register_end": pl.Date, "tni": pl.Utf8, "interval_minutes": pl.Int64},
    )


def _reads(rows: list[tuple[int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_register_id": [1] * len(rows),
            "read_date": [day(d) for d, _ in rows],
            "index_value": [float(v) for _, v in rows],
            "quality": ["A"] * len(rows),
        },
        schema={
            "meter_register_id": pl.Int64,
            "read_date": pl.Date,
            "index_value": pl.Float64,
            "quality": pl.Utf8,
        },
    )


def _macro(daily: list[float]) -> pl.DataFrame:
    return with_components(
        pl.DataFrame(
            {"segment": [SEG] * len(daily), "read_date": [day(i) for i in range(len(daily))], "daily": daily}
        ),
        "segment",
    )


NO_GAS = pl.DataFrame(
    schema={
        "jurisdiction": pl.Utf8,
        "read_date": pl.Date,
        "daily": pl.Float64,
        "w": pl.Float64,
        "wh": pl.Float64,
    }
)


def test_rollover_adds_ten_to_the_dial_digits() -> None:
    # 5 dials: 99 900 -> 00 100 = 100 100 - 99 900 = 200 units; × multiplier 2 = 400 kWh
    pairs, exc = read_pairs(_regs(2.0), _reads([(0, 99_900), (10, 100)]))
    assert pairs["consumption"].to_list() == [400.0] and pairs["days"].to_list() == [10]
    assert exc.height == 0


def test_second_rollover_is_a_bad_read_and_skipped() -> None:
    # 99 900 -> 00 100 (rollover, 200) -> 00 050 (goes down again: second rollover -> BAD_READ,
    # skipped) -> 00 300: pairs re-formed as (day 0, day 10) = 200 and (day 10, day 30) = 200
    pairs, exc = read_pairs(_regs(), _reads([(0, 99_900), (10, 100), (20, 50), (30, 300)]))
    assert pairs.select("start", "end", "consumption").rows() == [
        (day(0), day(10), 200.0),
        (day(10), day(30), 200.0),
    ]
    assert exc["code"].to_list() == ["BAD_READ"]
    assert "second rollover" in exc["detail"][0] and "2024-01-21" in exc["detail"][0]


def test_read_pair_spread_by_macro_then_scalar_after_last_read_and_index_at_period_end() -> None:
    # SPEC §4.3: a read dated D is the index at the END of day D, so the pair (day 0, day 10)
    # covers days 1 … 10. M = 1 on days 0-4, 3 on days 5-9, 2 on days 10-14. The pair (99 900 ->
    # 00 110, one rollover) = 210 kWh, Σ M over days 1-10 = 4·1 + 5·3 + 1·2 = 21 -> 10 kWh per unit
    # of M: 10 on days 3-4, 30 on days 5-9 and 20 on day 10, the read's own day (actual reads ->
    # actual). After the last read (days 11 on): scalar s = 210 / 21 = 10 -> 10 × 2 = 20 kWh/day
    # (estimated). Period end day 12: consumption since the last read = days 11 and 12 = 40 kWh;
    # multiplier 1 -> index 110 + 40 = 150.
    macro = _macro([1.0] * 5 + [3.0] * 5 + [2.0] * 5)
    windows = pl.DataFrame({"account_id": [11], "unbilled_from": [day(3)], "unbilled_to": [day(12)]})
    usage, ebr, exc = estimate_basic(
        _regs(), windows, _reads([(0, 99_900), (10, 110)]), macro, NO_GAS, day(13), day(12), "scalar"
    )
    got = [(r["read_date"], r["values"][0], r["estimated"][0]) for r in usage.to_dicts()]
    assert got == [
        (day(3), pytest.approx(10.0), False),
        (day(4), pytest.approx(10.0), False),
        *[(day(d), pytest.approx(30.0), False) for d in range(5, 10)],
        (day(10), pytest.approx(20.0), False),
        *[(day(d), pytest.approx(20.0), True) for d in (11, 12)],
    ]
    assert usage["interval_minutes"].unique().to_list() == [1440]
    # method flag 65 (ADL: the register's own average daily load from its reads, tasks/domain/flags.py)
    assert ebr.select("read_date", "index_value", "consumption", "method", "method_flag").rows() == [
        (day(12), 150.0, 40.0, "SCALAR", "65")
    ]
    assert exc.height == 0


def test_read_on_period_end_leaves_nothing_to_estimate() -> None:
    # the last read is dated period_end (day 10): it closes that day, so the estimated index at the
    # end of period_end is the read itself (110) with zero consumption since it
    macro = _macro([1.0] * 5 + [3.0] * 5 + [2.0] * 5)
    windows = pl.DataFrame({"account_id": [11], "unbilled_from": [day(9)], "unbilled_to": [day(10)]})
    usage, ebr, _ = estimate_basic(
        _regs(), windows, _reads([(0, 99_900), (10, 110)]), macro, NO_GAS, day(11), day(10), "scalar"
    )
    assert ebr.select("read_date", "index_value", "consumption").rows() == [(day(10), 110.0, 0.0)]
    # days 9 and 10 are inside the pair: 30 and 20 kWh, actual
    assert [(r["read_date"], r["values"][0], r["estimated"][0]) for r in usage.to_dicts()] == [
        (day(9), pytest.approx(30.0), False),
        (day(10), pytest.approx(20.0), False),
    ]


def test_no_reads_gives_scalar_one_and_no_history() -> None:
    # no reads: s = 1, day 2 estimate = M(day 2) = 4.0, NO_HISTORY
    macro = _macro([4.0] * 5)
    windows = pl.DataFrame({"account_id": [11], "unbilled_from": [day(2)], "unbilled_to": [day(2)]})
    usage, ebr, exc = estimate_basic(_regs(), windows, _reads([]), macro, NO_GAS, day(5), day(4), "scalar")
    assert usage["values"].to_list() == [[4.0]] and ebr.height == 0
    assert exc["code"].to_list() == ["NO_HISTORY"]


def _seasonal_case(alpha: float, beta_warm: float, beta_cold: float, pairs: int):
    """M(d) = 10 + 8·(1 + cos(2π(d − 190)/365))/2 over 400 days from 2024-01-01; W = M − its
    10th percentile per day type, B = that base relative to its mean (weekday/weekend shape of
    the base load), Wh = W·h(d) its cold-season part. The register truly uses
    alpha·B + beta_warm·(W − Wh) + beta_cold·Wh kWh/day and is read every 30 days; a read dated d
    is the index at the end of day d (SPEC §4.3), so the read of day d adds days prev + 1 … d."""
    n = 400
    daily = [10 + 8 * (1 + math.cos(2 * math.pi * (i - 190) / 365)) / 2 for i in range(n)]
    macro = _macro(daily)
    w, wh, b = macro["w"].to_list(), macro["wh"].to_list(), macro["b"].to_list()
    true = [alpha * bi + beta_warm * (wi - hi) + beta_cold * hi for wi, hi, bi in zip(w, wh, b, strict=True)]
    read_days = list(range(0, 30 * pairs + 1, 30))
    idx, reads = 1000.0, []
    for k, d in enumerate(read_days):
        if k:
            idx += sum(true[read_days[k - 1] + 1 : d + 1])
        reads.append((d, round(idx, 6)))
    return macro, true, reads


def test_seasonal_fit_recovers_base_and_sensitivity() -> None:
    # true use 5·B + 0.8·W (same sensitivity in both seasons), 13 read pairs: the least squares
    # must return alpha = 5, beta = 0.8 and no extra cold-season term (gamma = 0), and a day
    # after the last read is estimated as 5·B(d) + 0.8·W(d). The scalar method cannot reproduce it
    # (one ratio to M), which is the point of the seasonal method.
    macro, true, reads = _seasonal_case(5.0, 0.8, 0.8, 13)
    regs = _regs()
    pairs, _ = read_pairs(regs, _reads(reads))
    rm = register_macro(regs, macro, NO_GAS)
    fit = fit_registers(regs, _with_pair_sums(pairs, rm), day(395), "seasonal").to_dicts()[0]
    assert fit["model"] == "SEASONAL" and fit["components"] == 3
    assert fit["alpha"] == pytest.approx(5.0, rel=1e-6) and fit["beta"] == pytest.approx(0.8, rel=1e-6)
    assert fit["gamma"] == pytest.approx(0.0, abs=1e-6)
    windows = pl.DataFrame({"account_id": [11], "unbilled_from": [day(392)], "unbilled_to": [day(394)]})
    usage, ebr, _ = estimate_basic(
        regs, windows, _reads(reads), macro, NO_GAS, day(395), day(394), "seasonal"
    )
    assert [v[0] for v in usage["values"]] == pytest.approx(true[392:395], rel=1e-6)
    assert ebr["method"].to_list() == ["SEASONAL"]
    # with only two pairs the fit is not supported -> scalar fallback
    pairs2, _ = read_pairs(regs, _reads(reads[:3]))
    fit2 = fit_registers(regs, _with_pair_sums(pairs2, rm), day(61), "seasonal")
    assert fit2["model"].to_list() == ["SCALAR"]


def test_seasonal_fit_separates_heating_and_cooling_sensitivity() -> None:
    # true use 2·B + 0.3·(W − Wh) + 1.5·Wh: beta (warm season) = 0.3, gamma = 1.5 − 0.3 = 1.2;
    # with 4 pairs (fewer than 5) only the two-component fit is allowed.
    macro, _, reads = _seasonal_case(2.0, 0.3, 1.5, 13)
    regs = _regs()
    rm = register_macro(regs, macro, NO_GAS)
    pairs, _ = read_pairs(regs, _reads(reads))
    fit = fit_registers(regs, _with_pair_sums(pairs, rm), day(395), "seasonal").to_dicts()[0]
    assert (fit["alpha"], fit["beta"], fit["gamma"]) == pytest.approx((2.0, 0.3, 1.2), rel=1e-6)
    pairs4, _ = read_pairs(regs, _reads(reads[:5]))
    assert fit_registers(regs, _with_pair_sums(pairs4, rm), day(125), "seasonal")["components"].to_list() != [
        3
    ]


def test_large_consumer_wrapping_every_quarter_is_not_a_bad_read() -> None:
    # a 5-dial register using ~900 kWh/day wraps at every quarterly read: 91 071 -> 15 601
    # (24 530 in 27 days), -> 94 799 (79 198 in 88 days), -> 65 563 (70 764 in 91 days); the rates
    # (908, 900, 778 per day) agree with their median, so every rollover is kept.
    pairs, exc = read_pairs(_regs(), _reads([(0, 91_071), (27, 15_601), (115, 94_799), (206, 65_563)]))
    assert pairs["consumption"].to_list() == [24_530.0, 79_198.0, 70_764.0]
    assert exc.height == 0
    # median rate 900/day: 88 and 91 days reach half the 100 000 dial (79 200, 81 900 >= 50 000),
    # so the number of wraps is a guess there -> ambiguous (not fitted on); 27 days is not
    assert pairs["ambiguous"].to_list() == [False, True, True]


def _resolved(rows: list[tuple[int, float]]) -> pl.DataFrame:
    regs = _regs()
    rm = register_macro(regs, _macro([10.0] * 400), NO_GAS)
    pairs, _ = read_pairs(regs, _reads(rows))
    return resolve_turns(_with_pair_sums(pairs, rm), regs, rm)


def test_seasonal_infers_a_hidden_full_turn_from_the_registers_rate() -> None:
    # 1 000 kWh/day on a 5-dial register (turn T = 100 000), flat macro M = 10/day. Indices
    # 0 -> 30 000 (30 days) -> 20 000 (90 days: went down, SPEC adds one turn: 90 000) -> 25 000
    # (105 days: went UP by 5 000, SPEC reads 5 000) -> 55 000 (30 days). The other pairs say
    # 1 000/day = 100 per unit of M; 100 x (105 x 10) = 105 000 = 5 000 + 1 turn exactly, so one
    # extra turn is inferred; fewer turns (rho = 5 000 / 1 050) leave residuals of ~0.9 turn.
    out = _resolved([(0, 0), (30, 30_000), (120, 20_000), (225, 25_000), (255, 55_000)])
    assert out["consumption"].to_list() == [30_000.0, 90_000.0, 105_000.0, 30_000.0]
    assert out["extra_turns"].to_list() == [0, 0, 1, 0]
    assert not out["ambiguous"].any() and not out["turns_ambiguous"].any()
    assert _ambiguous_exceptions(out).height == 0


def test_turns_that_cannot_be_told_apart_are_reported_not_silent() -> None:
    # two pairs of 91 days, 50 000 each (the second went down: one SPEC turn). 50 000 and 150 000
    # (one more turn each) fit a constant rate equally well (residual 0 <= 0.5 x 0): the fewest turns are
    # kept (50 000) and the register gets one AMBIGUOUS_READ exception.
    out = _resolved([(0, 0), (91, 50_000), (182, 0)])
    assert out["consumption"].to_list() == [50_000.0, 50_000.0]
    assert out["turns_ambiguous"].to_list() == [True, True]
    exc = _ambiguous_exceptions(out)
    assert exc.select("account_id", "meter_register_id", "code").rows() == [(11, 1, "AMBIGUOUS_READ")]


def _billed(periods: list[tuple[int, int, float]], invoice: int = 100) -> pl.DataFrame:
    """Billed quantities of register 1: (first day, last day, quantity) per invoice period."""
    return pl.DataFrame(
        {
            "meter_register_id": [1] * len(periods),
            "invoice_id": [invoice + i for i in range(len(periods))],
            "issue_date": [day(e + 1) for _, e, _ in periods],
            "period_start": [day(s) for s, _, _ in periods],
            "period_end": [day(e) for _, e, _ in periods],
            "quantity": [q for _, _, q in periods],
        }
    )


def test_billed_boundaries_cumulate_contiguous_periods_and_count_a_rebilled_period_once() -> None:
    # periods 1-30 (100), 31-60 billed twice (200, then 250 on a later invoice: the latest counts),
    # then a gap, 91-120 (50). A read closes its day, so a period's first day is bounded by a read
    # on the day before: run 1 has dates 0 (0), 30 (100), 60 (100 + 250 = 350); run 2 has
    # 90 (350) and 120 (400): the quantity between dates of one run is their difference.
    billed = pl.concat(
        [_billed([(1, 30, 100.0), (31, 60, 200.0)]), _billed([(31, 60, 250.0), (91, 120, 50.0)], 200)]
    )
    out = billed_boundaries(billed)
    assert out.rows() == [
        (1, day(0), 1, 0.0),
        (1, day(30), 1, 100.0),
        (1, day(60), 1, 350.0),
        (1, day(90), 2, 350.0),
        (1, day(120), 2, 400.0),
    ]


def test_a_read_pair_carries_what_was_billed_for_its_days() -> None:
    # reads on days 0, 30, 60, 120; billed 1-30: 3 000, 31-60: 4 000, 91-120: 1 000 (61-90 never
    # billed). Pair 0-30 -> 3 000; 30-60 -> 4 000; 60-120 spans the unbilled gap -> unknown (null).
    # Without the 30-day read, pair 0-60 is the two contiguous periods: 3 000 + 4 000.
    billed = _billed([(1, 30, 3_000.0), (31, 60, 4_000.0), (91, 120, 1_000.0)])
    rows = [(0, 0), (30, 3_000), (60, 7_000), (120, 9_500)]
    pairs, _ = read_pairs(_regs(), with_billed(_reads(rows), billed))
    assert pairs["billed"].to_list() == [3_000.0, 4_000.0, None]
    pairs, _ = read_pairs(_regs(), with_billed(_reads([rows[0], rows[2]]), billed))
    assert pairs["billed"].to_list() == [7_000.0]


def test_billed_quantities_settle_turns_the_rate_cannot() -> None:
    # the case above that the rate cannot tell apart (two 91-day pairs of 50 000 on a 100 000
    # dial, the second went down: one SPEC turn): the invoices billed 150 000 for each, so each pair
    # hid one more turn: round((150 000 - 50 000) / 100 000) = 1. A third pair, 182-273, not billed
    # yet, indexes 0 -> 50 000 (50 000): the billed pairs' rate is 300 000 / (182 x 10) per unit of M
    # (flat M = 10/day), so 91 days predict 150 000 -> one more turn: 150 000. Nothing is a guess.
    billed = _billed([(1, 91, 150_000.4), (92, 182, 149_999.6)])
    regs = _regs()
    rm = register_macro(regs, _macro([10.0] * 400), NO_GAS)
    pairs, _ = read_pairs(regs, with_billed(_reads([(0, 0), (91, 50_000), (182, 0), (273, 50_000)]), billed))
    out = resolve_turns(_with_pair_sums(pairs, rm), regs, rm)
    assert out["consumption"].to_list() == [150_000.0, 150_000.0, 150_000.0]
    assert out["extra_turns"].to_list() == [1, 1, 1]
    assert not out["turns_ambiguous"].any()
    assert _ambiguous_exceptions(out).height == 0


def test_scalar_keeps_the_spec_rollover_rule() -> None:
    # read_pairs (what scalar uses) is unchanged: the pair that went up by 5 000 stays 5 000
    pairs, _ = read_pairs(
        _regs(), _reads([(0, 0), (30, 30_000), (120, 20_000), (225, 25_000), (255, 55_000)])
    )
    assert pairs["consumption"].to_list() == [30_000.0, 90_000.0, 5_000.0, 30_000.0]


def test_register_flatter_than_its_segment_keeps_its_base_load(monkeypatch: pytest.MonkeyPatch) -> None:
    # macro: 10/day with a weather part W = 20/day on days 101-200 (B = 1 every day). The register
    # uses 60/day, but 50/day on days 101-200 (less when its segment uses more): a + b·W gives
    # b = -0.5 < 0, so the one-component fit alpha = Σ w·B·y / Σ w·B² = its mean daily use is
    # used: (300·60 - 100·10) / 300 = 56.667. A read closes its day (SPEC §4.3): index of day d =
    # 60·d - 10·(days of 101-200 up to d), e.g. day 120: 7 200 - 10·20 = 7 000. Pairs weigh their
    # days only (no recency weighting: that rule has its own test below).
    monkeypatch.setattr(basic_pairs, "RECENCY_HALF_LIFE_DAYS", None)
    regs = _regs()
    macro = _macro([30.0 if 101 <= i <= 200 else 10.0 for i in range(400)])
    rm = register_macro(regs, macro, NO_GAS)
    reads = [(0, 0), (60, 3_600), (120, 7_000), (180, 10_000), (240, 13_400), (300, 17_000)]
    pairs, _ = read_pairs(regs, _reads(reads))
    fit = fit_registers(regs, _with_pair_sums(pairs, rm), day(301), "seasonal").to_dicts()[0]
    assert fit["model"] == "SEASONAL" and fit["components"] == 1
    assert (fit["alpha"], fit["beta"], fit["gamma"]) == pytest.approx((17_000 / 300, 0.0, 0.0))


def test_few_pairs_shrink_the_weather_coefficient_towards_the_segments_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # macro: 10/day, 30/day on days 101-200 (W = 20 there, else 0; B = 1 every day). Three 60-day
    # pairs covering days 1-60, 61-120 and 121-180 (a read closes its day, SPEC §4.3) with mean W
    # 0, 20·20/60 = 20/3 and 20; the register truly uses 160/3 + 2.5·W:
    # 3 200, 3 200 + 2.5·400 = 4 200 and 3 200 + 2.5·1 200 = 6 200 (indices 0, 3 200, 7 400, 13 600).
    # OLS would give alpha = 53.333, beta = 2.5. Its scalar s = Σ c / Σ M = 13 600 / (600 + 1 000 +
    # 1 800) = 4. What the pairs know about beta: S = Σ days·W² − (Σ days·W)² / Σ days
    # = 60·(400/9 + 400) − 1 600² / 180 = 12 444.4; the prior: lam = S / 3 (one pair among three,
    # SHRINK_PAIRS = 1) + 0.1 (WEATHER_PRIOR) × (mean M = 3 400 / 180)². beta = (S·2.5 + lam·4) /
    # (S + lam) = 2.8774, alpha = (Σ c − beta·Σ days·W) / Σ days = (13 600 − 1 600·beta) / 180 = 49.98.
    # Pairs weigh their days only (no recency weighting: that rule has its own test below).
    monkeypatch.setattr(basic_pairs, "RECENCY_HALF_LIFE_DAYS", None)
    big_s = 60 * (400 / 9 + 400) - 1600**2 / 180
    lam = big_s / 3 + 0.1 * (3400 / 180) ** 2
    beta = (big_s * 2.5 + lam * 4) / (big_s + lam)
    alpha = (13_600 - 1_600 * beta) / 180
    assert (round(beta, 4), round(alpha, 2)) == (2.8774, 49.98)
    regs = _regs()
    macro = _macro([30.0 if 101 <= i <= 200 else 10.0 for i in range(400)])
    rm = register_macro(regs, macro, NO_GAS)
    reads = [(0, 0), (60, 3_200), (120, 7_400), (180, 13_600)]
    pairs, _ = read_pairs(regs, _reads(reads))
    fit = fit_registers(regs, _with_pair_sums(pairs, rm), day(181), "seasonal").to_dicts()[0]
    assert fit["model"] == "SEASONAL" and fit["components"] == 2
    assert (fit["alpha"], fit["beta"], fit["gamma"]) == pytest.approx((alpha, beta, 0.0), rel=1e-9)
    # a pair's days still add up to its consumption (days 61-120: 4 200), and a day after the last
    # read with W = 0 (day 205) is estimated at alpha (OLS: 53.333)
    windows = pl.DataFrame({"account_id": [11, 11], "unbilled_from": [day(61), day(205)],
                            "unbilled_to": [day(120), day(205)]})  # fmt: skip
    usage, _, _ = estimate_basic(regs, windows, _reads(reads), macro, NO_GAS, day(206), day(205), "seasonal")
    values = dict(zip(usage["read_date"].to_list(), (v[0] for v in usage["values"]), strict=True))
    assert sum(values[day(d)] for d in range(61, 121)) == pytest.approx(4_200.0, rel=1e-9)
    assert values[day(205)] == pytest.approx(alpha, rel=1e-9)


def test_recency_weight_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    # half-life 180 days, run date day 400; pairs ending on days 400, 220 and 40 are 0, 180 and
    # 360 days old: 0.5^(age/180) = 1, 0.5, 0.25, mean 1.75/3 -> weights relative to the mean
    # 1/0.58333 = 1.7143, 0.8571, 0.4286 (a second register with one pair weighs 1)
    monkeypatch.setattr(basic_pairs, "RECENCY_HALF_LIFE_DAYS", 180.0)
    f = pl.DataFrame({"meter_register_id": [1, 1, 1, 2], "end": [day(400), day(220), day(40), day(100)]})
    got = f.select(basic_pairs.recency_weight(day(400)))["literal"].to_list()
    assert [round(v, 4) for v in got] == [1.7143, 0.8571, 0.4286, 1.0]
    monkeypatch.setattr(basic_pairs, "RECENCY_HALF_LIFE_DAYS", None)
    assert f.select(basic_pairs.recency_weight(day(400))).to_series().to_list() == [1.0]


def test_a_level_step_in_the_last_pair_weighs_by_recency(monkeypatch: pytest.MonkeyPatch) -> None:
    # the flatter-register case above (macro 10/day, 30/day on days 101-200; B = 1), but the site
    # steps up to 90/day in its last pair (days 241-300: 5 400). Pairs' daily use y = 60, 56.667,
    # 50, 56.667, 90; the unshrunk slope on W is < 0, so the one-component fit alpha = Σ w·y / Σ w
    # (w = days × recency weight; equal days). Without recency: 18 800 / 300 = 62.667. With a
    # half-life of 180 days at run date day 301 the pairs (ending 60 … 300) are 241, 181, 121, 61
    # and 1 days old: 0.5^(age/180) = 0.39531, 0.49808, 0.62754, 0.79068, 0.99616 (Σ 3.30777);
    # Σ r·y = 23.7186 + 28.2245 + 31.3770 + 44.8052 + 89.6544 = 217.7797 -> alpha = 65.84: the
    # estimate leans towards the latest level.
    regs = _regs()
    macro = _macro([30.0 if 101 <= i <= 200 else 10.0 for i in range(400)])
    rm = register_macro(regs, macro, NO_GAS)
    reads = [(0, 0), (60, 3_600), (120, 7_000), (180, 10_000), (240, 13_400), (300, 18_800)]
    pairs, _ = read_pairs(regs, _reads(reads))
    pm = _with_pair_sums(pairs, rm)
    monkeypatch.setattr(basic_pairs, "RECENCY_HALF_LIFE_DAYS", None)
    flat = fit_registers(regs, pm, day(301), "seasonal").to_dicts()[0]
    assert (flat["components"], round(flat["alpha"], 3)) == (1, 62.667)
    monkeypatch.setattr(basic_pairs, "RECENCY_HALF_LIFE_DAYS", 180.0)
    fit = fit_registers(regs, pm, day(301), "seasonal").to_dicts()[0]
    assert (fit["model"], fit["components"], round(fit["alpha"], 2)) == ("SEASONAL", 1, 65.84)


GAS_IDS = [1, 2, 3, 4, 5, 6, 7]
GAS_CLASSES = ["BUS"] * 4 + ["RES"] * 3
# index after 100 days of a flat gas shape M = 1/day: s_r = index ÷ 100 (None: no reads)
GAS_INDEX = [200, 400, 1000, None, 300, 500, None]


def _gas_case() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(registers, reads, windows, gas macro): seven SA gas registers, flat gas shape 1/day."""
    n = len(GAS_IDS)
    regs = pl.concat([_regs()] * n).with_columns(
        meter_register_id=pl.Series(GAS_IDS),
        account_id=pl.Series([10 + i for i in GAS_IDS]),
        nmi=pl.Series([f"N{i}" for i in GAS_IDS]),
        service_type=pl.lit("GAS"),
        unit=pl.lit("MJ"),
        customer_class=pl.Series(GAS_CLASSES),
        jurisdiction=pl.lit("SA"),
    )
    with_reads = [(i, v) for i, v in zip(GAS_IDS, GAS_INDEX, strict=True) if v is not None]
    reads = pl.DataFrame(
        {
            "meter_register_id": [i for i, _ in with_reads for _ in (0, 1)],
            "read_date": [day(d) for _ in with_reads for d in (0, 100)],
            "index_value": [float(x) for _, v in with_reads for x in (0, v)],
            "quality": ["A"] * (2 * len(with_reads)),
        }
    )
    windows = pl.DataFrame(
        {
            "account_id": [10 + i for i in GAS_IDS],
            "unbilled_from": [day(110)] * n,
            "unbilled_to": [day(110)] * n,
        }
    )
    gas = pl.DataFrame(
        {"jurisdiction": "SA", "read_date": [day(i) for i in range(130)], "daily": 1.0, "w": 0.0, "wh": 0.0}
    )
    return regs, reads, windows, gas


def _day_110(regs, reads, windows, gas, method="seasonal", class_scalars=None) -> dict[int, float]:  # noqa: ANN001
    usage, _, _ = estimate_basic(
        regs,
        windows,
        reads,
        _macro([1.0] * 130),
        gas,
        day(120),
        day(119),
        method,
        class_scalars=class_scalars,
    )
    return {r["meter_register_id"]: r["values"][0] for r in usage.to_dicts()}


def test_gas_class_scalars_are_the_median_over_every_register_given() -> None:
    # s_r = index after 100 days ÷ Σ M (100): BUS 2, 4, 10 → median 4 over 3 registers; RES has
    # only 2 registers with history (3, 5): fewer than MIN_CLASS_REGISTERS = 3, no median
    regs, reads, _, gas = _gas_case()
    pairs, _ = read_pairs(regs, reads)
    got = gas_class_scalars(regs, pairs, _macro([1.0] * 130), gas, day(120))
    assert got.rows() == [("BUS", "SA", 4.0, 3)]


def test_a_new_gas_register_gets_the_same_estimate_whatever_the_shard_count() -> None:
    # register 4 (BUS, SA, no reads) on day 110: the class median 4 × M (1) = 4.0 with one shard;
    # split into shard A (1, 4, 5, 7) and shard B (2, 3, 6), shard A's estimate with the medians
    # over all shards (the gas_shape phase's gas_class_scalars) is 4.0 too; with the medians of
    # its own shard only it would be 1.0 (one BUS register with history, fewer than 3). Register
    # 7 (RES, no reads) keeps 1.0: RES has no median (2 registers with history)
    regs, reads, windows, gas = _gas_case()
    whole = _day_110(regs, reads, windows, gas)
    assert (whole[4], whole[7]) == (pytest.approx(4.0), pytest.approx(1.0))
    cs = gas_class_scalars(regs, read_pairs(regs, reads)[0], _macro([1.0] * 130), gas, day(120))
    shard_a = regs.filter(pl.col("meter_register_id").is_in([1, 4, 5, 7]))
    assert _day_110(shard_a, reads, windows, gas, class_scalars=cs)[4] == pytest.approx(4.0)
    assert _day_110(shard_a, reads, windows, gas)[4] == pytest.approx(1.0)
    # the register with history is estimated on its own scalar: register 1, 2 × 1 = 2.0
    assert whole[1] == pytest.approx(2.0)


def test_scalar_method_keeps_spec_scalar_one_for_a_new_gas_register() -> None:
    # SPEC §4.3 as written: no usable history → s_r = 1, so 1 × M(110) = 1.0 even with a class
    # median of 4 given; NO_HISTORY says scalar 1. Under seasonal NO_HISTORY names the median.
    regs, reads, windows, gas = _gas_case()
    cs = gas_class_scalars(regs, read_pairs(regs, reads)[0], _macro([1.0] * 130), gas, day(120))
    assert _day_110(regs, reads, windows, gas, "scalar", cs)[4] == pytest.approx(1.0)
    for method, words in (("scalar", "scalar 1"), ("seasonal", "median scalar")):
        _, _, exc = estimate_basic(
            regs, windows, reads, _macro([1.0] * 130), gas, day(120), day(119), method, class_scalars=cs
        )
        detail = exc.filter(pl.col("meter_register_id") == 4)["detail"].to_list()
        assert len(detail) == 1 and words in detail[0]


def test_gas_register_without_history_takes_its_class_median_scalar() -> None:
    # the gas shape is one per jurisdiction (all classes): a new business gas register at scalar 1
    # would be estimated as the average gas register, mostly residential. The class medians (BUS,
    # SA: 4; no RES median) give register 4 (BUS, SA, no history) 4; register 5 (RES, SA, no
    # history) keeps 1; register 8 (electricity, no history) keeps 1: its macro profile is
    # already its segment's average register.
    ids = [1, 2, 3, 4, 5, 6, 7, 8]
    regs = pl.DataFrame(
        {
            "meter_register_id": ids,
            "account_id": [10 + i for i in ids],
            "service_type": ["GAS"] * 7 + ["ELECTRICITY"],
            "customer_class": ["BUS"] * 4 + ["RES"] * 3 + ["BUS"],
            "jurisdiction": ["SA"] * 8,
        }
    )
    models = pl.DataFrame(
        {
            "meter_register_id": ids,
            "model": ["SEASONAL", "SCALAR", "WEATHER", "NONE", "NONE", "SCALAR", "SCALAR", "NONE"],
            "scalar": [2.0, 4.0, 10.0, 1.0, 1.0, 3.0, 5.0, 1.0],
        }
    )
    medians = pl.DataFrame(
        {"customer_class": ["BUS"], "jurisdiction": ["SA"], "scalar": [4.0], "registers": [3]}
    )
    got = _with_class_scalars(models, regs, medians)
    assert got.columns == models.columns
    assert got["scalar"].to_list() == [2.0, 4.0, 10.0, 4.0, 1.0, 3.0, 5.0, 1.0]
