"""The synthetic portfolio looks like a retailer's book: each SPEC §8 feature pinned with bounds.

All numbers come from the session ``portfolio`` (1,500 accounts, 13 months to 2026-10-31, seed 7).
Bounds are wide enough for any seed and tight enough to catch a feature that went missing; the
comment on each assertion says where the expected value comes from (portfolio.py draws).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks.generate import loadshape
from tasks.generate.calendar import Calendar
from tasks.generate.reference import NETWORKS

R = dt.date(2026, 11, 1)


def _db(root: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(root / "db" / f"{name}.parquet")


@pytest.fixture(scope="module")
def sites(portfolio: Path) -> pl.DataFrame:
    j = _db(portfolio, "jurisdiction").select(
        pl.col("id").alias("jurisdiction_id"), pl.col("code").alias("jur")
    )
    n = _db(portfolio, "network").select(pl.col("id").alias("network_id"), pl.col("name").alias("network"))
    t = _db(portfolio, "tni").select(pl.col("id").alias("tni_id"), pl.col("code").alias("tni"))
    return (
        _db(portfolio, "site")
        .join(j, on="jurisdiction_id")
        .join(n, on="network_id")
        .join(t, on="tni_id", how="left")
    )


@pytest.fixture(scope="module")
def registers(portfolio: Path) -> pl.DataFrame:
    m = _db(portfolio, "meter").select(
        pl.col("id").alias("meter_id"), "site_id", "installation_type", "interval_minutes"
    )
    return _db(portfolio, "meter_register").join(m, on="meter_id")


@pytest.fixture(scope="module")
def truth(portfolio: Path, sites: pl.DataFrame) -> pl.DataFrame:
    t = pl.read_parquet(portfolio / "truth" / "register_day.parquet")
    return t.join(sites.select(pl.col("identifier").alias("nmi"), "jur", "service_type"), on="nmi")


def test_four_jurisdictions_real_networks_and_tnis(sites: pl.DataFrame) -> None:
    assert set(sites["jur"]) == {"NSW", "VIC", "QLD", "SA"}
    # all 17 networks (Ausgrid … AGN SA) carry sites: the smallest share is ~1.1% of 1,500 sites (16)
    assert set(sites["network"]) == {n[1] for n in NETWORKS}
    elec = sites.filter(pl.col("service_type") == "ELECTRICITY")
    assert (
        elec["tni"].null_count() == 0
        and sites.filter(pl.col("service_type") == "GAS")["tni"].null_count() == sites.height - elec.height
    )
    # AEMO style: state letter + three characters (NSYS, VAPR, QBCK, SADL …), letter matches the state
    assert elec["tni"].str.contains(r"^[NVQS][A-Z0-9]{3}$").all()
    assert (elec["tni"].str.slice(0, 1) == elec["jur"].str.slice(0, 1)).all()
    assert (elec["identifier"].str.len_chars() == 10).all() and sites["identifier"].n_unique() == sites.height


def test_fuel_class_and_segment_mix(portfolio: Path) -> None:
    acc = _db(portfolio, "account").join(
        _db(portfolio, "journal_segment").rename({"id": "journal_segment_id"}), on="journal_segment_id"
    )
    assert acc.height == 1500
    # 30% gas drawn per site: 1,050 ± 3σ (σ ≈ 18) electricity accounts
    assert 0.65 <= (acc["service_type"] == "ELECTRICITY").mean() <= 0.75
    assert 0.80 <= (acc["customer_class"] == "RES").mean() <= 0.92  # 86% residential
    seg = acc["name"].value_counts().sort("name")
    assert set(seg["name"]) == {"RESIDENTIAL", "SME", "C&I"}
    assert (acc.filter(pl.col("customer_class") == "RES")["name"] == "RESIDENTIAL").all()
    counts = dict(seg.iter_rows())
    assert counts["SME"] > 2 * counts["C&I"]  # business: 80% SME, 20% C&I


def test_interval_lengths_and_basic_reads_quarterly(portfolio: Path, registers: pl.DataFrame) -> None:
    meters = _db(portfolio, "meter").filter(pl.col("installation_type") != "BASIC")
    share = meters["interval_minutes"].value_counts(normalize=True)
    shares = dict(share.iter_rows())
    assert shares[30] > 0.8 and shares.get(15, 0) > 0.02 and shares.get(5, 0) > 0.002  # drawn 90/8/2%
    reads = _db(portfolio, "basic_read").join(
        registers.select(pl.col("id").alias("meter_register_id"), "unit"), on="meter_register_id"
    )
    gaps = (
        reads.filter(pl.col("unit") == "KWH")
        .sort("meter_register_id", "read_date")
        .select(pl.col("read_date").diff().over("meter_register_id").dt.total_days().drop_nulls())
    )
    # electricity basic meters are read at the end of each (quarterly, for residential) billing
    # period: gaps of 89-92 days (extra reads at exchanges and move-ins)
    assert 85 <= gaps.to_series().median() <= 95
    assert 0.85 <= (reads["quality"] == "A").mean() <= 0.98  # 93% actual, the rest estimates
    assert set(reads["quality"]) == {"A", "E"}


def test_bills_of_basic_meters_end_on_read_dates_and_reads_close_their_day(
    portfolio: Path, registers: pl.DataFrame, truth: pl.DataFrame
) -> None:
    # SPEC §4.3: a read dated D is the index at the END of day D and a bill's period ends on its
    # read date. (1) Every issued invoice of an account whose site has a basic register with
    # basic_read rows (not NEM13) active on the period end has a read of that register on it.
    reads = _db(portfolio, "basic_read")
    basic = registers.filter(pl.col("installation_type") == "BASIC").join(
        reads.select("meter_register_id").unique(), left_on="id", right_on="meter_register_id", how="semi"
    )
    inv = _db(portfolio, "invoice").filter(pl.col("status") == "ISSUED")
    acc_site = _db(portfolio, "account_site").select("account_id", "site_id")
    meters = _db(portfolio, "meter").select(pl.col("id").alias("meter_id"), "start_date", "end_date")
    ends = (
        inv.join(acc_site, on="account_id")
        .join(basic.select(pl.col("id").alias("meter_register_id"), "site_id", "meter_id"), on="site_id")
        .join(meters, on="meter_id")
        .filter(
            (pl.col("period_end") >= pl.col("start_date"))
            & (pl.col("end_date").is_null() | (pl.col("period_end") <= pl.col("end_date")))
        )
        .select("meter_register_id", pl.col("period_end").alias("read_date"))
        .unique()
    )
    assert ends.height > 500
    missing = ends.join(reads, on=["meter_register_id", "read_date"], how="anti")
    assert missing.height == 0, missing.head()
    # (2) an actual read pair (D1, D2) inside the meter-data window holds the true use of days
    # D1 + 1 … D2: index difference = Σ truth over those days, to the unit the index is floored to
    pairs = (
        reads.sort("meter_register_id", "read_date")
        .with_columns(
            prev=pl.col("index_value").shift(1).over("meter_register_id"),
            prev_date=pl.col("read_date").shift(1).over("meter_register_id"),
            prev_q=pl.col("quality").shift(1).over("meter_register_id"),
        )
        .filter(
            (pl.col("quality") == "A")
            & (pl.col("prev_q") == "A")
            & (pl.col("prev_date") >= truth["read_date"].min())
            & (pl.col("index_value") >= pl.col("prev"))
        )
    )
    t = truth.select("meter_register_id", "read_date", "consumption")
    used = (
        pairs.join(t, on="meter_register_id")
        .filter(
            (pl.col("read_date_right") > pl.col("prev_date"))
            & (pl.col("read_date_right") <= pl.col("read_date"))
        )
        .group_by("meter_register_id", "read_date", "prev", "index_value")
        .agg(pl.col("consumption").sum())
    )
    assert used.height > 300
    diff = (used["index_value"] - used["prev"] - used["consumption"]).abs()
    assert diff.max() < 1.0  # both indexes floored: the difference is off by less than one unit


def test_meter_exchange_basic_to_interval(portfolio: Path) -> None:
    m = _db(portfolio, "meter")
    old = m.filter((pl.col("installation_type") == "BASIC") & pl.col("end_date").is_not_null())
    new = m.filter(pl.col("installation_type") != "BASIC")
    pairs = old.join(new, on="site_id", suffix="_new").filter(
        pl.col("end_date") + pl.duration(days=1) == pl.col("start_date_new")
    )
    # 8% of interval sites had an exchange: ~50 of ~670
    assert 0.03 * new.height <= pairs.height <= 0.15 * new.height
    assert pairs["interval_minutes"].null_count() == pairs.height  # the old one is a basic meter


def test_register_rollover_in_basic_reads(portfolio: Path, registers: pl.DataFrame) -> None:
    reads = _db(portfolio, "basic_read").sort("meter_register_id", "read_date")
    pairs = reads.with_columns(pl.col("index_value").shift(1).over("meter_register_id").alias("prev")).filter(
        pl.col("prev").is_not_null()
    )
    wrapped = pairs.filter(pl.col("index_value") < pl.col("prev")).join(
        registers.select(pl.col("id").alias("meter_register_id"), "dial_digits"), on="meter_register_id"
    )
    assert wrapped.height >= 1
    # after adding 10^dial_digits the consumption is a plausible positive amount (< one dial turn)
    used = wrapped["index_value"] - wrapped["prev"] + 10.0 ** wrapped["dial_digits"]
    assert ((used > 0) & (used < 10.0 ** wrapped["dial_digits"])).all()


def test_solar_and_controlled_load(registers: pl.DataFrame, sites: pl.DataFrame) -> None:
    elec_sites = sites.filter(pl.col("service_type") == "ELECTRICITY")
    b1 = registers.filter(pl.col("suffix") == "B1")
    assert set(b1["stream"]) == {"GENERATION"}
    assert 0.20 <= b1["site_id"].n_unique() / elec_sites.height <= 0.30  # a quarter of electricity sites
    e2 = registers.filter(pl.col("suffix") == "E2")
    assert set(e2["stream"]) == {"CONTROLLED_LOAD"} and set(e2["time_class"]) == {"CONTROLLED"}
    assert 0.08 <= e2["site_id"].n_unique() / elec_sites.height <= 0.22  # 18% of residential ≈ 15% of all


def test_intraday_shapes() -> None:
    s = loadshape.day_shapes(48)  # [jurisdiction][class RES/BUS][weekday/weekend], NSW first
    hour = (np.arange(48) + 0.5) / 2
    night, evening, midday = (hour >= 2) & (hour < 4), (hour >= 18) & (hour < 20), (hour >= 10) & (hour < 14)
    res_wd, bus_wd = s["base"][0, 0, 0], s["base"][0, 1, 0]
    assert res_wd[evening].mean() > 2 * res_wd[night].mean()  # residential evening peak
    assert bus_wd[midday].mean() > 3 * bus_wd[night].mean()  # business daytime plateau
    assert s["controlled"][0][night].mean() > 20 * s["controlled"][0][midday].mean()  # off-peak hot water
    cal = Calendar(dt.date(2026, 1, 1), dt.date(2026, 1, 1))
    sol = loadshape.solar_shapes(cal, 48)[0, 0]
    assert (
        sol[hour < 4].sum() == pytest.approx(0.0, abs=1e-6) and 11 <= hour[np.argmax(sol)] <= 14
    )  # a bell around noon


def test_weekday_weekend_and_seasonality(truth: pl.DataFrame, portfolio: Path) -> None:
    acc = _db(portfolio, "account").select(pl.col("id").alias("account_id"), "customer_class")
    cons = truth.filter(pl.col("stream") == "CONSUMPTION").join(acc, on="account_id")
    bus = cons.filter((pl.col("customer_class") == "BUS") & (pl.col("service_type") == "ELECTRICITY"))
    wk = (
        bus.group_by(pl.col("read_date").dt.weekday() >= 6)
        .agg(pl.col("consumption").mean())
        .sort("read_date")["consumption"]
    )
    assert wk[1] < 0.7 * wk[0]  # business weekend load ≈ 45% of weekday base
    month = cons.group_by("jur", "service_type", pl.col("read_date").dt.month().alias("m")).agg(
        pl.col("consumption").mean()
    )

    def mean(j: str, fuel: str, m: int) -> float:
        return month.filter((pl.col("jur") == j) & (pl.col("service_type") == fuel) & (pl.col("m") == m))[
            "consumption"
        ].item()

    assert mean("QLD", "ELECTRICITY", 1) > 1.2 * mean("QLD", "ELECTRICITY", 7)  # QLD summer-peaking (≈1.4)
    for j in ("VIC", "SA"):
        assert mean(j, "ELECTRICITY", 7) > 1.08 * mean(j, "ELECTRICITY", 10)  # winter heating (≈1.2)
    assert mean("VIC", "GAS", 7) > 2.5 * mean("VIC", "GAS", 1)  # gas strongly winter (≈3.5)


def test_site_specific_seasonal_sensitivity(truth: pl.DataFrame) -> None:
    gas = truth.filter((pl.col("service_type") == "GAS") & pl.col("jur").is_in(["VIC", "NSW", "SA"]))
    ratio = (
        gas.group_by("meter_register_id")
        .agg(
            (
                pl.col("consumption").filter(pl.col("read_date").dt.month() == 7).mean()
                / pl.col("consumption").filter(pl.col("read_date").dt.month() == 1).mean()
            ).alias("r")
        )["r"]
        .drop_nulls()
    )
    # each site has its own heating sensitivity (lognormal σ 0.6, 15% none): winter/summer ratios spread widely
    assert ratio.len() > 100 and ratio.quantile(0.9) > 1.6 * ratio.quantile(0.1)
