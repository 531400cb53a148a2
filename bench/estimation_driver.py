"""Run the estimation half of the accrual on a loaded database and meter store, shard by shard.

Used by bench/accuracy.py. It reads the billing tables with plain SELECTs (the engine's own
extraction lives in sql/ and tasks/; this keeps the benchmark independent of it), computes the
unbilled windows with ``tasks.domain.unbilled`` and calls the estimation functions in the order of the
"Estimation API" section of docs/DESIGN.md. Returns the usage rows of every shard.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import polars as pl
import sqlalchemy as sa

from tasks.adapters.meter_store import scan_interval
from tasks.domain.basic_estimate import estimate_basic, gas_class_scalars, read_pairs
from tasks.domain.interval_estimate import estimate_interval, scalars_shard
from tasks.domain.macro import gas_shape, macro_profile
from tasks.domain.profiles import combine_profiles, profile_partial_sums, segment_key
from tasks.domain.segments import check_and_fix
from tasks.domain.shard import shard_expr
from tasks.domain.unbilled import unbilled_windows
from tasks.settings import Settings

PROFILE_DAYS = 400


def _table(engine: sa.Engine, name: str) -> pl.DataFrame:
    with engine.connect() as conn:
        return pl.read_database(f"SELECT * FROM {name}", conn, infer_schema_length=None)


def _dates(df: pl.DataFrame, *cols: str) -> pl.DataFrame:
    return df.with_columns(
        [pl.col(c).cast(pl.Utf8).str.slice(0, 10).str.to_date(strict=False) for c in cols if c in df.columns]
    )


@dataclass
class Inputs:
    accounts: pl.DataFrame
    registers: pl.DataFrame
    invoices: pl.DataFrame
    invoice_lines: pl.DataFrame
    reads: pl.DataFrame


def load_inputs(database_url: str, n_shards: int) -> Inputs:
    """Accounts (with their site), registers (with account, segment columns, shard), invoices, reads."""
    eng = sa.create_engine(database_url)
    t = {n: _table(eng, n) for n in (
        "account", "account_site", "site", "jurisdiction", "tni", "meter", "meter_register", "invoice",
        "invoice_line", "basic_read",
    )}  # fmt: skip
    acc = _dates(t["account"], "open_date", "close_date")
    ast = _dates(t["account_site"], "start_date", "end_date")
    site = (
        t["site"]
        .join(
            t["jurisdiction"].select(
                pl.col("id").alias("jurisdiction_id"), pl.col("code").alias("jurisdiction")
            ),
            on="jurisdiction_id",
        )
        .join(
            t["tni"].select(pl.col("id").alias("tni_id"), pl.col("code").alias("tni")),
            on="tni_id",
            how="left",
        )
    )
    acc_site = (
        ast.sort("account_id", "start_date")
        .group_by("account_id")
        .agg(
            pl.col("site_id").last(),
            pl.col("start_date").min().alias("site_start"),
            pl.col("end_date").last().alias("site_end"),
        )
    )
    accounts = (
        acc.rename({"id": "account_id"})
        .join(acc_site, on="account_id")
        .join(
            site.select(
                pl.col("id").alias("site_id"), pl.col("identifier").alias("nmi"), "jurisdiction", "tni"
            ),
            on="site_id",
        )
    )
    meter = _dates(t["meter"], "start_date", "end_date")
    reg = _dates(t["meter_register"], "start_date", "end_date")
    registers = (
        reg.rename({"id": "meter_register_id", "start_date": "register_start", "end_date": "register_end"})
        .join(
            meter.select(pl.col("id").alias("meter_id"), "site_id", "installation_type", "interval_minutes"),
            on="meter_id",
        )
        .join(
            site.select(
                pl.col("id").alias("site_id"),
                pl.col("identifier").alias("nmi"),
                "service_type",
                "jurisdiction",
                "tni",
            ),
            on="site_id",
        )  # fmt: skip
        .join(ast.select("account_id", "site_id"), on="site_id")
        .join(acc.select(pl.col("id").alias("account_id"), "customer_class"), on="account_id")
        .with_columns(
            pl.col("multiplier").cast(pl.Float64),
            pl.col("interval_minutes").cast(pl.Int64),
            pl.col("dial_digits").cast(pl.Int64),
            shard_expr("nmi", n_shards),
        )
    )
    invoices = _dates(t["invoice"], "issue_date", "period_start", "period_end", "due_date", "paid_date")
    lines = _dates(t["invoice_line"], "period_start", "period_end").with_columns(
        pl.col("quantity").cast(pl.Float64)
    )
    reads = _dates(t["basic_read"], "read_date").with_columns(
        pl.col("index_value").cast(pl.Float64, strict=False)
    )
    return Inputs(accounts, registers, invoices, lines, reads)


def windows_for(inputs: Inputs, run_date: dt.date) -> pl.DataFrame:
    period_end = run_date - dt.timedelta(days=1)
    y, m = run_date.year - 1, run_date.month
    period_start = dt.date(y, m, 1)
    w, _ = unbilled_windows(inputs.accounts, inputs.invoices, run_date, period_start, period_end)
    return w


def run_estimation(
    inputs: Inputs,
    windows: pl.DataFrame,
    settings: Settings,
    run_date: dt.date,
    method: Literal["scalar", "seasonal"],
    cache: dict | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, float]]:
    """All shards' usage rows (register-day totals) and exceptions; timings in seconds.

    ``cache`` keeps the method-independent phases (profiles, fixed, macro, scalars, interval
    usage) between two calls with different basic methods.
    """
    import time

    cache = cache if cache is not None else {}
    timings: dict[str, float] = {}
    period_end = run_date - dt.timedelta(days=1)
    p_from = run_date - dt.timedelta(days=PROFILE_DAYS)
    regs = inputs.registers
    shards = sorted(regs["shard"].unique().to_list())
    t0 = time.perf_counter()
    if "fixed" not in cache:
        partials = [
            profile_partial_sums(regs.filter(pl.col("shard") == s), scan_interval(settings, s, p_from, period_end),
                                 settings.segment_with_tni)
            for s in shards
        ]  # fmt: skip
        profiles = combine_profiles(partials, settings.profile_composition)
        segments = (
            regs.filter(pl.col("service_type") != "GAS")
            .select(segment_key(settings.segment_with_tni))
            .unique()
        )
        fixed, fills = check_and_fix(
            profiles, segments["segment"].to_list(), p_from, period_end, settings.min_registers
        )
        cache.update(fixed=fixed, fills=fills, macro=macro_profile(fixed))
        timings["profiles"] = time.perf_counter() - t0
        pairs = [read_pairs(regs.filter(pl.col("shard") == s), inputs.reads) for s in shards]
        gas_ids = (
            regs.filter(pl.col("service_type") == "GAS").select("meter_register_id", "jurisdiction").unique()
        )
        gas_pairs = pl.concat([p for p, _ in pairs]).join(gas_ids, on="meter_register_id")
        gas_macro, gas_fit = gas_shape(
            gas_pairs, gas_ids["jurisdiction"].unique().to_list(), p_from, period_end, fixed=fixed
        )
        # the class medians over all shards, as the gas_shape phase computes them
        class_scalars = gas_class_scalars(
            regs, pl.concat([p for p, _ in pairs]), cache["macro"], gas_macro, run_date
        )
        cache.update(gas_macro=gas_macro, gas_fit=gas_fit, class_scalars=class_scalars)
        t1 = time.perf_counter()
        usage, exc = [], []
        for s in shards:
            r = regs.filter(pl.col("shard") == s)
            lf = scan_interval(settings, s, run_date - dt.timedelta(days=365), period_end)
            sc, e1 = scalars_shard(r, lf, fixed, run_date, settings.segment_with_tni)
            u, e2 = estimate_interval(r, windows, lf, fixed, sc, settings.segment_with_tni)
            usage.append(u)
            exc += [e1, e2]
        cache.update(interval_usage=pl.concat(usage), interval_exc=pl.concat(exc))
        timings["interval"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    busage, bexc = [], []
    for s in shards:
        r = regs.filter(pl.col("shard") == s)
        u, _, e = estimate_basic(
            r, windows, inputs.reads, cache["macro"], cache["gas_macro"], run_date, period_end, method,
            class_scalars=cache["class_scalars"],
        )  # fmt: skip
        busage.append(u)
        bexc.append(e)
    timings["basic"] = time.perf_counter() - t2
    daily = usage_daily(pl.concat([cache["interval_usage"], pl.concat(busage)]))
    return daily, pl.concat([cache["interval_exc"], *bexc]), timings


def usage_daily(usage: pl.DataFrame) -> pl.DataFrame:
    """Register-day totals of ``usage`` rows: volume and its estimated part."""
    return usage.select(
        "account_id",
        "meter_register_id",
        "stream",
        "read_date",
        "method",
        pl.col("values").list.sum().alias("volume"),
        (pl.col("values") * pl.col("estimated").cast(pl.List(pl.Float64)))
        .list.sum()
        .alias("volume_estimated"),
    )
