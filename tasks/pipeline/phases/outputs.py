"""Publishing a run (SPEC §4.5, §4.6, §6): the output tables, the CSV exports, the validation, the
report and the "finished" message. Each phase returns frames; the sinks that write them to the
database or the output location live in tasks/pipeline/sinks.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from tasks.adapters.row_slices import ShardRows, slice_bounds
from tasks.domain.exceptions import counts_by_account
from tasks.pipeline.datasets import PhaseContext, concat_shards

# prepare writes the account-ordered tables in slices of this many accounts (issue 14: its memory
# follows the slice and the shard, not the portfolio; 1M accounts: 31 slices)
SLICE_ACCOUNTS = 32_768

EXPORT_ORDER = {
    "invoice_line_item_monthly": ["account_id", "year_mnth", "plan_item_type_name", "feature_type_name",
                                  "time_class_name"],
    "bua_account_summary": ["account_id"],
    "accrual_summary": ["year_mnth", "state", "fuel", "segment", "ili_state", "discount_state",
                        "feature_type_name", "time_class_name"],
    "bua_exception": ["account_id", "meter_register_id", "code", "detail"],
    "estimated_basic_read": ["meter_register_id", "read_date"],
}  # fmt: skip


def output_frames(
    bua_exception: pl.DataFrame,
    account_totals: Sequence[pl.DataFrame],
    lines: Sequence[pl.DataFrame],
    estimated_basic_read: Sequence[pl.DataFrame],
) -> dict[str, pl.DataFrame]:
    """The run's rows of the four row tables (SPEC §4.5), from the shards' frames."""
    accounts = (
        concat_shards(account_totals)
        .join(counts_by_account(bua_exception), on="account_id", how="left")
        .with_columns(pl.col("exception_count").fill_null(0))
        .sort("account_id")
    )
    return {
        # the shards' lines by account (a stable sort: each account's lines keep their order, so the
        # database's index order and every sum over it are the same; the index is written in order)
        "invoice_line_item_monthly": concat_shards(lines).sort("account_id", maintain_order=True),
        "bua_account_summary": accounts,
        "bua_exception": bua_exception,
        "estimated_basic_read": concat_shards(estimated_basic_read),
    }


def exception_counts(bua_exception: pl.DataFrame) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """What gives a shard's account totals their ``exception_count`` (0 without one): the account
    summary's rows, for the table (prepare) and its CSV (export) alike."""
    counts = counts_by_account(bua_exception)

    def with_exceptions(df: pl.DataFrame) -> pl.DataFrame:
        return df.join(counts, on="account_id", how="left").with_columns(
            pl.col("exception_count").fill_null(0)
        )

    return with_exceptions


def prepare(
    ctx: PhaseContext,
    bua_exception: pl.DataFrame,
    account_totals: Sequence[pl.DataFrame],
    lines: Sequence[pl.DataFrame],
    estimated_basic_read: Sequence[pl.DataFrame],
    slice_accounts: int = SLICE_ACCOUNTS,
) -> dict[str, Any]:
    """The output tables of the run (written in one transaction by the ``output_tables`` sink, which
    also has the database compute ``accrual_summary`` from them, sql/accrual_summary.sql).

    The rows of :func:`output_frames`, in its order, but given shard by shard (``ShardRows``): the
    sink writes the two account-ordered tables in slices of ``slice_accounts`` accounts, each
    slice every shard's rows of its accounts stably sorted by account — the rows and row order of
    the one sort of every shard's rows (tasks/adapters/row_slices.py) — so neither the flow process
    nor the SQLite writer holds the whole portfolio's lines."""
    with_exceptions = exception_counts(bua_exception)
    bounds = slice_bounds(account_totals, "account_id", slice_accounts)
    frames = {
        "invoice_line_item_monthly": ShardRows(lines, by="account_id", bounds=bounds),
        "bua_account_summary": ShardRows(
            account_totals, by="account_id", bounds=bounds, each=with_exceptions
        ),
        "bua_exception": bua_exception,
        "estimated_basic_read": ShardRows(estimated_basic_read),
    }
    return {"output_tables": frames, "accrual_summary": None}


def export(
    ctx: PhaseContext,
    bua_exception: pl.DataFrame,
    account_totals: Sequence[pl.DataFrame],
    lines: Sequence[pl.DataFrame],
    estimated_basic_read: Sequence[pl.DataFrame],
    accrual_summary: pl.DataFrame,
    slice_rows: int = SLICE_ACCOUNTS,
) -> dict[str, Any]:
    """The CSV files of the run's output tables (SPEC §6), typed like the table columns, each
    sorted by its ``EXPORT_ORDER``. The line items, the account summary and the estimated basic
    reads are given shard by shard (``SlicedRows``) and written in slices of ``slice_rows``
    accounts (registers): each slice's rows, typed and stably sorted by the export's keys, which
    lead with the slice key — so, slice after slice, the rows in the order of :func:`output_frames`
    sorted at once, without the whole portfolio's lines in memory (issue 14)."""
    from tasks.adapters.export import SlicedRows
    from tasks.adapters.prepare import typed_like_table  # the schema's column types (sql/schema.py)

    stamp = [pl.lit(ctx.run_id).alias("run_id"), pl.lit(ctx.run_date).alias("run_date"),
             pl.lit(ctx.scenario).alias("scenario")]  # fmt: skip

    def finish(name: str) -> Callable[[pl.DataFrame], pl.DataFrame]:
        def typed_sorted(df: pl.DataFrame) -> pl.DataFrame:
            typed = typed_like_table(name, df.with_columns(stamp))
            return typed.sort(EXPORT_ORDER[name], nulls_last=True, maintain_order=True)

        return typed_sorted

    with_exceptions = exception_counts(bua_exception)
    accounts = slice_bounds(account_totals, "account_id", slice_rows)
    registers = slice_bounds(estimated_basic_read, "meter_register_id", slice_rows)
    tables: dict[str, Any] = {
        "invoice_line_item_monthly": SlicedRows(
            ShardRows(lines, by="account_id", bounds=accounts), finish("invoice_line_item_monthly")
        ),
        "bua_account_summary": SlicedRows(
            ShardRows(account_totals, by="account_id", bounds=accounts, each=with_exceptions),
            finish("bua_account_summary"),
        ),
        "accrual_summary": accrual_summary.sort(
            EXPORT_ORDER["accrual_summary"], nulls_last=True, maintain_order=True
        ),
        "bua_exception": finish("bua_exception")(bua_exception),
        "estimated_basic_read": SlicedRows(
            ShardRows(estimated_basic_read, by="meter_register_id", bounds=registers),
            finish("estimated_basic_read"),
        ),
    }
    return {"csv_exports": {name: tables[name] for name in EXPORT_ORDER}}
