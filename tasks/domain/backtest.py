"""Back-test of the estimator (SPEC §4.6).

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
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence

import polars as pl

from tasks.domain.plausibility import Caps
from tasks.domain.profiles import one_row_per_register, segment_key

ALL = "ALL"
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
    caps: Caps | None = None,
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
    scalars, _ = scalars_shard(regs, history, fixed_b, backtest_day, segment_with_tni, caps)
    sums = interval_day_sums(regs, window, fixed_b, backtest_day, window_to, segment_with_tni, caps)
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
    caps: Caps | None = None,
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
    pairs_b, _ = read_pairs(regs, reads_b, caps)
    pairs_now, _ = read_pairs(regs, reads, caps)
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
        caps=caps,
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
