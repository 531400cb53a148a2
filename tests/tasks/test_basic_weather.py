"""The weather model of basic registers (CalTRACK billing-period method), on frames computed by hand."""

from __future__ import annotations

import math

import polars as pl
import pytest

from tasks.domain.basic_estimate import (
    _with_pair_sums,
    estimate_basic,
    read_pairs,
    register_macro,
    weather_balance_points,
)
from tasks.domain.basic_weather import (
    degree_day_table,
    fill_temperature,
    fit_weather_models,
    pooled_balance_points,
    range_dd,
    t_critical,
)
from tests.tasks.test_basic_estimate import NO_GAS, _macro, _reads, _regs, day


def _temps(n: int = 420) -> list[float]:
    # an annual cycle plus a "weather" wiggle no annual curve follows: 15 + 8·cos(2π(d − 180)/365) + 3·sin(0.7·d)
    return [15 + 8 * math.cos(2 * math.pi * (d - 180) / 365) + 3 * math.sin(0.7 * d) for d in range(n)]


def _case(true, n_pairs: int = 13, every: int = 30):
    temps = _temps()
    temp = pl.DataFrame(
        {"jurisdiction": "NSW", "read_date": [day(i) for i in range(len(temps))], "temp": temps}
    )
    use = [true(t) for t in temps]
    reads, idx = [], 1000.0
    for k in range(n_pairs + 1):
        d = k * every
        if k:
            idx += sum(use[d - every + 1 : d + 1])  # a read closes its day: days prev + 1 … d
        reads.append((d, round(idx, 9)))
    return temp, use, reads


def test_degree_days_and_range_sums_by_hand() -> None:
    # temperatures 10, 20, missing, 14 on days 0-3: day 2 interpolated to 17. HDD at 16: 6, 0, 0, 2;
    # CDD at 18: 0, 2, 0, 0. Σ HDD_16 over days 1-3 = 0 + 0 + 2 = 2; over day 0 alone = 6; an empty
    # range (first > last) is 0
    temp = pl.DataFrame(
        {"jurisdiction": "NSW", "read_date": [day(0), day(1), day(3)], "temp": [10.0, 20.0, 14.0]}
    )
    filled = fill_temperature(temp)
    assert filled["temp"].to_list() == [10.0, 20.0, 17.0, 14.0]
    dd = degree_day_table(filled)
    h16 = dd.filter((pl.col("kind") == "H") & (pl.col("bp") == 16.0))["dd"].to_list()
    c18 = dd.filter((pl.col("kind") == "C") & (pl.col("bp") == 18.0))["dd"].to_list()
    assert h16 == [6.0, 0.0, 0.0, 2.0] and c18 == [0.0, 2.0, 0.0, 0.0]
    f = pl.DataFrame(
        {"jurisdiction": "NSW", "a": [day(1), day(0), day(3)], "z": [day(3), day(0), day(2)], "bp": 16.0}
    )
    assert range_dd(f, "a", "z", "H", "bp", dd, "s")["s"].to_list() == [2.0, 6.0, 0.0]


def test_t_critical_values() -> None:
    # two-sided p = 0.10: 6.314 at 1 dof, 2.920 at 2, 1.697 at 30, the normal's 1.645 beyond
    assert t_critical([1, 2, 30, 200]).tolist() == [6.314, 2.920, 1.697, 1.645]


def test_heating_register_recovers_its_balance_point_and_slope() -> None:
    # the register truly uses 5 + 2·max(0, 16 − T) kWh a day (flat base: M constant, b = 1) and is
    # read every 30 days: the heating model at 16 °C fits exactly (adjusted R² 1) and wins; every other
    # balance point leaves a residual; the cooling and two-term candidates add nothing (β_c ~ 0 is not > 0
    # significantly, and a tie goes to the model with fewer terms)
    temp, use, reads = _case(lambda t: 5 + 2 * max(0.0, 16 - t))
    regs = _regs()
    macro = _macro([10.0] * 420)
    pairs, _ = read_pairs(regs, _reads(reads))
    pm = _with_pair_sums(pairs, register_macro(regs, macro, NO_GAS))
    dd = degree_day_table(fill_temperature(temp))
    wm = fit_weather_models(regs, pm, dd, day(400)).to_dicts()
    assert len(wm) == 1
    m = wm[0]
    assert (m["wmodel"], m["h_bp"], m["w_pairs"]) == ("HEAT", 16.0, 13)
    assert (m["w_alpha"], m["beta_h"], m["beta_c"]) == pytest.approx((5.0, 2.0, 0.0), abs=1e-6)
    # estimation: a day after the last read (day 390) is 5 + 2·HDD_16(d); the index at period end
    # (day 395) = last index + Σ days 391-395; method WEATHER, flag 65 (ADL)
    windows = pl.DataFrame({"account_id": [11], "unbilled_from": [day(392)], "unbilled_to": [day(395)]})
    usage, ebr, _ = estimate_basic(
        regs, windows, _reads(reads), macro, NO_GAS, day(396), day(395), "seasonal", temperature=temp
    )
    assert [v[0] for v in usage["values"]] == pytest.approx(use[392:396], abs=1e-6)
    assert ebr.select("method", "method_flag").rows() == [("WEATHER", "65")]
    assert ebr["consumption"][0] == pytest.approx(round(sum(use[391:396]), 3), abs=2e-3)
    # without temperature the same register keeps the method without weather
    _, ebr0, _ = estimate_basic(regs, windows, _reads(reads), macro, NO_GAS, day(396), day(395), "seasonal")
    assert ebr0["method"].to_list() != ["WEATHER"]


def test_heating_and_cooling_register_and_too_few_pairs() -> None:
    # 3 + 1.5·HDD_14 + 2.5·CDD_19: the two-term model at (14, 19) fits exactly and wins
    temp, use, reads = _case(lambda t: 3 + 1.5 * max(0.0, 14 - t) + 2.5 * max(0.0, t - 19))
    regs = _regs()
    rm = register_macro(regs, _macro([10.0] * 420), NO_GAS)
    dd = degree_day_table(fill_temperature(temp))
    pairs, _ = read_pairs(regs, _reads(reads))
    m = fit_weather_models(regs, _with_pair_sums(pairs, rm), dd, day(400)).row(0, named=True)
    assert (m["wmodel"], m["h_bp"], m["c_bp"]) == ("BOTH", 14.0, 19.0)
    assert (m["w_alpha"], m["beta_h"], m["beta_c"]) == pytest.approx((3.0, 1.5, 2.5), abs=1e-6)
    # estimated with it: days 392-395 after the last read (day 390) are 3 + 1.5·HDD_14(d) +
    # 2.5·CDD_19(d), the true use (no cooling on those cold days, T ≈ 7-11 °C)
    windows = pl.DataFrame({"account_id": [11], "unbilled_from": [day(392)], "unbilled_to": [day(395)]})
    usage, ebr, _ = estimate_basic(
        regs, windows, _reads(reads), _macro([10.0] * 420), NO_GAS, day(396), day(395), "seasonal",
        temperature=temp,
    )  # fmt: skip
    assert ebr["method"].to_list() == ["WEATHER"]
    assert [v[0] for v in usage["values"]] == pytest.approx(use[392:396], abs=1e-6)
    # two pairs: fewer than MIN_PAIRS (3) -> no weather model (the register keeps its method)
    pairs2, _ = read_pairs(regs, _reads(reads[:3]))
    assert fit_weather_models(regs, _with_pair_sums(pairs2, rm), dd, day(400)).height == 0


def test_gas_registers_get_heating_only() -> None:
    # a gas register that (oddly) follows cooling: no COOL or BOTH candidate for gas -> none qualifies
    temp, _, reads = _case(lambda t: 3 + 2.5 * max(0.0, t - 19))
    regs = _regs().with_columns(service_type=pl.lit("GAS"))
    rm = register_macro(regs, _macro([10.0] * 420), NO_GAS)
    pairs, _ = read_pairs(regs, _reads(reads))
    wm = fit_weather_models(
        regs, _with_pair_sums(pairs, rm), degree_day_table(fill_temperature(temp)), day(400)
    )
    assert set(wm["wmodel"].to_list()) <= {"HEAT"}


def test_cooling_only_register_is_estimated_from_its_cooling_degree_days() -> None:
    # 4 + 3·max(0, T − 20): the cooling model at 20 °C (no heating term: its HDD count 0 in the
    # daily estimate), a day after the last read (day 390) = 4 + 3·CDD_20(d)
    temp, use, reads = _case(lambda t: 4 + 3 * max(0.0, t - 20))
    regs = _regs()
    macro = _macro([10.0] * 420)
    windows = pl.DataFrame({"account_id": [11], "unbilled_from": [day(391)], "unbilled_to": [day(399)]})
    usage, ebr, _ = estimate_basic(
        regs, windows, _reads(reads), macro, NO_GAS, day(400), day(399), "seasonal", temperature=temp
    )
    assert ebr["method"].to_list() == ["WEATHER"]
    assert [v[0] for v in usage["values"]] == pytest.approx(use[391:400], abs=1e-6)


# three NSW electricity RES registers (one population) read every 30 days: 1 and 2 use
# 5 + 2·HDD_16 a day, 3 uses 100 + 0.2·HDD_18
POP_USE = {
    1: lambda t: 5 + 2 * max(0.0, 16 - t),
    2: lambda t: 5 + 2 * max(0.0, 16 - t),
    3: lambda t: 100 + 0.2 * max(0.0, 18 - t),
}


def _population() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[int, list[float]]]:
    """(registers, reads, temperature, true daily use per register) of ``POP_USE``."""
    regs = pl.concat(
        [
            _regs().with_columns(
                meter_register_id=pl.lit(i, pl.Int64),
                account_id=pl.lit(10 + i, pl.Int64),
                nmi=pl.lit(f"N{i}"),
            )
            for i in POP_USE
        ]
    )
    reads, uses = [], {}
    for i, true in POP_USE.items():
        temp, uses[i], rows = _case(true)
        reads.append(_reads(rows).with_columns(meter_register_id=pl.lit(i, pl.Int64)))
    return regs, pl.concat(reads), temp, uses


def _heat_bp(chosen: pl.DataFrame) -> list[float]:
    return chosen.filter(pl.col("wmodel") == "HEAT")["h_bp"].to_list()


def test_pooled_balance_points_are_chosen_over_every_shard() -> None:
    # the pooled heating balance point minimises the population's total relative residual. At 16
    # registers 1 and 2 fit exactly (residual 0) and register 3 leaves a tiny one (its use varies by
    # a few % around 100); at 18 register 3 fits exactly but 1 and 2 (use varying 5 … ~25) leave a
    # large one each: 16 over all three. Shard B = {3} alone would choose 18 (its exact fit).
    regs, reads, temp, use = _population()
    macro = _macro([10.0] * 420)
    pm = _with_pair_sums(read_pairs(regs, reads)[0], register_macro(regs, macro, NO_GAS))
    dd = degree_day_table(fill_temperature(temp))
    shard_a, shard_b = (regs.filter(pl.col("meter_register_id").is_in(ids)) for ids in ([1, 2], [3]))
    assert _heat_bp(pooled_balance_points(regs, pm, dd, day(400))) == [16.0]
    assert _heat_bp(pooled_balance_points(shard_b, pm, dd, day(400))) == [18.0]
    # the balance points over all registers (what the balance_points phase writes) from the reads
    chosen = weather_balance_points(regs, reads, macro, NO_GAS, day(396), day(395), temp)
    assert chosen.filter(pl.col("wmodel") == "HEAT").select("customer_class", "h_bp", "registers").rows() == [
        ("RES", 16.0, 3)
    ]
    # register 3 in shard B: at the shard's own 18 it is fitted exactly (0.2 per HDD_18); at the
    # population's 16 it gets a slope on HDD_16 instead, as with one shard
    own = fit_weather_models(shard_b, pm, dd, day(400)).row(0, named=True)
    assert (own["h_bp"], own["beta_h"]) == (18.0, pytest.approx(0.2, abs=1e-9))
    pooled = fit_weather_models(shard_b, pm, dd, day(400), chosen).row(0, named=True)
    whole = fit_weather_models(regs, pm, dd, day(400)).filter(pl.col("meter_register_id") == 3)
    assert pooled == whole.row(0, named=True) and pooled["h_bp"] == 16.0
    # the estimates: one shard == shards {1, 2} and {3} given the balance points over both; shard
    # B alone would estimate register 3 at its true use (18), not as one shard does
    windows = pl.DataFrame({"account_id": [11, 12, 13], "unbilled_from": day(392), "unbilled_to": day(395)})

    def usage(r: pl.DataFrame, bp: pl.DataFrame | None = None) -> pl.DataFrame:
        u, _, _ = estimate_basic(
            r,
            windows,
            reads,
            macro,
            NO_GAS,
            day(396),
            day(395),
            "seasonal",
            temperature=temp,
            balance_points=bp,
        )
        return u.select("meter_register_id", "read_date", "values").sort("meter_register_id", "read_date")

    one = usage(regs)
    two = pl.concat([usage(shard_a, chosen), usage(shard_b, chosen)])
    assert one.equals(two)
    alone = usage(shard_b)
    assert [v[0] for v in alone["values"]] == pytest.approx(use[3][392:396], abs=1e-6)
    assert not alone.equals(one.filter(pl.col("meter_register_id") == 3))
