"""The ground truth: true consumption of every register-day of meter data (never read by the engine).

``truth/register_day.parquet``: meter_register_id, account_id (the account holding the site that
day; null when none), nmi, suffix, stream, read_date, interval_minutes (null for basic registers),
consumption (kWh or MJ, 3 decimals; for interval registers the exact sum of the true interval
values, which equal the NEM12 values wherever the MDP delivered actual data). Written one row
group per batch, in batch order, so the file is deterministic and memory stays bounded.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
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


def site_accounts(accounts: pl.DataFrame) -> pl.DataFrame:
    """Per site: first account (a1, closing c1) and the next one (a2, opening o2); a site has at most two."""
    acc = accounts.sort("site_id", "open_i").with_columns(pl.int_range(pl.len()).over("site_id").alias("nth"))
    one = acc.filter(pl.col("nth") == 0).select(
        "site_id", pl.col("account_id").alias("a1"), pl.col("close_i").alias("c1")
    )
    two = acc.filter(pl.col("nth") == 1).select(
        "site_id", pl.col("account_id").alias("a2"), pl.col("open_i").alias("o2")
    )
    return one.join(two, on="site_id", how="left")


def account_of_day(regs: pl.DataFrame, per_site: pl.DataFrame, r: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Account holding the register's site on each day (0 when none)."""
    per_reg = regs.select("site_id").join(per_site, on="site_id", how="left", maintain_order="left")
    big = np.iinfo(np.int64).max
    a1, c1 = per_reg["a1"].fill_null(0).to_numpy()[r], per_reg["c1"].fill_null(big).to_numpy()[r]
    a2, o2 = per_reg["a2"].fill_null(0).to_numpy()[r], per_reg["o2"].fill_null(big).to_numpy()[r]
    return np.where(day <= c1, a1, np.where(day >= o2, a2, 0))


def truth_rows(
    regs: pl.DataFrame,
    daily: np.ndarray,
    on: np.ndarray,
    data_cal: Calendar,
    per_site: pl.DataFrame,
    data0: int,
) -> pa.Table:
    """Rows for the active register-days of a batch; ``daily``/``on`` are (n, data days)."""
    r, d = np.nonzero(on)
    account = account_of_day(regs, per_site, r, d + data0)
    rows = pl.Series("r", r.astype(np.uint32))
    minutes = regs["interval_minutes"].gather(rows)
    # built in polars and handed over as arrow (pyarrow's numpy path would import pandas)
    return (
        pl.DataFrame(
            {
                "meter_register_id": regs["id"].gather(rows),
                "account_id": pl.Series(account).replace(0, None),
                "nmi": regs["identifier"].gather(rows),
                "suffix": regs["suffix"].gather(rows),
                "stream": regs["stream"].gather(rows),
                "read_date": pl.Series(
                    (d + (data_cal.start - dt.date(1970, 1, 1)).days).astype(np.int32)
                ).cast(pl.Date),
                "interval_minutes": minutes,
                "consumption": np.round(daily[r, d], 3),
            }
        )
        .select([pl.col(c).cast(t) for c, t in SCHEMA.items()])
        .to_arrow()
    )


class TruthWriter:
    """Appends batches as row groups of one zstd parquet file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.write_table(table.cast(self._writer.schema))

    def close(self) -> None:
        if self._writer is None:
            pq.write_table(
                pl.DataFrame(schema=SCHEMA).to_arrow(), self.path, compression="zstd"
            )  # no register at all
        else:
            self._writer.close()
