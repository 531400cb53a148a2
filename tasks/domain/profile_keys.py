"""Segment keys of registers (SPEC §4.2) and the one-row-per-register rule (tasks.domain.profiles)."""

from __future__ import annotations

import numpy as np
import polars as pl


def segment_key(with_tni: bool = False) -> pl.Expr:
    """``customer_class|jurisdiction|stream`` (``|tni`` appended when segmenting by TNI)."""
    parts = [pl.col("customer_class"), pl.col("jurisdiction"), pl.col("stream")]
    if with_tni:
        parts.append(pl.col("tni").fill_null("-"))
    return pl.concat_str(parts, separator="|").alias("segment")


def parent_key() -> pl.Expr:
    """The parent segment ``*|jurisdiction|stream``."""
    return pl.concat_str([pl.lit("*"), pl.col("jurisdiction"), pl.col("stream")], separator="|").alias(
        "parent"
    )


def parent_of(segment: pl.Expr) -> pl.Expr:
    """Parent key of a segment key string (drops customer class and TNI)."""
    parts = segment.str.split("|")
    return pl.concat_str([pl.lit("*"), parts.list.get(1), parts.list.get(2)], separator="|")


def one_row_per_register(registers: pl.DataFrame) -> pl.DataFrame:
    """A register held by several accounts over time (moves) appears once per account in the
    registers frame; meter data must be counted once: keep the row of its latest account."""
    return registers.sort("meter_register_id", "account_id").unique(
        "meter_register_id", keep="last", maintain_order=True
    )


def interval_registers(registers: pl.DataFrame, segment_with_tni: bool = False) -> pl.DataFrame:
    """Interval registers with their segment and parent keys."""
    return registers.filter(pl.col("interval_minutes").is_not_null()).with_columns(
        segment_key(segment_with_tni), parent_key()
    )


def segment_codes(regs: pl.DataFrame) -> tuple[list[str], np.ndarray]:
    """Sorted distinct segments of ``regs`` and each row's index into them (-1: no segment)."""
    names = regs["segment"].drop_nulls().unique().sort().to_list()
    code = regs.select(
        pl.col("segment").replace_strict(names, list(range(len(names))), default=-1, return_dtype=pl.Int64)
    ).to_series()
    return names, code.to_numpy()
