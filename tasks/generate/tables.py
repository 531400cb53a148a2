"""The generator's frames → rows of the SPEC §2 tables (``db/{table}.parquet``), schema columns only."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from sql.schema import metadata
from tasks.adapters.storage import parquet_bytes
from tasks.generate.calendar import Calendar
from tasks.generate.portfolio import Portfolio
from tasks.generate.reference import jurisdiction_frame, network_frame, segment_frame, tni_frame

# load order: parents before children
TABLE_ORDER = (
    "jurisdiction", "network", "tni", "journal_segment", "account", "site", "account_site", "meter", "meter_register",
    "basic_read", "tou_window", "plan", "plan_rate", "account_plan", "account_discount", "invoice", "invoice_line", "payment",
)  # fmt: skip


def _day(cal: Calendar, col: str, alias: str) -> pl.Expr:
    return (pl.lit(cal.start) + pl.duration(days=pl.col(col))).alias(alias)


def db_tables(
    p: Portfolio, regs: pl.DataFrame, plans: pl.DataFrame, plan_rate: pl.DataFrame, windows: pl.DataFrame,
    account_plan: pl.DataFrame, discounts: pl.DataFrame, inv: dict[str, pl.DataFrame], basic_reads: pl.DataFrame, cal: Calendar,
) -> dict[str, pl.DataFrame]:  # fmt: skip
    out = {
        "jurisdiction": jurisdiction_frame(),
        "network": network_frame(),
        "tni": tni_frame(),
        "journal_segment": segment_frame(),
        "account": p.accounts,
        "site": p.sites,
        "account_site": p.account_site,
        "meter": p.meters.rename({"site_id": "site_id"}),
        "meter_register": regs,
        "basic_read": (
            basic_reads.sort("meter_register_id", "day")
            .with_row_index("id", offset=1)
            # billing-system reads carry no MDFF update time (NEM13 ingest sets it)
            .with_columns(
                _day(cal, "day", "read_date"), pl.lit(None, dtype=pl.Datetime("us")).alias("update_datetime")
            )
            if basic_reads.height
            else pl.DataFrame(
                schema={
                    "id": pl.Int64,
                    "meter_register_id": pl.Int64,
                    "read_date": pl.Date,
                    "index_value": pl.Float64,
                    "quality": pl.String,
                    "update_datetime": pl.Datetime("us"),
                }
            )
        ),
        "tou_window": windows,
        "plan": plans,
        "plan_rate": plan_rate,
        "account_plan": account_plan.with_columns(pl.col("start_date").alias("start_date")),
        "account_discount": discounts,
        **inv,
    }
    # invoice and invoice_line are written chunk by chunk (ChunkWriter), not held here
    return {name: conform(name, out[name]) for name in TABLE_ORDER if name in out}


def conform(name: str, df: pl.DataFrame) -> pl.DataFrame:
    """Exactly the table's columns, in schema order, with portable types (ids i64, numbers f64)."""
    table = metadata.tables[name]
    exprs = []
    for col in table.columns:
        t = col.type.python_type if hasattr(col.type, "python_type") else str
        if col.name not in df.columns:
            raise KeyError(f"generator frame for {name} lacks {col.name}")
        e = pl.col(col.name)
        if t is int:
            e = e.cast(pl.Int64)
        elif t is bool:
            e = e.cast(pl.Boolean)
        elif t.__name__ in ("Decimal", "float"):
            # at the column's scale, so that every database stores exactly what the file holds
            scale = getattr(col.type, "scale", None)
            e = e.cast(pl.Float64).round(scale) if scale is not None else e.cast(pl.Float64)
        exprs.append(e)
    pk = [c.name for c in table.primary_key.columns]
    return df.select(exprs).sort(pk) if pk else df.select(exprs)


def write_tables(tables: dict[str, pl.DataFrame], folder: Path) -> dict[str, int]:
    sizes = {}
    for name, df in tables.items():
        data = parquet_bytes(df)
        (folder / f"{name}.parquet").write_bytes(data)
        sizes[name] = len(data)
    return sizes


class ChunkWriter:
    """``{folder}/{name}.parquet`` written one chunk of rows at a time (zstd, one or more row
    groups per chunk): the chunks must come in primary-key order. The rows are those
    :func:`write_tables` would write for the concatenated chunks; the file's bytes are not."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path, self.name, self.rows = folder / f"{name}.parquet", name, 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, df: pl.DataFrame) -> None:
        table = conform(self.name, df).to_arrow()
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.write_table(table.cast(self._schema))
        self.rows += table.num_rows

    def close(self) -> int:
        """Finish the file (at least one chunk, maybe empty, must have come); its size."""
        if self._writer is None:
            raise ValueError(f"{self.name}: no chunk written")
        self._writer.close()
        return self.path.stat().st_size
