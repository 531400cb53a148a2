"""Query results to polars frames of explicit types: rows from SQLAlchemy, and the casts to a
schema (SQLite returns dates as text; connectorx reads SQLite NUMERIC text as floats)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from tasks.adapters.db_engine import DatabaseError


def _sqlite_numbers_as_text(df: pl.DataFrame, schema: Mapping[str, Any]) -> pl.DataFrame:
    """Text wanted from a NUMERIC column read as floats: as Python's sqlite3 gives it ("5", "5.25").

    SQLite stores an integral NUMERIC value as an integer, which the SQLAlchemy path renders
    without a decimal point; connectorx reads the whole column as f64 ("5.0").
    """
    fix = [
        c
        for c, t in schema.items()
        if c in df.columns and (t == pl.String or t == pl.Utf8) and df.schema[c] in (pl.Float64, pl.Float32)
    ]
    if not fix:
        return df
    return df.with_columns(
        pl.when((pl.col(c) == pl.col(c).floor()) & (pl.col(c).abs() < 2**53))
        .then(pl.col(c).cast(pl.Int64).cast(pl.String))
        .otherwise(pl.col(c).cast(pl.String))
        .alias(c)
        for c in fix
    )


def _frame(data: dict[str, list[Any]], schema: Mapping[str, Any]) -> pl.DataFrame:
    out = {}
    for c, values in data.items():
        target = schema.get(c)
        if target in (pl.Date, pl.Datetime) or isinstance(target, pl.Datetime):
            out[c] = pl.Series(c, [None if v is None else str(v) for v in values], dtype=pl.String)
        elif target is not None and (target == pl.String or target == pl.Utf8):
            out[c] = pl.Series(c, [None if v is None else str(v) for v in values], dtype=pl.String)
        else:
            out[c] = pl.Series(
                c, [None if v is None else float(v) if _is_decimal(v) else v for v in values], strict=False
            )
    return pl.DataFrame(out)


def _is_decimal(v: Any) -> bool:
    import decimal

    return isinstance(v, decimal.Decimal)


def cast_frame(df: pl.DataFrame, schema: Mapping[str, Any]) -> pl.DataFrame:
    """Cast columns to ``schema``; date/datetime columns that arrive as text are parsed."""
    exprs = []
    for c, t in schema.items():
        if c not in df.columns:
            raise DatabaseError(f"query result lacks column {c!r}")
        col = pl.col(c)
        dtype = df.schema[c]
        if t == pl.Date and dtype == pl.String:
            exprs.append(col.str.slice(0, 10).str.to_date("%Y-%m-%d").alias(c))
        elif (t == pl.Datetime or isinstance(t, pl.Datetime)) and dtype == pl.String:
            exprs.append(
                col.str.replace("T", " ")
                .str.slice(0, 19)
                .str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
                .alias(c)
            )
        else:
            exprs.append(col.cast(t).alias(c))
    return df.select(exprs)
