"""Test helper: the 300 records of generated NEM12 files as a polars frame (vectorised, no reader)."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def day_records(files: list[Path]) -> pl.DataFrame:
    """One row per 300 record: file, nmi, suffix, read_date, quality, update, line text (values part)."""
    frames = []
    for order, f in enumerate(files):
        lines = pl.Series("line", f.read_bytes().decode().split("\r\n"))
        df = pl.DataFrame(lines).with_columns(pl.col("line").str.split(",").alias("f"))
        df = df.with_columns(
            pl.when(pl.col("line").str.starts_with("200,"))
            .then(pl.col("f").list.get(1))
            .forward_fill()
            .alias("nmi"),
            pl.when(pl.col("line").str.starts_with("200,"))
            .then(pl.col("f").list.get(4))
            .forward_fill()
            .alias("suffix"),
        ).filter(pl.col("line").str.starts_with("300,"))
        frames.append(
            df.select(
                pl.lit(f.name).alias("file"),
                pl.lit(order).alias("order"),
                "nmi",
                "suffix",
                pl.col("f").list.get(1).str.to_date("%Y%m%d").alias("read_date"),
                pl.col("f").list.get(-5).alias("quality"),
                pl.col("f").list.get(-2).alias("update"),
                pl.col("f").list.slice(2, pl.col("f").list.len() - 7).list.join(",").alias("values"),
            )  # fmt: skip
        )
    return pl.concat(frames)
