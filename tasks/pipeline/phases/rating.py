"""Rating (SPEC §4.4) of each shard's unbilled usage — or, with ``BUA_ENGINE_ENABLED``, the external
billing engine's lines for the run (issue 16) — the account totals, and every phase's exceptions in
one frame."""

from __future__ import annotations

import polars as pl

from tasks.domain.account_summary import account_totals
from tasks.domain.exceptions import combine
from tasks.domain.rating import LINE_COLUMNS, rate_unbilled, register_day_sums
from tasks.domain.unbilled import account_days
from tasks.pipeline.datasets import PhaseContext
from tasks.pipeline.phases.profiles import of_shard


def engine_lines(ctx: PhaseContext, windows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The external engine's invoice run for the run date (scaled up and down around it), read back
    in ``invoice_line_item_monthly`` shape; no rows (and no engine call) unless the engine is on."""
    if not ctx.settings.engine_enabled:
        return {"engine_lines": pl.DataFrame(schema=_line_schema())}
    from tasks.pipeline.legacy_phases import engine_lines as run_engine

    lines = run_engine(ctx.run_date, ctx.run_id, ctx.settings).select(LINE_COLUMNS)
    return {"engine_lines": lines.filter(pl.col("account_id").is_in(windows["account_id"].implode()))}


def _line_schema() -> dict[str, pl.DataType]:
    from tasks.adapters.billing_engine import LINE_SCHEMA

    return dict(LINE_SCHEMA)


def rating(
    ctx: PhaseContext,
    windows: pl.DataFrame,
    interval_usage: pl.DataFrame,
    basic_usage: pl.DataFrame,
    account_plans: pl.DataFrame,
    plans: pl.DataFrame,
    plan_rates: pl.DataFrame,
    tou_windows: pl.DataFrame,
    discounts: pl.DataFrame,
    engine_lines: pl.DataFrame,
) -> dict[str, pl.DataFrame]:
    """Rate the shard's unbilled usage (or take the engine's lines); account-level totals."""
    w = of_shard(windows, ctx.shard)
    usage = pl.concat([interval_usage, basic_usage], how="vertical_relaxed")
    sums = register_day_sums(usage)
    if ctx.settings.engine_enabled:
        lines = engine_lines.filter(pl.col("account_id").is_in(w["account_id"].implode()))
        return {"lines": lines, "account_totals": account_totals(w, lines, usage, sums),
                "rating_exceptions": combine([])}  # fmt: skip
    lines, exc = rate_unbilled(
        w, account_days(w), usage, account_plans, plans, plan_rates, tou_windows, discounts,
        w.select("account_id", "propensity"), ctx.settings.gst_rate, row_sums=sums,
    )  # fmt: skip
    return {"lines": lines, "account_totals": account_totals(w, lines, usage, sums), "rating_exceptions": exc}


def exceptions(
    ctx: PhaseContext,
    extract_exceptions: pl.DataFrame,
    windows_exceptions: pl.DataFrame,
    profile_exceptions: list[pl.DataFrame],
    read_pair_exceptions: list[pl.DataFrame],
    scalar_exceptions: list[pl.DataFrame],
    basic_exceptions: list[pl.DataFrame],
    interval_exceptions: list[pl.DataFrame],
    rating_exceptions: list[pl.DataFrame],
) -> dict[str, pl.DataFrame]:
    """Every phase's exception rows in one sorted frame (bua_exception)."""
    parts = [extract_exceptions, windows_exceptions]
    for shard in range(ctx.shards):
        parts += [
            profile_exceptions[shard],
            read_pair_exceptions[shard],
            scalar_exceptions[shard],
            basic_exceptions[shard],
            interval_exceptions[shard],
            rating_exceptions[shard],
        ]
    return {"bua_exception": combine(parts)}
