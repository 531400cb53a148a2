"""The weather model of basic registers (CalTRACK billing-period method), on frames computed by hand."""

from __future__ import annotations

import math

import polars as pl
import pytest

from tasks.domain import basic_weather
from tasks.domain.basic_estimate import (
    _with_pair_sums,
    estimate_basic,
    read_pairs,
    register_macro,
    weather_balance_points,
)
from tasks.domain.basic_weather import (
    _near_pooled_balance_points,
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


def _gas_copy(regs: pl.DataFrame, reads: pl.DataFrame, offset: int = 10) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The registers and reads as gas registers (ids + ``offset``), the same pairs."""
    gas = regs.with_columns(
        meter_register_id=pl.col("meter_register_id") + offset, account_id=pl.col("account_id") + offset,
        nmi=pl.col("nmi") + "G", service_type=pl.lit("GAS"), unit=pl.lit("MJ"),
    )  # fmt: skip
    return gas, reads.with_columns(meter_register_id=pl.col("meter_register_id") + offset)


def _flat_gas() -> pl.DataFrame:
    # a flat NSW gas shape (1 a day, base b = 1), as the electricity macro is flat
    return NO_GAS.vstack(
        pl.DataFrame(
            {
                "jurisdiction": "NSW",
                "read_date": [day(i) for i in range(420)],
                "daily": 1.0,
                "w": 0.0,
                "wh": 0.0,
            }
        )
    )


def test_gas_population_with_spread_gets_per_register_points_electricity_keeps_the_pooled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # POP_USE twice: registers 1-3 electricity, 11-13 gas (the same pairs), two populations (NSW RES
    # electricity, NSW RES gas) whose pooled heating point is 16 °C each (the test above). Each gas
    # register fits its own point exactly (11, 12: 16; 13: 18; 13 pairs each): its own point's
    # n·ln(relative SSE) is 13·ln(1e-12) (clipped) and its neighbours' far above, so the curvature c is
    # large and s² = 2/c + 1/12 ≈ 1/12 (the grid's rounding), w ≈ 12. Then m = (16 + 16 + 18)/3,
    # Q ≈ 12·((2/3)² + (2/3)² + (4/3)²) = 32 > χ²(2) at 0.90 (4.56), τ² = (Q − 2)/(Σw − Σw²/Σw) ≈
    # (32 − 2)/(36 − 12) = 1.25 (exactly Σd²/2 − 1/w = 4/3 − s²: 1.24 … 1.25 for s² between 1/12 and
    # 0.093), h_sd ≈ 1.118. Gas 13 then takes 18: 13·ln(1e-12) + (18 − 16)²/1.25 = −359.2 + 3.2,
    # while at 16 its relative SSE is far above e^(−356 / 13) (asserted below). Electricity keeps
    # the pooled 16 (h_sd null: no prior) and its models are bit-equal to those without the rule.
    regs, reads, temp, use = _population()
    gas, gas_reads = _gas_copy(regs, reads)
    regs, reads = pl.concat([regs, gas]), pl.concat([reads, gas_reads])
    macro, flat_gas = _macro([10.0] * 420), _flat_gas()
    pm = _with_pair_sums(read_pairs(regs, reads)[0], register_macro(regs, macro, flat_gas))
    dd = degree_day_table(fill_temperature(temp))
    chosen = pooled_balance_points(regs, pm, dd, day(400))
    heat = chosen.filter(pl.col("wmodel") == "HEAT").sort("service_type")
    assert heat.select("service_type", "h_bp").rows() == [("ELECTRICITY", 16.0), ("GAS", 16.0)]
    assert heat["h_sd"][0] is None and heat["h_sd"][1] == pytest.approx(math.sqrt(1.245), abs=0.003)
    wm = {r["meter_register_id"]: r for r in fit_weather_models(regs, pm, dd, day(400), chosen).to_dicts()}
    assert [wm[i]["h_bp"] for i in (1, 2, 3, 11, 12, 13)] == [16.0] * 5 + [18.0]
    m13 = (wm[13]["w_alpha"], wm[13]["beta_h"], wm[13]["w_pairs"])
    assert m13 == pytest.approx((100.0, 0.2, 13), abs=1e-6)
    assert wm[3]["beta_h"] != pytest.approx(0.2, abs=1e-3)
    # without the rule (every register at its population's points) gas 13 takes 16 and every
    # electricity register's model is the same, to the bit
    monkeypatch.setattr(basic_weather, "BP_PRIOR", False)
    assert pooled_balance_points(regs, pm, dd, day(400))["h_sd"].null_count() == chosen.height
    off = {r["meter_register_id"]: r for r in fit_weather_models(regs, pm, dd, day(400), chosen).to_dicts()}
    assert off[13]["h_bp"] == 16.0
    assert [off[i] for i in (1, 2, 3)] == [wm[i] for i in (1, 2, 3)]
    monkeypatch.undo()
    # register 13's relative SSE at the pooled 16 (the candidate the prior favours)
    res, _ = basic_weather._solved_candidates(gas.filter(pl.col("meter_register_id") == 13), pm, dd, day(400))
    at16 = res.filter((pl.col("wmodel") == "HEAT") & (pl.col("h_bp") == 16.0))["_sse_rel"][0]
    assert 13 * math.log(at16) > -355.0
    # its estimate after the last read (day 390) is its true use, 100 + 0.2·HDD_18(d)
    windows = pl.DataFrame({"account_id": [23], "unbilled_from": [day(392)], "unbilled_to": [day(395)]})
    usage, ebr, _ = estimate_basic(
        gas.filter(pl.col("meter_register_id") == 13), windows, reads, macro, flat_gas, day(396), day(395),
        "seasonal", temperature=temp, balance_points=chosen,
    )  # fmt: skip
    assert ebr["method"].to_list() == ["WEATHER"]
    assert [v[0] for v in usage["values"]] == pytest.approx(use[3][392:396], abs=1e-6)


def test_gas_population_heating_from_one_point_keeps_the_pooled_point() -> None:
    # gas registers 11-13 all use (5 + 2·HDD_16)·i (i = 1, 2, 3): each register's own best point is
    # 16 (an exact fit), so Q = Σ w·(16 − 16)² = 0 ≤ χ²(2): h_sd 0, every register at the pooled 16,
    # and the models are bit-equal to those at the pooled points (the rule off)
    regs, reads, temp, _ = _population()
    one = reads.filter(pl.col("meter_register_id") == 1).drop("meter_register_id")
    gas, gas_reads = _gas_copy(regs, one.join(regs.select("meter_register_id"), how="cross"))
    gas_reads = gas_reads.with_columns(index_value=pl.col("index_value") * (pl.col("meter_register_id") - 10))
    flat_gas = _flat_gas()
    pm = _with_pair_sums(read_pairs(gas, gas_reads)[0], register_macro(gas, _macro([10.0] * 420), flat_gas))
    dd = degree_day_table(fill_temperature(temp))
    chosen = pooled_balance_points(gas, pm, dd, day(400))
    assert chosen.select("wmodel", "h_bp", "h_sd").rows() == [("HEAT", 16.0, 0.0)]
    wm = fit_weather_models(gas, pm, dd, day(400), chosen).sort("meter_register_id")
    assert wm["h_bp"].to_list() == [16.0] * 3
    assert wm["beta_h"].to_list() == pytest.approx([2.0, 4.0, 6.0], abs=1e-6)
    assert wm.equals(
        fit_weather_models(gas, pm, dd, day(400), chosen.with_columns(h_sd=None)).sort("meter_register_id")
    )


def test_prior_sd_by_hand() -> None:
    # profiles f(H) = n·ln(relative SSE) as _solved leaves them (_rsse = e^(f/n)), HEAT candidates.
    # NSW GAS RES: registers 1, 2, 3 (5 pairs) best at 15, 17, 19 with f(Ĥ) = −10, f(Ĥ ± 1) = −8:
    # c = 4, s² = 2/4 + 1/12 = 7/12, w = 12/7 each; m = 17, Q = (12/7)·(4 + 0 + 4) = 96/7 = 13.71
    # > χ²(2) at 0.90 (Wilson–Hilferty 2·(1 − 1/9 + 1.2816/3)³ = 4.56); Σw = 36/7, Σw² / Σw = 12/7:
    # τ² = (96/7 − 2)/(24/7) = 41/12, h_sd = √(41/12) = 1.848. Not counted: register 4 (4 pairs),
    # register 5 (best at the grid's edge, 10), register 6 (its best candidate does not qualify).
    # VIC GAS RES: registers 11-13 all best at 17 (curvatures 4, 4, 8): Q = 0, h_sd 0.
    # VIC GAS SME: registers 21, 22 best at 16 and 18 with c = 2: s² = 1 + 1/12, w = 12/13; m = 17,
    # Q = 2·(12/13)·1 = 1.85 > ν = 1 (DerSimonian–Laird alone would give τ² = 0.85/(12/13) = 0.92)
    # but below χ²(1) at 0.90 (Wilson–Hilferty (1 − 2/9 + 1.2816·√(2/9))³ = 2.64): h_sd 0.
    # NSW ELECTRICITY RES: no prior (null).
    def prof(reg: int, best: float, lo: float, hi: float, n: int = 5, good: bool = True) -> list[dict]:
        rows = [(best - 1, lo), (best, -10.0), (best + 1, hi)]
        return [
            {
                "meter_register_id": reg,
                "h_bp": h,
                "w_pairs": n,
                "_good": good or h != best,
                "_rsse": math.exp(f / n),
            }
            for h, f in rows
            if 10.0 <= h <= 22.0
        ]

    rows = [
        *prof(1, 15.0, -8.0, -8.0), *prof(2, 17.0, -8.0, -8.0), *prof(3, 19.0, -8.0, -8.0),
        *prof(4, 17.0, -1.0, -1.0, n=4), *prof(5, 10.0, 0.0, -9.0), *prof(6, 20.0, -9.0, -9.0, good=False),
        *prof(11, 17.0, -8.0, -8.0), *prof(12, 17.0, -8.0, -8.0), *prof(13, 17.0, -6.0, -6.0),
        *prof(21, 16.0, -9.0, -9.0), *prof(22, 18.0, -9.0, -9.0), *prof(31, 17.0, -8.0, -8.0),
    ]  # fmt: skip
    res = pl.DataFrame(rows).with_columns(wmodel=pl.lit("HEAT"), c_bp=pl.lit(None, pl.Float64))
    juris = {1: "NSW", 2: "NSW", 3: "NSW", 4: "NSW", 5: "NSW", 6: "NSW", 31: "NSW"}
    regs = pl.DataFrame(
        {
            "meter_register_id": [1, 2, 3, 4, 5, 6, 11, 12, 13, 21, 22, 31],
            "jurisdiction": [juris.get(i, "VIC") for i in (1, 2, 3, 4, 5, 6, 11, 12, 13, 21, 22, 31)],
            "service_type": ["GAS"] * 11 + ["ELECTRICITY"],
            "_class": ["RES"] * 9 + ["SME", "SME", "RES"],
        }
    )
    chosen = pl.DataFrame(
        {
            "jurisdiction": ["NSW", "VIC", "VIC", "NSW"],
            "service_type": ["GAS", "GAS", "GAS", "ELECTRICITY"],
            "customer_class": ["RES", "RES", "SME", "RES"],
            "wmodel": "HEAT",
            "h_bp": [17.0, 17.0, 17.0, 17.0],
            "c_bp": pl.Series([None] * 4, dtype=pl.Float64),
            "registers": pl.Series([6, 3, 2, 1], dtype=pl.UInt32),
            "h_sd": pl.Series([None] * 4, dtype=pl.Float64),
        }
    )
    out = basic_weather._with_prior_sd(chosen.drop("h_sd"), res, regs)
    assert out["h_sd"].to_list() == [pytest.approx(math.sqrt(41 / 12)), 0.0, 0.0, None]


def test_register_balance_point_with_the_population_prior_by_hand() -> None:
    # candidates as _solved leaves them (relative SSE, SSE, SST, parameters k = 2 for HEAT); the gas
    # population's pooled heating point is 16 °C. Criterion n·ln(SSE_rel) + (H − 16)² / h_sd²:
    # register 1 (5 pairs), h_sd 1: 16 → 5·ln 0.10 = −11.513; 17 → 5·ln 0.08 + 1 = −11.629;
    # 18 → 5·ln 0.07 + 4 = −9.296: 17 wins, a point off the population's costing a degree of freedom:
    # residual mean square 0.16 / (5 − 2 − 1) = 0.08, adjusted R² 1 − (0.16 / 10)·(5 − 1) / 2 = 0.968.
    # With h_sd 0.5, 17 scores −12.629 + 4 = −8.629: 16 stays (its own dof 3: 0.2 / 3, 1 − 0.02·4 / 3);
    # with h_sd 0 (a population without spread) only 16 is a candidate.
    # Register 2 (3 pairs) fits 17 far better, but off the population's point it would have no
    # degree of freedom left (3 − 2 − 1 = 0): 16 (mse 0.4 / 1). Register 3's population (SA) has no
    # pooled HEAT point: no candidate.
    res = pl.DataFrame(
        {
            "meter_register_id": [1, 1, 1, 2, 2, 3],
            "wmodel": "HEAT",
            "h_bp": [16.0, 17.0, 18.0, 16.0, 17.0, 16.0],
            "c_bp": pl.Series([None] * 6, dtype=pl.Float64),
            "w_pairs": [5, 5, 5, 3, 3, 5],
            "adj_r2": 0.0,
            "w_mse": 0.0,
            "_good": True,
            "_sse_rel": [0.10, 0.08, 0.07, 0.20, 0.01, 0.1],
            "_sse": [0.20, 0.16, 0.14, 0.40, 0.02, 0.2],
            "_sst": 10.0,
            "_k": 2.0,
        }
    )
    regs = pl.DataFrame(
        {
            "meter_register_id": [1, 2, 3],
            "jurisdiction": ["NSW", "NSW", "SA"],
            "service_type": "GAS",
            "_class": "RES",
        }
    )

    def pick(sd: float) -> list[tuple]:
        chosen = pl.DataFrame(
            {
                "jurisdiction": ["NSW"],
                "service_type": ["GAS"],
                "customer_class": ["RES"],
                "wmodel": ["HEAT"],
                "h_bp": [16.0],
                "c_bp": pl.Series([None], dtype=pl.Float64),
                "registers": pl.Series([2], dtype=pl.UInt32),
                "h_sd": [sd],
            }
        )
        out = _near_pooled_balance_points(res, regs, chosen).sort("meter_register_id")
        return out.select("meter_register_id", "h_bp", "w_mse", "adj_r2").rows()

    assert pick(1.0) == [
        (1, 17.0, pytest.approx(0.08), pytest.approx(0.968)),
        (2, 16.0, pytest.approx(0.4), pytest.approx(1 - 0.04 * 2 / 1)),
    ]
    stays = [
        (1, 16.0, pytest.approx(0.2 / 3), pytest.approx(1 - 0.02 * 4 / 3)),
        (2, 16.0, pytest.approx(0.4), pytest.approx(0.92)),
    ]
    assert pick(0.5) == stays
    assert pick(0.0) == stays
