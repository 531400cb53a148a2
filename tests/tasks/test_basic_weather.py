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
    BALANCE_POINT_SCHEMA,
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


# --- empirical-Bayes shrinkage of electricity two-term models (basic_weather._shrunk_models) ---


def _both_case() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[float], list[float]]:
    """(registers, pair sums, degree-day table, temperatures, true use) of a register using
    3 + 1.5·HDD_14 + 2.5·CDD_19 a day, read every 30 days (13 pairs, days 1 … 390)."""
    temp, use, reads = _case(lambda t: 3 + 1.5 * max(0.0, 14 - t) + 2.5 * max(0.0, t - 19))
    regs = _regs()
    rm = register_macro(regs, _macro([10.0] * 420), NO_GAS)
    pm = _with_pair_sums(read_pairs(regs, _reads(reads))[0], rm)
    return regs, pm, degree_day_table(fill_temperature(temp)), _temps(), use


def _prior(prior: tuple[float, float, float], tau2: tuple[float, float, float], s2: float) -> pl.DataFrame:
    """The NSW electricity RES population's BOTH balance points (14, 19) with a prior."""
    row = {
        "jurisdiction": "NSW", "service_type": "ELECTRICITY", "customer_class": "RES", "wmodel": "BOTH",
        "h_bp": 14.0, "c_bp": 19.0, "registers": 1,
        "prior_a": prior[0], "prior_h": prior[1], "prior_c": prior[2],
        "tau2_a": tau2[0], "tau2_h": tau2[1], "tau2_c": tau2[2], "s2": s2,
    }  # fmt: skip
    return pl.DataFrame([row]).cast(BALANCE_POINT_SCHEMA)  # type: ignore[arg-type]


def test_shrinkage_extremes_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    # no recency weighting: each pair weighs its days (30), so the weighted means over the pairs
    # are plain means over days 1 … 390
    monkeypatch.setattr("tasks.domain.basic_pairs.RECENCY_HALF_LIFE_DAYS", None)
    regs, pm, dd, temps, use = _both_case()
    # a prior the register does not follow, with a huge between-register variance (τ² = 1e12):
    # Λ = s²/τ² ≈ 0, the posterior is the register's own least-squares fit, exact here (3, 1.5, 2.5)
    loose = fit_weather_models(regs, pm, dd, day(400), _prior((0.5, 0.3, 0.1), (1e12, 1e12, 1e12), 0.01))
    m = loose.row(0, named=True)
    assert (m["wmodel"], m["h_bp"], m["c_bp"], m["w_pairs"]) == ("BOTH", 14.0, 19.0, 13)
    assert (m["w_alpha"], m["beta_h"], m["beta_c"]) == pytest.approx((3.0, 1.5, 2.5), abs=1e-6)
    # slopes pinned to the prior (τ²_h = τ²_c = 1e-14: Λ ≈ 1e12 against XᵀWX ≈ 1e5), base free
    # (τ²_a = 1e12): β_h = 0.3·ȳ, β_c = 0.1·ȳ with ȳ the register's mean daily use over days
    # 1 … 390, and the base's normal equation (b = 1: a flat macro profile) gives
    # α = ȳ − β_h·mean HDD_14 − β_c·mean CDD_19 over the same days
    pinned = fit_weather_models(regs, pm, dd, day(400), _prior((0.5, 0.3, 0.1), (1e12, 1e-14, 1e-14), 0.01))
    p = pinned.row(0, named=True)
    ybar = sum(use[1:391]) / 390
    hdd = sum(max(0.0, 14 - t) for t in temps[1:391]) / 390
    cdd = sum(max(0.0, t - 19) for t in temps[1:391]) / 390
    assert (p["beta_h"], p["beta_c"]) == pytest.approx((0.3 * ybar, 0.1 * ybar), rel=1e-6)
    assert p["w_alpha"] == pytest.approx(ybar - 0.3 * ybar * hdd - 0.1 * ybar * cdd, rel=1e-6)
    # its residual mean square is that of the pinned model's residuals over ~11 free degrees of
    # freedom (13 pairs − 1 fitted parameter − ~0 for the pinned ones): larger than the exact fit's
    assert p["w_mse"] > m["w_mse"] >= 0.0


def test_shrinkage_weight_follows_the_number_of_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    # the same prior (the register's own shape with its heating slope halved) and the same τ²: a
    # register with 6 pairs (days 1 … 180) lies closer to the prior's heating slope than the same
    # register with 13 pairs, whose own fit has twice the information (XᵀWX grows with the pairs)
    monkeypatch.setattr("tasks.domain.basic_pairs.RECENCY_HALF_LIFE_DAYS", None)
    regs, pm, dd, temps, use = _both_case()
    ybar = sum(use[1:391]) / 390
    bp = _prior((3.0 / ybar, 0.75 / ybar, 2.5 / ybar), (1e-4, 1e-4, 1e-4), 0.01)
    many = fit_weather_models(regs, pm, dd, day(400), bp).row(0, named=True)["beta_h"]
    few_pm = pm.filter(pl.col("end") <= day(180))
    few = fit_weather_models(regs, few_pm, dd, day(400), bp)
    # 6 pairs: its own ȳ over days 1 … 180 sets the prior's scale: prior β_h = 0.75 · ȳ₆ / ȳ
    ybar4 = sum(use[1:181]) / 180
    prior4 = 0.75 * ybar4 / ybar
    few_h = few.row(0, named=True)["beta_h"]
    assert abs(few_h - prior4) / abs(1.5 - prior4) < abs(many - 0.75) / abs(1.5 - 0.75)
    assert 0.75 < many < 1.5


def test_population_prior_by_hand() -> None:
    # five NSW electricity RES registers using k·(3 + 1.5·HDD_14 + 2.5·CDD_19), k = 1 … 5: every
    # register's least-squares two-term fit is exact, so θ = (3, 1.5, 2.5)·k / ȳ_k is the same for
    # all (ȳ_k = k·ȳ_1): the prior's ratios are 3 : 1.5 : 2.5, the fits' spread (MAD) and their
    # noise are 0, so τ² is its floor (1e-12) and the residual variance s2 is 0
    temps = _temps()
    temp = pl.DataFrame({"jurisdiction": "NSW", "read_date": [day(i) for i in range(420)], "temp": temps})
    regs, reads = [], []
    for k in range(1, 6):
        _, _, rows = _case(lambda t, k=k: k * (3 + 1.5 * max(0.0, 14 - t) + 2.5 * max(0.0, t - 19)))
        regs.append(
            _regs().with_columns(meter_register_id=pl.lit(k, pl.Int64), account_id=pl.lit(10 + k, pl.Int64))
        )
        reads.append(_reads(rows).with_columns(meter_register_id=pl.lit(k, pl.Int64)))
    chosen = weather_balance_points(
        pl.concat(regs), pl.concat(reads), _macro([10.0] * 420), NO_GAS, day(396), day(395), temp
    )
    both = chosen.filter(pl.col("wmodel") == "BOTH").row(0, named=True)
    assert (both["h_bp"], both["c_bp"], both["registers"]) == (14.0, 19.0, 5)
    assert both["prior_h"] / both["prior_a"] == pytest.approx(0.5, rel=1e-6)
    assert both["prior_c"] / both["prior_a"] == pytest.approx(2.5 / 3, rel=1e-6)
    assert (both["tau2_a"], both["tau2_h"], both["tau2_c"]) == pytest.approx((1e-12,) * 3, abs=1e-13)
    assert both["s2"] == pytest.approx(0.0, abs=1e-9)
    # a one-term row's unused slope has prior 0 and the floor τ² (it stays 0 when shrunk); with
    # four registers (< MIN_PRIOR_REGISTERS) no prior at all
    heat = chosen.filter(pl.col("wmodel") == "HEAT").row(0, named=True)
    cool = chosen.filter(pl.col("wmodel") == "COOL").row(0, named=True)
    assert (heat["prior_c"], heat["tau2_c"], cool["prior_h"], cool["tau2_h"]) == (0.0, 1e-12, 0.0, 1e-12)
    four = weather_balance_points(
        pl.concat(regs[:4]), pl.concat(reads[:4]), _macro([10.0] * 420), NO_GAS, day(396), day(395), temp
    )
    assert four["prior_a"].is_null().all()
