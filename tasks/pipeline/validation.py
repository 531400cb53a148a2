"""Validation of the accrual (SPEC §4.6): the back-test and the true-up.

**Back-test.** The estimator is re-run "as at" B = R − k months (k = ``BUA_BACKTEST_MONTHS``,
default 1; same day of the month, clamped to the month's end) with only data dated before B, for
registers whose consumption after B is now known, and compared with what is now known:

- *Interval registers*: every half hour of the days B … R − 1 that is now actual (A, S, F on all
  its sub-intervals, as the profiles count it) is compared with what the estimator would have put
  there at B: s_r(B) × P_B(segment, day, slot). P_B is the run's combined segment profile cut to
  the days before B and checked and fixed again over the run's range (so the days from B on are
  filled from the same day type of the weeks before B, as they would have been at B), and s_r(B)
  is :func:`tasks.domain.interval_estimate.scalars_shard` as at B (28-day reference window before B, else
  the 365 days before B). Per register: actual = Σ actual half hours, estimated = Σ the estimates
  of the same half hours (:func:`tasks.domain.scalars.interval_day_sums` on P_B gives both sums).
- *Basic registers*: L = the register's last read before B (as the read pairs as at B see it). When
  the register now has an **actual** read pair (L, E) — both reads A, S or F, E on or after B, so
  E < R — the pair's measured consumption is compared with the estimator's consumption as at B
  (:func:`tasks.domain.basic_estimate.estimate_basic` with the reads before B, the macro profile of P_B
  and the gas shape fitted on the gas read pairs ending before B, the run's basic method) over the
  pair's days L … E − 1. Registers without a read pair before B (no history at B) are left out.
  The gas shape as at B is fitted on the sampled shards' gas read pairs ending before B.

The back-test covers the shards 0, 1, … until they hold at least ``BUA_BACKTEST_REGISTERS``
interval registers (default 5,000; 0 = every shard): shards are a hash of the NMI, so this is a
random sample of the portfolio, and it bounds the meter data read (two to three month files per
sampled shard). Registers that started on or after B are not back-tested (the estimator at B did
not know them).

Metrics per (fuel, method, segment) — segment = the profile segment key
``customer_class|jurisdiction|stream`` — and per fuel for the portfolio (method INTERVAL, BASIC and
ALL; segment ``ALL``; only CONSUMPTION and CONTROLLED_LOAD registers, like the accrued volume):
``bias_pct`` = 100 × (Σ estimated − Σ actual) / Σ actual; ``mape_pct`` = the mean over registers
with actual > 0 of 100 × |estimated − actual| / actual, each register's error over its compared
period; ``wape_pct`` = 100 × Σ |estimated − actual| / Σ actual (MAPE weighted by volume, robust to
small registers).

**True-up.** The previous run's accrual (the latest run_date P < R in ``bua_account_summary``)
against what has been billed since: for each account accrued at P, the *covered* days are
unbilled_from … min(unbilled_to, the latest period_end of its ISSUED invoices issued on or after P
and before R). Accrued for the covered days = each of the account's ``invoice_line_item_monthly``
rows of P pro-rated by the covered share of its month's accrued days (the accrual is monthly):
volume = USAGE_RETAIL + CONTROLLED_LOAD_RETAIL quantity, net = net_amount −
discount_net_propensity. Billed = the lines of those invoices pro-rated to the days their period
shares with the covered days: volume = USAGE + CONTROLLED_LOAD quantity, net = net_amount −
discount_amount. Rows per (fuel, journal segment), per fuel (segment ``ALL``) and for the
portfolio (fuel and segment ``ALL``; volumes null there, kWh and MJ do not add): difference =
accrued − billed, difference_pct = 100 × difference / billed. ``accrued_net_total`` is the whole
accrual of P (billed or not), ``accounts_billed`` the accounts with covered days. No earlier run:
no rows, and the phase's stats say so.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl

from tasks.domain.profiles import one_row_per_register, segment_key

ALL = "ALL"
BACKTEST_THREADS = 2  # sampled shards compared at once (the machine has 2 cores)
VOLUME_STREAMS = ("CONSUMPTION", "CONTROLLED_LOAD")
BILLED_VOLUME_ITEMS = ("USAGE", "CONTROLLED_LOAD")
ACCRUED_VOLUME_ITEMS = ("USAGE_RETAIL", "CONTROLLED_LOAD_RETAIL")

COMPARED_SCHEMA = {
    "meter_register_id": pl.Int64,
    "fuel": pl.Utf8,
    "method": pl.Utf8,
    "segment": pl.Utf8,
    "stream": pl.Utf8,
    "unit": pl.Utf8,
    "days": pl.Int64,
    "actual": pl.Float64,
    "estimated": pl.Float64,
}
BACKTEST_COLUMNS = [
    "backtest_date", "window_to", "fuel", "method", "segment", "unit", "registers",
    "register_days", "actual_volume", "estimated_volume", "bias_pct", "mape_pct", "wape_pct",
]  # fmt: skip
TRUEUP_COLUMNS = [
    "accrual_run_date", "fuel", "segment", "accounts", "accounts_billed", "covered_days",
    "accrued_volume", "billed_volume", "volume_difference", "volume_difference_pct",
    "accrued_net", "billed_net", "net_difference", "net_difference_pct", "accrued_net_total",
]  # fmt: skip


def backtest_date(run_date: dt.date, months: int) -> dt.date:
    """R − k months, same day of the month clamped to the month's end (31 March − 1 = 28/29 February)."""
    if months < 1:
        raise ValueError(f"backtest months must be at least 1, got {months}")
    m = run_date.year * 12 + run_date.month - 1 - months
    year, month = divmod(m, 12)
    month += 1
    return dt.date(year, month, min(run_date.day, calendar.monthrange(year, month)[1]))


def backtest_shards(registers: pl.DataFrame, shards: int, target: int) -> list[int]:
    """Shards 0, 1, … until they hold at least ``target`` interval registers (0 → every shard)."""
    if target <= 0:
        return list(range(shards))
    counts = dict(
        registers.filter(pl.col("interval_minutes").is_not_null())
        .group_by("shard")
        .agg(pl.col("meter_register_id").n_unique())
        .iter_rows()
    )
    chosen, total = [], 0
    for s in range(shards):
        chosen.append(s)
        total += counts.get(s, 0)
        if total >= target:
            break
    return chosen


# ---------------------------------------------------------------- back-test: estimator as at B


def profiles_as_at(
    profiles: pl.DataFrame,
    segments: Sequence[str],
    backtest_day: dt.date,
    date_from: dt.date,
    date_to: dt.date,
    min_registers: int,
) -> pl.DataFrame:
    """The fixed segment profile the run at ``backtest_day`` would have had (data before it only)."""
    from tasks.domain.segments import check_and_fix

    before = profiles.filter(pl.col("read_date") < backtest_day)
    fixed, _ = check_and_fix(before, segments, date_from, date_to, min_registers)
    return fixed


def interval_compare(
    registers: pl.DataFrame,
    history: pl.LazyFrame,
    window: pl.LazyFrame,
    fixed_b: pl.DataFrame,
    backtest_day: dt.date,
    window_to: dt.date,
    segment_with_tni: bool = False,
) -> pl.DataFrame:
    """Per interval register: actual and as-at-B estimated volume over its now-actual half hours.

    ``history``: meter data of the 365 days before B (the scalars' reference windows); ``window``:
    meter data of B … ``window_to``. Returns the ``COMPARED_SCHEMA`` frame (method INTERVAL).
    """
    from tasks.domain.interval_estimate import scalars_shard
    from tasks.domain.profiles import interval_registers
    from tasks.domain.scalars import interval_day_sums

    regs = one_row_per_register(
        interval_registers(registers, segment_with_tni).filter(pl.col("register_start") < backtest_day)
    )
    if regs.height == 0:
        return pl.DataFrame(schema=COMPARED_SCHEMA)
    scalars, _ = scalars_shard(regs, history, fixed_b, backtest_day, segment_with_tni)
    sums = interval_day_sums(regs, window, fixed_b, backtest_day, window_to, segment_with_tni)
    per = (
        sums.join(scalars.select("meter_register_id", "scalar"), on="meter_register_id", how="left")
        .sort("meter_register_id", "read_date")  # the same adding order on every run: same bytes
        .group_by("meter_register_id", maintain_order=True)
        .agg(
            pl.len().cast(pl.Int64).alias("days"),
            pl.col("actual_sum").sum().alias("actual"),
            (pl.col("scalar").fill_null(1.0) * pl.col("profile_sum")).sum().alias("estimated"),
        )
    )
    return (
        regs.select(
            "meter_register_id",
            pl.col("service_type").alias("fuel"),
            pl.lit("INTERVAL").alias("method"),
            "segment",
            "stream",
            "unit",
        )
        .join(per, on="meter_register_id", how="inner")
        .select(list(COMPARED_SCHEMA))
        .cast(COMPARED_SCHEMA)  # type: ignore[arg-type]
        .sort("meter_register_id")
    )


def basic_compare(
    registers: pl.DataFrame,
    reads: pl.DataFrame,
    macro_b: pl.DataFrame,
    gas_macro_b: pl.DataFrame,
    backtest_day: dt.date,
    method: str,
) -> pl.DataFrame:
    """Per basic register with an actual read pair (L, E), L its last read before B, E >= B:
    the pair's consumption (actual) and the as-at-B estimate over L + 1 … E (a read closes its day,
    SPEC §4.3) (``COMPARED_SCHEMA``).

    ``reads``: basic reads dated before R (what the run knows); the estimate sees those before B.
    """
    from tasks.domain.basic_estimate import basic_registers, estimate_basic, read_pairs

    regs = one_row_per_register(
        basic_registers(registers).filter(pl.col("register_start") < backtest_day)
    ).with_columns(segment_key(False))
    if regs.height == 0 or reads.height == 0:
        return pl.DataFrame(schema=COMPARED_SCHEMA)
    reads_b = reads.filter(pl.col("read_date") < backtest_day)
    pairs_b, _ = read_pairs(regs, reads_b)
    pairs_now, _ = read_pairs(regs, reads)
    last_b = pairs_b.select("meter_register_id", pl.col("last_read_date").alias("start")).unique()
    target = pairs_now.join(last_b, on=["meter_register_id", "start"], how="inner").filter(
        (pl.col("end") >= backtest_day) & pl.col("actual")
    )
    if target.height == 0:
        return pl.DataFrame(schema=COMPARED_SCHEMA)
    tregs = regs.join(target.select("meter_register_id"), on="meter_register_id", how="semi")
    span = target.join(tregs.select("meter_register_id", "account_id"), on="meter_register_id")
    windows = span.group_by("account_id").agg(
        (pl.col("start").min() + pl.duration(days=1)).alias("unbilled_from"),
        pl.col("end").max().alias("unbilled_to"),
    )
    usage, _, _ = estimate_basic(
        tregs,
        windows,
        reads_b,
        macro_b,
        gas_macro_b,
        backtest_day,
        backtest_day - dt.timedelta(days=1),
        method,  # type: ignore[arg-type]
        pairs=pairs_b.join(tregs.select("meter_register_id"), on="meter_register_id", how="semi"),
    )
    est = (
        usage.select("meter_register_id", "read_date", pl.col("values").list.sum().alias("v"))
        .join(target.select("meter_register_id", "start", "end"), on="meter_register_id")
        .filter((pl.col("read_date") > pl.col("start")) & (pl.col("read_date") <= pl.col("end")))
        .group_by("meter_register_id")
        .agg(pl.col("v").sum().alias("estimated"))
    )
    return (
        tregs.select(
            "meter_register_id",
            pl.col("service_type").alias("fuel"),
            pl.lit("BASIC").alias("method"),
            "segment",
            "stream",
            "unit",
        )
        .join(
            target.select(
                "meter_register_id", pl.col("days").cast(pl.Int64), pl.col("consumption").alias("actual")
            ),
            on="meter_register_id",
        )
        .join(est, on="meter_register_id", how="left")
        .with_columns(pl.col("estimated").fill_null(0.0))
        .select(list(COMPARED_SCHEMA))
        .cast(COMPARED_SCHEMA)  # type: ignore[arg-type]
        .sort("meter_register_id")
    )


PCT_LIMIT = 999_999_999.0  # DECIMAL(12,2) holds it; a ratio beyond it says "near-zero denominator"


def _pct(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """100 × num / den, null when den is 0, clipped to ±PCT_LIMIT."""
    return pl.when(den != 0).then((100.0 * num / den).clip(-PCT_LIMIT, PCT_LIMIT)).otherwise(None)


def backtest_metrics(compared: pl.DataFrame) -> pl.DataFrame:
    """Metric rows per (fuel, method, segment, unit), then per (fuel, method) and per fuel with
    segment / method ``ALL`` over the CONSUMPTION and CONTROLLED_LOAD registers."""
    c = compared.sort("fuel", "method", "segment", "meter_register_id").with_columns(
        err=(pl.col("estimated") - pl.col("actual")).abs(),
        ape=pl.when(pl.col("actual") > 0).then(
            (pl.col("estimated") - pl.col("actual")).abs() / pl.col("actual")
        ),
    )
    vol = c.filter(pl.col("stream").is_in(VOLUME_STREAMS))
    parts = [
        c.group_by("fuel", "method", "segment", "unit"),
        vol.with_columns(segment=pl.lit(ALL)).group_by("fuel", "method", "segment", "unit"),
        vol.with_columns(segment=pl.lit(ALL), method=pl.lit(ALL)).group_by(
            "fuel", "method", "segment", "unit"
        ),
    ]
    aggs = [
        pl.col("meter_register_id").n_unique().cast(pl.Int64).alias("registers"),
        pl.col("days").sum().cast(pl.Int64).alias("register_days"),
        pl.col("actual").sum().alias("actual_volume"),
        pl.col("estimated").sum().alias("estimated_volume"),
        pl.col("err").sum().alias("_err"),
        pl.col("ape").mean().alias("_mape"),
    ]
    frames = [g.agg(aggs) for g in parts]
    out = pl.concat(frames, how="vertical_relaxed").with_columns(
        bias_pct=_pct(pl.col("estimated_volume") - pl.col("actual_volume"), pl.col("actual_volume")),
        mape_pct=100.0 * pl.col("_mape"),
        wape_pct=_pct(pl.col("_err"), pl.col("actual_volume")),
    )
    order = pl.when(pl.col("segment") == ALL).then(1).otherwise(0)
    return (
        out.with_columns(
            pl.col("actual_volume").round(3),
            pl.col("estimated_volume").round(3),
            pl.col("bias_pct").round(2),
            pl.col("mape_pct").round(2),
            pl.col("wape_pct").round(2),
            _o=order,
            _m=pl.col("method") == ALL,
        )
        .sort("fuel", "_o", "_m", "method", "segment", "unit")
        .drop("_o", "_m", "_err", "_mape")
    )


# ---------------------------------------------------------------- true-up


def _days(lo: pl.Expr, hi: pl.Expr) -> pl.Expr:
    return ((hi - lo).dt.total_days() + 1).clip(lower_bound=0)


SHAPE_KEY = ["fuel", "jurisdiction", "customer_class"]


def daily_shapes(accounts: pl.DataFrame, macro: pl.DataFrame, gas_macro: pl.DataFrame) -> pl.DataFrame:
    """Day weights for spreading usage over days: fuel, jurisdiction, customer_class, read_date,
    weight — electricity: the macro profile of ``customer_class|jurisdiction|CONSUMPTION``, else
    of ``*|jurisdiction|CONSUMPTION``; gas: the jurisdiction's gas shape (both classes)."""
    keys = (
        accounts.select(pl.col("service_type").alias("fuel"), "jurisdiction", "customer_class")
        .unique()
        .drop_nulls()
    )
    elec = keys.filter(pl.col("fuel") == "ELECTRICITY")
    own = elec.with_columns(
        segment=pl.concat_str(["customer_class", "jurisdiction"], separator="|") + "|CONSUMPTION"
    )
    parent = elec.with_columns(segment=pl.lit("*|") + pl.col("jurisdiction") + "|CONSUMPTION")
    m = macro.select("segment", "read_date", pl.col("daily").alias("weight"))
    e = pl.concat(
        [
            own.join(m, on="segment"),
            parent.join(own.join(m, on="segment").select(SHAPE_KEY).unique(), on=SHAPE_KEY, how="anti").join(
                m, on="segment"
            ),
        ]
    ).drop("segment")
    g = keys.filter(pl.col("fuel") == "GAS").join(
        gas_macro.select("jurisdiction", "read_date", pl.col("daily").alias("weight")), on="jurisdiction"
    )
    return pl.concat([e, g]).select(*SHAPE_KEY, "read_date", "weight").sort(*SHAPE_KEY, "read_date")


def _with_shape_sum(
    df: pl.DataFrame, lo: str, hi: str, out: str, shapes: pl.DataFrame | None
) -> pl.DataFrame:
    """Add ``out`` = Σ weight over the days lo … hi of the row's shape (null when the shape does not
    cover both ends, or when there are no shapes)."""
    if shapes is None or shapes.height == 0:
        return df.with_columns(pl.lit(None, pl.Float64).alias(out))
    cum = shapes.with_columns(_cum=pl.col("weight").cum_sum().over(SHAPE_KEY))
    hi_f = cum.select(*SHAPE_KEY, pl.col("read_date").alias(hi), pl.col("_cum").alias("_h"))
    lo_f = cum.select(
        *SHAPE_KEY, pl.col("read_date").alias(lo), (pl.col("_cum") - pl.col("weight")).alias("_l")
    )
    return (
        df.join(hi_f, on=[*SHAPE_KEY, hi], how="left")
        .join(lo_f, on=[*SHAPE_KEY, lo], how="left")
        .with_columns(
            pl.when(pl.col(lo) <= pl.col(hi)).then(pl.col("_h") - pl.col("_l")).otherwise(0.0).alias(out)
        )
        .drop("_h", "_l")
    )


def _share(part: str, whole: str, part_days: pl.Expr, whole_days: pl.Expr) -> pl.Expr:
    """The shaped share part / whole, else (no shape) the share of days."""
    flat = pl.when(whole_days > 0).then(part_days / whole_days).otherwise(0.0)
    shaped = pl.when(pl.col(whole) > 0).then(pl.col(part) / pl.col(whole))
    return pl.coalesce(shaped, flat).clip(0.0, 1.0)


def trueup_rows(
    accounts: pl.DataFrame,
    accrued: pl.DataFrame,
    billed: pl.DataFrame,
    shapes: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """True-up rows (without run columns) from the previous run and the invoices issued since.

    ``accounts``: the previous run's bua_account_summary rows (account_id, service_type,
    jurisdiction, customer_class, journal_segment, unbilled_from, unbilled_to). ``accrued``: its
    invoice_line_item_monthly rows per (account_id, year_mnth): volume (usage + controlled load
    quantity), supply_net and usage_net (net − propensity-weighted discount of the supply rows and
    of the others). ``billed``: lines of ISSUED invoices issued since (account_id, item_type,
    period_start, period_end, quantity, net_amount, discount_amount). ``shapes``
    (:func:`daily_shapes`): day weights that spread usage and its money over a period; supply is
    spread by days, and so is everything when ``shapes`` is None or does not cover the period.
    """
    acc = accounts.select(
        "account_id",
        pl.col("service_type").alias("fuel"),
        "jurisdiction",
        "customer_class",
        pl.col("journal_segment").fill_null("").alias("segment"),
        pl.col("unbilled_from").alias("uf"),
        pl.col("unbilled_to").alias("ut"),
    )
    covered_to = billed.group_by("account_id").agg(pl.col("period_end").max().alias("_bt"))
    # min_horizontal skips nulls: an account with no invoice since has no covered day
    acc = acc.join(covered_to, on="account_id", how="left").with_columns(
        ct=pl.when(pl.col("_bt").is_not_null()).then(pl.min_horizontal("ut", "_bt"))
    )
    acc = acc.with_columns(covered=_days(pl.col("uf"), pl.col("ct")).fill_null(0).cast(pl.Int64))
    month_start = pl.date(pl.col("year_mnth") // 100, pl.col("year_mnth") % 100, 1)
    a = accrued.join(acc, on="account_id", how="inner").with_columns(
        _lo=pl.max_horizontal(month_start, pl.col("uf")),
        _hi=pl.min_horizontal(month_start.dt.month_end(), pl.col("ut")),
    )
    a = a.with_columns(
        _chi=pl.when(pl.col("ct").is_not_null())
        .then(pl.min_horizontal("_hi", "ct"))
        .otherwise(pl.col("_lo") - pl.duration(days=1))
    )
    a = _with_shape_sum(_with_shape_sum(a, "_lo", "_hi", "_sw", shapes), "_lo", "_chi", "_sc", shapes)
    n_days, c_days = _days(pl.col("_lo"), pl.col("_hi")), _days(pl.col("_lo"), pl.col("_chi"))
    a = (
        a.with_columns(
            _fd=pl.when(n_days > 0).then(c_days / n_days).otherwise(0.0),
            _fs=_share("_sc", "_sw", c_days, n_days),
        )
        .sort("account_id", "year_mnth")  # joins do not keep order: add in one order every run
        .group_by("account_id", maintain_order=True)
        .agg(
            (pl.col("volume") * pl.col("_fs")).sum().alias("accrued_volume"),
            (pl.col("usage_net") * pl.col("_fs") + pl.col("supply_net") * pl.col("_fd"))
            .sum()
            .alias("accrued_net"),
            (pl.col("usage_net") + pl.col("supply_net")).sum().alias("accrued_net_total"),
        )
    )
    b = billed.join(
        acc.select("account_id", *SHAPE_KEY, "uf", "ct"), on="account_id", how="inner"
    ).with_columns(
        _olo=pl.max_horizontal("period_start", "uf"),
        _ohi=pl.min_horizontal("period_end", "ct"),
    )
    b = _with_shape_sum(
        _with_shape_sum(b, "period_start", "period_end", "_sw", shapes), "_olo", "_ohi", "_so", shapes
    )
    o_days, l_days = (
        _days(pl.col("_olo"), pl.col("_ohi")).fill_null(0),
        _days(pl.col("period_start"), pl.col("period_end")),
    )
    flat = pl.when(l_days > 0).then(o_days / l_days).otherwise(0.0)
    b = (
        b.with_columns(
            _f=pl.when(pl.col("item_type") == "SUPPLY")
            .then(flat)
            .otherwise(_share("_so", "_sw", o_days, l_days))
        )
        .sort(
            "account_id",
            "period_start",
            "period_end",
            "item_type",
            "quantity",
            "net_amount",
            "discount_amount",
        )
        .group_by("account_id", maintain_order=True)
        .agg(
            (pl.col("quantity") * pl.col("_f"))
            .filter(pl.col("item_type").is_in(BILLED_VOLUME_ITEMS))
            .sum()
            .alias("billed_volume"),
            ((pl.col("net_amount") - pl.col("discount_amount")) * pl.col("_f")).sum().alias("billed_net"),
        )
    )
    per = (
        acc.sort("account_id")
        .select("account_id", "fuel", "segment", "covered")
        .join(a, on="account_id", how="left")
        .join(b, on="account_id", how="left")
        .with_columns(
            pl.col(c).fill_null(0.0)
            for c in ("accrued_volume", "accrued_net", "accrued_net_total", "billed_volume", "billed_net")
        )
        .sort("account_id")
    )
    aggs = [
        pl.len().cast(pl.Int64).alias("accounts"),
        (pl.col("covered") > 0).sum().cast(pl.Int64).alias("accounts_billed"),
        pl.col("covered").sum().cast(pl.Int64).alias("covered_days"),
        pl.col("accrued_volume").sum(),
        pl.col("billed_volume").sum(),
        pl.col("accrued_net").sum(),
        pl.col("billed_net").sum(),
        pl.col("accrued_net_total").sum(),
    ]
    frames = [
        per.group_by("fuel", "segment").agg(aggs),
        per.with_columns(segment=pl.lit(ALL)).group_by("fuel", "segment").agg(aggs),
        per.with_columns(segment=pl.lit(ALL), fuel=pl.lit(ALL))
        .group_by("fuel", "segment")
        .agg(aggs)
        .with_columns(accrued_volume=pl.lit(None, pl.Float64), billed_volume=pl.lit(None, pl.Float64)),
    ]
    out = pl.concat(frames, how="vertical_relaxed")
    out = out.with_columns(
        volume_difference=pl.col("accrued_volume") - pl.col("billed_volume"),
        net_difference=pl.col("accrued_net") - pl.col("billed_net"),
    ).with_columns(
        *[pl.col(c).round(3) for c in ("accrued_volume", "billed_volume", "volume_difference")],
        *[pl.col(c).round(2) for c in ("accrued_net", "billed_net", "net_difference", "accrued_net_total")],
        volume_difference_pct=_pct(pl.col("volume_difference"), pl.col("billed_volume")).round(2),
        net_difference_pct=_pct(pl.col("net_difference"), pl.col("billed_net")).round(2),
    )
    order = pl.when(pl.col("fuel") == ALL).then(2).when(pl.col("segment") == ALL).then(1).otherwise(0)
    return out.with_columns(_o=order).sort("_o", "fuel", "segment").drop("_o")


def summary(backtest: pl.DataFrame, trueup: pl.DataFrame, note: str | None) -> dict[str, Any]:
    """The phase's stats: the back-test and true-up rows (JSON-safe) and a note."""

    def rows(df: pl.DataFrame) -> list[dict[str, Any]]:
        return (
            df.drop("run_id", "run_date", strict=False)
            .with_columns(pl.col(pl.Decimal).cast(pl.Float64))
            .to_dicts()
        )

    return {"backtest": rows(backtest), "trueup": rows(trueup), "note": note}


# ---------------------------------------------------------------- the phase (tasks/pipeline/accrual.py: validation)


def backtest_from_work(ctx: Any) -> tuple[pl.DataFrame, list[int]]:
    """The back-test metrics of a run from its work files (extract, profiles, basic pairs) and the
    meter data of the sampled shards (365 days before B for the scalars, B … R − 1 to compare)."""
    from tasks.domain.macro import gas_shape, macro_profile
    from tasks.pipeline.accrual import _get, _history_start, _interval_scan, _shard_of

    s = ctx.settings
    b = backtest_date(ctx.run_date, s.backtest_months)
    window_to = ctx.run_date - dt.timedelta(days=1)
    regs = _get(ctx, "extract", "registers")
    chosen = backtest_shards(regs, s.shards, s.backtest_registers)
    keys = (
        regs.filter(pl.col("service_type") == "ELECTRICITY")
        .select(segment_key(s.segment_with_tni))
        .unique()["segment"]
        .drop_nulls()
        .sort()
        .to_list()
    )
    hist_from = _history_start(ctx)
    fixed_b = profiles_as_at(
        _get(ctx, "profiles", "profiles"), keys, b, hist_from, window_to, s.min_registers
    )
    macro_b = macro_profile(fixed_b)
    # the gas shape as at B is fitted on the sampled shards' gas read pairs (a random sample of the
    # gas population; the full fit costs seconds at 100k accounts)
    gas_regs = (
        regs.filter((pl.col("service_type") == "GAS") & pl.col("shard").is_in(chosen))
        .select("meter_register_id", "jurisdiction")
        .unique("meter_register_id")
    )
    frames = [_get(ctx, "basic", "pairs", shard) for shard in chosen]
    frames = [f for f in frames if f.width]
    pairs = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    gas_pairs = (
        pairs.filter(pl.col("end") < b).join(gas_regs, on="meter_register_id", how="inner")
        if pairs.width
        else pairs
    )
    jurisdictions = sorted(regs["jurisdiction"].drop_nulls().unique().to_list())
    # the ELECTRIC_HEATING driver from the profiles as at B, as the gas_shape phase does with R's
    gas_macro_b, _ = gas_shape(
        gas_pairs, jurisdictions, hist_from, window_to, macro=macro_b, fixed=fixed_b
    )

    def compare(shard: int) -> pl.DataFrame:
        history = _interval_scan(ctx, shard, b - dt.timedelta(days=365), b - dt.timedelta(days=1))
        window = _interval_scan(ctx, shard, b, window_to)
        return interval_compare(
            _shard_of(regs, shard), history, window, fixed_b, b, window_to, s.segment_with_tni
        )

    sample = regs.filter(pl.col("shard").is_in(chosen))
    reads = _get(ctx, "extract", "basic_reads")
    reads = reads.filter(pl.col("shard").is_in(chosen)) if "shard" in reads.columns else reads
    # the sampled shards' comparisons and the basic one are independent: on BACKTEST_THREADS
    # threads (each shard's reads are one month file or one NMI-filtered scan at a time, so one
    # shard alone leaves a core idle); results in the same order as one after the other
    with ThreadPoolExecutor(BACKTEST_THREADS, thread_name_prefix="bua-backtest") as pool:
        interval = [pool.submit(compare, shard) for shard in chosen]
        basic = pool.submit(basic_compare, sample, reads, macro_b, gas_macro_b, b, ctx.basic_method)
        parts = [f.result() for f in interval] + [basic.result()]
    compared = pl.concat(parts, how="vertical_relaxed")
    metrics = backtest_metrics(compared).with_columns(
        backtest_date=pl.lit(b, pl.Date), window_to=pl.lit(window_to, pl.Date)
    )
    return metrics.select(BACKTEST_COLUMNS), chosen


def previous_run_fingerprint(url: str, run_date: dt.date) -> list[str]:
    """The previous run's rows the true-up reads, as a short content fingerprint (empty: no earlier run).

    Part of the validation phase's cache key (flows/fingerprints.py): the input fingerprints cover the
    source tables, not earlier runs' outputs, so without it a later run date's cached true-up would
    outlive a re-run of the earlier run date that changed its accrual."""
    from tasks.adapters.db import read_sql

    n, f = pl.Int64, pl.Float64
    schema = {"run_date": pl.Date, "account_rows": n, "net_amount": f, "volume": f, "unbilled_days": n}
    rows = read_sql(url, "validation_previous_fingerprint", {"run_date": run_date}, schema)
    return [str(v) for v in rows.row(0)] if rows.height else []


def trueup_from_database(
    url: str, run_date: dt.date, macro: pl.DataFrame | None = None, gas_macro: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, dt.date | None]:
    """The true-up rows against the previous run date found in the database (None: no earlier run).

    ``macro`` / ``gas_macro``: this run's macro profiles (they hold the actual shape of the days
    since the previous run), used to spread usage over days (:func:`daily_shapes`)."""
    from tasks.adapters.db import read_sql

    prev = read_sql(url, "validation_previous_run", {"run_date": run_date}, {"run_date": pl.Date})
    previous = prev["run_date"][0] if prev.height else None
    if previous is None:
        return pl.DataFrame(schema={c: pl.Utf8 for c in TRUEUP_COLUMNS}).head(0), None
    d, n, f, t = pl.Date, pl.Int64, pl.Float64, pl.Utf8
    accounts = read_sql(
        url,
        "validation_accrued_accounts",
        {"run_date": previous},
        {
            "account_id": n,
            "service_type": t,
            "jurisdiction": t,
            "customer_class": t,
            "journal_segment": t,
            "unbilled_from": d,
            "unbilled_to": d,
        },
    )
    accrued = read_sql(
        url,
        "validation_accrued_lines",
        {"run_date": previous},
        {"account_id": n, "year_mnth": n, "volume": f, "supply_net": f, "usage_net": f},
    )
    billed = read_sql(
        url,
        "validation_billed_lines",
        {"since": previous, "run_date": run_date},
        {"account_id": n, "item_type": t, "period_start": d, "period_end": d, "quantity": f,
         "net_amount": f, "discount_amount": f},
    )  # fmt: skip
    shapes = daily_shapes(accounts, macro, gas_macro) if macro is not None and gas_macro is not None else None
    rows = trueup_rows(accounts, accrued, billed, shapes).with_columns(
        accrual_run_date=pl.lit(previous, pl.Date)
    )
    return rows.select(TRUEUP_COLUMNS), previous


def write_validation(
    url: str, run_id: str, run_date: dt.date, frames: dict[str, pl.DataFrame]
) -> dict[str, int]:
    """Replace the run date's rows of bua_backtest and bua_trueup in one transaction."""
    from sql.schema import VALIDATION_TABLES, metadata
    from tasks.adapters.db import insert_frame, require_tables, transaction

    require_tables(url, VALIDATION_TABLES)
    counts = {}
    with transaction(url) as conn:
        for name in VALIDATION_TABLES:
            tbl = metadata.tables[name]
            conn.execute(tbl.delete().where(tbl.c.run_date == run_date))
            df = frames[name].with_columns(
                pl.lit(run_id).alias("run_id"), pl.lit(run_date, pl.Date).alias("run_date")
            )
            counts[name] = insert_frame(conn, name, df)
    return counts


def run_validation(ctx: Any) -> dict[str, Any]:
    """The validation phase: back-test and true-up → tables, CSVs, stats for the UI."""
    from tasks.adapters.export import accrual_export_url, export_tables
    from tasks.adapters.prepare import typed_like_table

    backtest, chosen = backtest_from_work(ctx)
    from tasks.pipeline.accrual import _get

    trueup, previous = trueup_from_database(
        ctx.settings.database_url,
        ctx.run_date,
        _get(ctx, "segments", "macro"),
        _get(ctx, "segments", "gas_macro"),
    )
    frames = {"bua_backtest": backtest, "bua_trueup": trueup}
    counts = write_validation(ctx.settings.database_url, ctx.run_id, ctx.run_date, frames)
    typed = {
        name: typed_like_table(
            name, df.with_columns(pl.lit(ctx.run_id).alias("run_id"), pl.lit(ctx.run_date).alias("run_date"))
        )
        for name, df in frames.items()
    }
    files = export_tables(typed, accrual_export_url(ctx.settings, ctx.run_date), ctx.settings)
    note = (
        f"true-up: no run before {ctx.run_date} in the database; nothing to compare yet"
        if previous is None
        else f"true-up: the accrual of {previous} against the invoices issued {previous} … {ctx.run_date - dt.timedelta(days=1)}"
    )
    stats = summary(typed["bua_backtest"], typed["bua_trueup"], note)
    stats.update(
        backtest_date=backtest_date(ctx.run_date, ctx.settings.backtest_months).isoformat(),
        backtest_shards=chosen,
        trueup_run_date=previous.isoformat() if previous else None,
        rows=counts,
    )
    return {"files": files, "stats": stats}
