"""The ground truth: true consumption of every register-day of meter data (never read by the engine).

``truth/register_day.parquet``: meter_register_id, account_id (the account holding the site that
day; null when none), nmi, suffix, stream, read_date, interval_minutes (null for basic registers),
consumption (kWh or MJ, 3 decimals; for interval registers the exact sum of the true interval
values, which equal the NEM12 values wherever the MDP delivered actual data). Written one row
group per batch, in batch order, so the file is deterministic and memory stays bounded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from tasks.generate.calendar import Calendar

SCHEMA = {
    "meter_register_id": pl.Int64,
    "account_id": pl.Int64,
    "nmi": pl.String,
    "suffix": pl.String,
    "stream": pl.String,
    "read_date": pl.Date,
    "interval_minutes": pl.Int16,
    "consumption": pl.Float64,
}


def truth_rows(
    regs: pl.DataFrame,
    daily: np.ndarray,
    on: np.ndarray,
    data_cal: Calendar,
    accounts: pl.DataFrame,
    data0: int,
) -> pl.DataFrame:
    """Rows for the active register-days of a batch; ``daily``/``on`` are (n, data days)."""
    r, d = np.nonzero(on)
    site = regs["site_id"].to_numpy()[r]
    rows = pl.DataFrame(
        {
            "row": r,
            "site_id": site,
            "day": (d + data0).astype(np.int64),
            "consumption": np.round(daily[r, d], 3),
        }
    )
    acc = accounts.sort("open_i")
    rows = rows.sort("day").join_asof(
        acc, left_on="day", right_on="open_i", by="site_id", strategy="backward", check_sortedness=False
    )
    rows = rows.with_columns(
        pl.when(pl.col("close_i").is_null() | (pl.col("close_i") >= pl.col("day")))
        .then(pl.col("account_id"))
        .alias("account_id")
    )
    meta = regs.select(
        pl.int_range(pl.len()).alias("row"), pl.col("id").alias("meter_register_id"), pl.col("identifier").alias("nmi"), "suffix", "stream",
        pl.col("interval_minutes").cast(pl.Int16),
    )  # fmt: skip
    return (
        rows.join(meta, on="row", how="left")
        .with_columns((pl.lit(data_cal.start) + pl.duration(days=pl.col("day") - data0)).alias("read_date"))
        .sort("meter_register_id", "read_date")
        .select([pl.col(c).cast(t) for c, t in SCHEMA.items()])
    )


class TruthWriter:
    """Appends batches as row groups of one zstd parquet file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None

    def write(self, df: pl.DataFrame) -> None:
        if df.height == 0:
            return
        table = df.to_arrow()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.write_table(table.cast(self._writer.schema))

    def close(self) -> None:
        if self._writer is None:
            pq.write_table(pl.DataFrame(schema=SCHEMA).to_arrow(), self.path, compression="zstd")
        else:
            self._writer.close()
