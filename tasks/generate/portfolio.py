"""Accounts, sites, meters and registers of the synthetic portfolio (vectorised numpy draws).

A site is one NMI (electricity) or MIRN (gas). About 4% of sites see a move: the old account
closes and a new one opens the next day (move-in; when recent, never billed yet). About 2% of the
other sites have a move-out with no successor (closed accounts, some awaiting a final bill) and 4%
are new customers who signed up inside the window. Electricity sites carry an interval meter
(COMMS4/MRIM, 30-minute mostly, 15- and 5-minute some) or a BASIC accumulation meter read about
quarterly; 8% of interval sites had a BASIC meter exchanged during the window. Registers: E1
consumption (G1 for gas, in MJ), B1 solar generation on a quarter of electricity sites, E2
controlled load on some residential sites. Each site draws its own base load and its own heating
and cooling sensitivities, so that seasonality differs site by site.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from tasks.generate.calendar import Calendar, rng_for, to_dates
from tasks.generate.reference import JURISDICTION_WEIGHTS, JURISDICTIONS, network_frame, tni_frame
from tasks.generate.variant import Variant

GAS_SHARE = 0.30
RES_SHARE = 0.86
MOVE_SHARE = 0.04
MOVE_OUT_SHARE = 0.02
NEW_CUSTOMER_SHARE = 0.04
INTERVAL_SHARE = {"RES": 0.62, "BUS": 0.80}
EXCHANGE_SHARE = 0.08
INTERVAL_MINUTES = (30, 15, 5)
INTERVAL_P = (0.90, 0.08, 0.02)
SOLAR_SHARE = 0.25
CONTROLLED_SHARE = 0.18  # of residential electricity sites
NEM13_SHARE = 0.35  # of basic electricity sites: their reads are written as NEM13 files


@dataclass
class Portfolio:
    sites: pl.DataFrame  # site rows + generator columns
    accounts: pl.DataFrame  # account rows + site_id, jurisdiction …
    account_site: pl.DataFrame
    meters: pl.DataFrame
    registers: pl.DataFrame  # meter_register rows + generator columns (site params, active range)


def _pick(rng: np.random.Generator, options: list, p: list[float], n: int) -> np.ndarray:
    p_arr = np.asarray(p, dtype=float)
    return np.asarray(options)[rng.choice(len(options), size=n, p=p_arr / p_arr.sum())]


def _sites(n_sites: int, seed: int, variant: Variant | None = None) -> pl.DataFrame:
    v = variant or Variant()
    rng = rng_for(seed, "sites")
    gas = rng.random(n_sites) < GAS_SHARE
    fuel = np.where(gas, "GAS", "ELECTRICITY")
    jur = np.empty(n_sites, dtype=object)
    for f in ("ELECTRICITY", "GAS"):
        sel = fuel == f
        w = JURISDICTION_WEIGHTS[f]
        jur[sel] = _pick(rng, list(w), list(w.values()), int(sel.sum()))
    nets = network_frame()
    network_id = np.zeros(n_sites, dtype=np.int64)
    tni_id = np.full(n_sites, -1, dtype=np.int64)
    tnis = tni_frame()
    for j in JURISDICTIONS:
        for f in ("ELECTRICITY", "GAS"):
            sel = (jur == j) & (fuel == f)
            cand = nets.filter((pl.col("jurisdiction") == j) & (pl.col("service_type") == f))
            network_id[sel] = _pick(rng, cand["id"].to_list(), cand["weight"].to_list(), int(sel.sum()))
        sel = (jur == j) & ~gas
        ids = tnis.filter(pl.col("jurisdiction") == j)["id"].to_list()
        tni_id[sel] = _pick(rng, ids, [1.0 / (k + 1) for k in range(len(ids))], int(sel.sum()))
    cls = np.where(rng.random(n_sites) < RES_SHARE, "RES", "BUS")
    seg = np.where(cls == "RES", 1, np.where(rng.random(n_sites) < 0.8, 2, 3))
    # load parameters: base (kWh or MJ per day) and site-specific weather sensitivities
    base_median = np.select([gas & (cls == "RES"), gas, seg == 1, seg == 2], [28.0, 160.0, 9.5, 48.0], 420.0)
    base = base_median * rng.lognormal(0.0, 0.45, n_sites)
    heat = (
        base
        * np.where(gas, 0.28, 0.035)
        * rng.lognormal(0.0, v.sens_sigma, n_sites)
        * (rng.random(n_sites) > 0.15)
    )
    cool = (
        base
        * np.where(gas, 0.0, 0.08)
        * rng.lognormal(0.0, v.sens_sigma, n_sites)
        * (rng.random(n_sites) > 0.2)
    )
    heat, cool = heat * v.heat_scale, cool * v.cool_scale
    # per-site balance points and yearly growth (variant knobs; their own random stream)
    vr = rng_for(seed, "variant-sites")
    heat_base = v.heat_base + v.heat_base_sd * vr.standard_normal(n_sites)
    cool_base = np.maximum(v.cool_base + v.cool_base_sd * vr.standard_normal(n_sites), heat_base + 1.0)
    drift = v.drift_sd * vr.standard_normal(n_sites)
    elec = ~gas
    interval = elec & (
        rng.random(n_sites) < np.where(cls == "RES", INTERVAL_SHARE["RES"], INTERVAL_SHARE["BUS"])
    )
    exchange = interval & (rng.random(n_sites) < EXCHANGE_SHARE)
    minutes = np.where(interval, rng.choice(INTERVAL_MINUTES, size=n_sites, p=INTERVAL_P), 0)
    solar = elec & (rng.random(n_sites) < SOLAR_SHARE)
    controlled = elec & (cls == "RES") & (rng.random(n_sites) < CONTROLLED_SHARE)
    nem13 = elec & ~interval & (rng.random(n_sites) < NEM13_SHARE)
    return (
        pl.DataFrame(
            {
                "id": np.arange(1, n_sites + 1),
                "service_type": fuel,
                "network_id": network_id,
                "tni_id": tni_id,
                "jurisdiction": jur.astype(str),
                "customer_class": cls,
                "journal_segment_id": seg,
                "base": base,
                "heat": heat,
                "cool": cool,
                "heat_base": heat_base,
                "cool_base": cool_base,
                "drift": drift,
                "solar_kw": np.where(solar, np.round(rng.lognormal(np.log(5.5), 0.35, n_sites), 1), 0.0),
                "controlled_kwh": np.where(controlled, rng.lognormal(np.log(5.0), 0.35, n_sites), 0.0),
                "interval": interval,
                "exchange": exchange,
                "interval_minutes": minutes.astype(np.int64),
                "nem13": nem13,
            }
        )
        .join(
            nets.select(pl.col("id").alias("network_id"), "prefix", pl.col("jurisdiction_id")),
            on="network_id",
        )
        .sort("id")
        .with_columns(
            pl.format("{}{}", "prefix", pl.col("id").cast(pl.String).str.zfill(6)).alias("identifier"),
            pl.when(pl.col("tni_id") > 0).then(pl.col("tni_id")).alias("tni_id"),
        )
        .drop("prefix")
    )


def _accounts(
    sites: pl.DataFrame, n_accounts: int, cal: Calendar, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = rng_for(seed, "accounts")
    n_sites, n_days = sites.height, cal.n_days
    n_moves = n_accounts - n_sites
    site_ids = sites["id"].to_numpy()
    order = rng.permutation(n_sites)
    move_sites = np.sort(order[:n_moves])
    rest = order[n_moves:]
    n_out = int(round(MOVE_OUT_SHARE * n_sites))
    n_new = int(round(NEW_CUSTOMER_SHARE * n_sites))
    out_sites, new_sites = rest[:n_out], rest[n_out : n_out + n_new]
    history = (dt.date(2008, 1, 1) - cal.start).days  # negative day index
    open_d = rng.integers(history, -1, n_sites)
    close_d = np.full(n_sites, np.iinfo(np.int64).max)
    recent = rng.random(n_moves) < 0.5
    move_day = np.where(
        recent,
        rng.integers(max(n_days - 60, 1), n_days - 1, n_moves),
        rng.integers(20, max(n_days - 60, 21), n_moves),
    )
    close_d[move_sites] = move_day
    close_d[out_sites] = np.where(
        rng.random(n_out) < 0.6,
        rng.integers(max(n_days - 50, 1), n_days - 1, n_out),
        rng.integers(10, max(n_days - 50, 11), n_out),
    )
    open_d[new_sites] = rng.integers(0, n_days - 1, n_new)
    first = pl.DataFrame({"site_id": site_ids, "open_i": open_d, "close_i": close_d})
    movers = pl.DataFrame(
        {
            "site_id": site_ids[move_sites],
            "open_i": move_day + 1,
            "close_i": np.full(n_moves, np.iinfo(np.int64).max),
        }
    )
    acc = (
        pl.concat([first, movers])
        .join(
            sites.select(
                pl.col("id").alias("site_id"),
                "service_type",
                "customer_class",
                "journal_segment_id",
                "jurisdiction",
                "interval",
            ),
            on="site_id",
        )
        .sort("site_id", "open_i")
        .with_row_index("id", offset=1)
        .with_columns(pl.col("id").cast(pl.Int64))
    )
    n = acc.height
    res = acc["customer_class"].to_numpy() == "RES"
    gas = acc["service_type"].to_numpy() == "GAS"
    cycle = np.where(
        res & ~gas, rng.choice([1, 2, 3], size=n, p=[0.3, 0.2, 0.5]),
        np.where(res, rng.choice([2, 3], size=n, p=[0.5, 0.5]), rng.choice([1, 3], size=n, p=[0.75, 0.25])),
    )  # fmt: skip
    # a basic meter is read when its bill's period ends (reads.py): residential basic electricity is
    # read (and billed) quarterly, as its MDP reads it
    basic_res = res & ~gas & ~acc["interval"].to_numpy()
    cycle = np.where(basic_res, 3, cycle)
    acc = acc.drop("interval")
    big = np.iinfo(np.int64).max
    acc = (
        acc.with_columns(
            pl.format("{}", pl.col("id") * 7919 % 1_000_003 + 3_000_000_000 + pl.col("id") * 1_000_003).alias(
                "account_number"
            ),
            pl.Series("billing_cycle_months", cycle),
            pl.Series("open_date", to_dates(cal.start, acc["open_i"].to_numpy())).cast(pl.Date),
            pl.when(pl.col("close_i") < big).then(pl.col("close_i")).alias("close_i"),
        )
        .with_columns(
            pl.Series("close_date", to_dates(cal.start, acc["close_i"].fill_null(0).to_numpy())).cast(
                pl.Date
            ),
        )
        .with_columns(pl.when(pl.col("close_i").is_not_null()).then(pl.col("close_date")).alias("close_date"))
    )
    account_site = acc.select("id", "site_id", "open_date", "close_date").rename(
        {"id": "account_id", "open_date": "start_date", "close_date": "end_date"}
    )
    return acc, account_site


def _meters(
    sites: pl.DataFrame, accounts: pl.DataFrame, cal: Calendar, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = rng_for(seed, "meters")
    n_days = cal.n_days
    span = accounts.group_by("site_id").agg(
        pl.col("open_i").min().alias("site_from"),
        pl.col("close_i").max().alias("site_to"),
        pl.col("close_i").null_count().alias("open_n"),
    )
    s = sites.join(span, left_on="id", right_on="site_id").sort("id")
    n = s.height
    exchange_day = rng.integers(30, max(n_days - 30, 31), n)
    installed = rng.integers((dt.date(2018, 1, 1) - cal.start).days, -30, n)
    old_basic = rng.integers(
        (dt.date(2004, 1, 1) - cal.start).days, (dt.date(2016, 1, 1) - cal.start).days, n
    )
    interval = s["interval"].to_numpy()
    exchange = s["exchange"].to_numpy()
    gen = s.select(
        pl.col("id").alias("site_id"), "identifier", "service_type", "jurisdiction", "customer_class", "journal_segment_id",
        "base", "heat", "cool", "heat_base", "cool_base", "drift", "solar_kw", "controlled_kwh", "nem13",
        "site_from", pl.when(pl.col("open_n") > 0).then(None).otherwise(pl.col("site_to")).alias("site_to"),
    )  # fmt: skip
    main = gen.with_columns(
        pl.Series(
            "installation_type", np.where(interval, np.where(rng.random(n) < 0.95, "COMMS4", "MRIM"), "BASIC")
        ),
        pl.Series("interval_minutes", s["interval_minutes"].to_numpy()),
        pl.Series("start_i", np.where(exchange, exchange_day, np.where(interval, installed, old_basic))),
        pl.lit(None, dtype=pl.Int64).alias("end_i"),
    )
    old = gen.filter(pl.Series(exchange)).with_columns(
        pl.lit("BASIC").alias("installation_type"),
        pl.lit(0).alias("interval_minutes"),
        pl.Series("start_i", old_basic[exchange]),
        pl.Series("end_i", exchange_day[exchange] - 1),
    )
    meters = (
        pl.concat([main, old.with_columns(pl.col("interval_minutes").cast(pl.Int64))], how="vertical_relaxed")
        .sort("site_id", "start_i")
        .with_row_index("id", offset=1)
        .with_columns(
            pl.col("id").cast(pl.Int64),
            pl.when(pl.col("interval_minutes") > 0)
            .then(pl.col("interval_minutes"))
            .alias("interval_minutes"),
            pl.format(
                "{}{}",
                pl.when(pl.col("installation_type") == "BASIC").then(pl.lit("B")).otherwise(pl.lit("S")),
                pl.col("id").cast(pl.String).str.zfill(8),
            ).alias("serial_number"),
        )  # fmt: skip
    )
    dates = lambda c: pl.Series(to_dates(cal.start, meters[c].fill_null(0).to_numpy())).cast(pl.Date)  # noqa: E731
    meters = meters.with_columns(
        dates("start_i").alias("start_date"),
        pl.when(pl.col("end_i").is_not_null()).then(dates("end_i")).alias("end_date"),
    )
    return meters, _registers(meters, cal, seed)


def _registers(meters: pl.DataFrame, cal: Calendar, seed: int) -> pl.DataFrame:
    rng = rng_for(seed, "registers")
    gas = pl.col("service_type") == "GAS"
    e1 = meters.with_columns(
        pl.when(gas).then(pl.lit("G1")).otherwise(pl.lit("E1")).alias("suffix"),
        pl.lit("CONSUMPTION").alias("stream"), pl.lit("ANYTIME").alias("time_class"),
        pl.when(gas).then(pl.lit("MJ")).otherwise(pl.lit("KWH")).alias("unit"), pl.lit(0).alias("order"),
    )  # fmt: skip
    e2 = meters.filter(pl.col("controlled_kwh") > 0).with_columns(
        pl.lit("E2").alias("suffix"), pl.lit("CONTROLLED_LOAD").alias("stream"), pl.lit("CONTROLLED").alias("time_class"),
        pl.lit("KWH").alias("unit"), pl.lit(1).alias("order"),
    )  # fmt: skip
    b1 = meters.filter(pl.col("solar_kw") > 0).with_columns(
        pl.lit("B1").alias("suffix"), pl.lit("GENERATION").alias("stream"), pl.lit("ANYTIME").alias("time_class"),
        pl.lit("KWH").alias("unit"), pl.lit(2).alias("order"),
    )  # fmt: skip
    regs = pl.concat([e1, e2, b1]).sort("id", "order").rename({"id": "meter_id"})
    n = regs.height
    basic = regs["installation_type"].to_numpy() == "BASIC"
    is_gas = regs["service_type"].to_numpy() == "GAS"
    digits = np.where(is_gas, 6, np.where(rng.random(n) < 0.8, 5, 6))
    # a handful of registers with small dials so that an index wraps inside the window
    digits = np.where(basic & ~is_gas & (rng.random(n) < 0.03), 4, digits)
    regs = regs.with_row_index("id", offset=1).with_columns(
        pl.col("id").cast(pl.Int64),
        pl.Series("dial_digits", np.where(basic, digits, 0)),
        pl.lit(1.0).alias("multiplier"),
        pl.Series("index0", np.floor(rng.random(n) * 10.0**digits)),
        # the register records data while the meter is in and the retailer has the site
        pl.max_horizontal("start_i", "site_from", pl.lit(0)).alias("active_from"),
        pl.min_horizontal(
            pl.col("end_i").fill_null(cal.n_days - 1),
            pl.col("site_to").fill_null(cal.n_days - 1),
            pl.lit(cal.n_days - 1),
        ).alias("active_to"),
    )
    return regs.with_columns(
        pl.when(pl.col("dial_digits") > 0).then(pl.col("dial_digits")).alias("dial_digits")
    ).drop("order")


def build_portfolio(n_accounts: int, cal: Calendar, seed: int, variant: Variant | None = None) -> Portfolio:
    """Sites, accounts (exactly ``n_accounts``), account_site, meters and registers."""
    n_moves = max(1, int(round(MOVE_SHARE * n_accounts))) if n_accounts >= 10 else 0
    sites = _sites(n_accounts - n_moves, seed, variant)
    accounts, account_site = _accounts(sites, n_accounts, cal, seed)
    meters, registers = _meters(sites, accounts, cal, seed)
    return Portfolio(
        sites=sites, accounts=accounts, account_site=account_site, meters=meters, registers=registers
    )
