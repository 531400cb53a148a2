"""NEM13 (accumulation meter data) reader and the ``basic_read`` writer.

A 250 record carries one register's previous and current index reads, each with a date-time and
a QualityMethod, plus the quantity between them, the UOM and UpdateDateTime. ``parse_nem13``
returns one row per 250 record (vectorised, like the NEM12 reader) or rejects the file whole with
``file:line: reason``. ``basic_reads`` turns those into one read per (NMI, suffix, read date):
both the previous and the current read, because a previous read may be the only copy bua gets
of a read (the latest UpdateDateTime, then the later line, then the current read wins). Across
files the same rule holds: ``basic_read.update_datetime`` keeps the update time of the stored read
and an older update never replaces a newer one (:func:`write_basic_reads`).

550 records (B2B details: previous/current transaction code and retailer service order) carry no
read value, so they are checked for position and otherwise not kept (``basic_read`` has no
column for them). Reads are matched to ``meter_register.id`` with ``sql/meter_register_lookup.sql``
on (NMI, NMISuffix) — or (NMI, RegisterID) where the suffix matches nothing — among registers
active on the read date; reads whose NMI/register the database does not know are returned as
rejects with a reason, never silently dropped.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sql.schema import metadata
from tasks.adapters.db import read_sql, transaction
from tasks.adapters.mdff import (
    MAX_ERRORS,
    MAX_LINE_BYTES,
    MdffError,
    bad_datetime,
    envelope_problems,
    long_lines,
    mdff_datetime,
    mdff_lines,
    problems_where,
)

RECORD_TYPES = ("100", "250", "550", "900")
QUALITY = r"^[AEFNS][0-9]{0,2}$"

READ_SCHEMA: dict[str, pl.DataType] = {
    "nmi": pl.String(),
    "suffix": pl.String(),
    "register_id": pl.String(),
    "serial": pl.String(),
    "read_date": pl.Date(),
    "index_value": pl.Float64(),
    "quality": pl.String(),
    "update_datetime": pl.Datetime("us"),
    "source_file": pl.String(),
    "source_line": pl.Int32(),
}
LOOKUP_SCHEMA = {
    "meter_register_id": pl.Int64,
    "nmi": pl.String,
    "suffix": pl.String,
    "serial_number": pl.String,
    "start_date": pl.Date,
    "end_date": pl.Date,
}


def _f(i: int) -> pl.Expr:
    return pl.col("fields").list.get(i, null_on_oob=True).str.strip_chars()


def parse_nem13(text: str, name: str, max_line_bytes: int = MAX_LINE_BYTES) -> pl.DataFrame:
    """One row per 250 record, with both reads; :class:`MdffError` for a malformed file (a read or
    quantity that is not a finite number, e.g. ``1e400`` or ``nan``, or a line over the cap, too)."""
    lines = mdff_lines(text, fields=False)
    if too_long := long_lines(lines, max_line_bytes):
        raise MdffError(name, too_long)
    lines = lines.with_columns(pl.col("raw").str.split(",").alias("fields"))
    _check_header(lines, name)
    reads = _records_250(lines)
    after_250 = (pl.col("rec") == "550") & (pl.col("rec").shift(1) != "250")
    found = [
        *envelope_problems(lines, RECORD_TYPES, "NEM13"),
        problems_where(lines, after_250, "550 record not directly after a 250 record"),
        *_problems_250(reads),
    ]
    found = [f for f in found if f.height]
    if found:
        rows = (
            pl.concat([f.cast({"line": pl.Int32}) for f in found], how="vertical_relaxed")
            .unique()
            .sort("line", "reason")
            .head(MAX_ERRORS)
            .rows()
        )
        raise MdffError(name, [(int(a), str(b)) for a, b in rows])
    return reads.select(
        "nmi", "suffix", "register_id", "serial", "unit",
        "previous_read", "previous_datetime", "previous_quality",
        "current_read", "current_datetime", "current_quality",
        "quantity", "update_datetime",
        pl.lit(name).alias("source_file"), pl.col("line").alias("source_line"),
    )  # fmt: skip


def _check_header(lines: pl.DataFrame, name: str) -> None:
    """:class:`MdffError` for an empty file or one whose first record is not a NEM13 100 header."""
    if lines.height == 0:
        raise MdffError(name, [(1, "empty file: no 100 header record")])
    first = lines.row(0, named=True)
    if first["rec"] != "100" or (first["fields"][1:2] or [""])[0].strip().upper() != "NEM13":
        raise MdffError(
            name,
            [
                (
                    first["line"],
                    f"missing 100 header record of version NEM13 (first record: {first['raw'][:30]!r})",
                )
            ],
        )


def _records_250(lines: pl.DataFrame) -> pl.DataFrame:
    """The 250 records' fields, with the reads, quantity and date-times parsed (null where not)."""
    reads = lines.filter(pl.col("rec") == "250").select(
        "line",
        pl.col("fields").list.len().alias("n_fields"),
        _f(1).alias("nmi"),
        _f(3).fill_null("").alias("register_id"),
        _f(4).alias("suffix"),
        _f(6).fill_null("").alias("serial"),
        _f(8).alias("prev_text"),
        pl.col("fields").list.get(9, null_on_oob=True).alias("prev_dt_text"),
        _f(10).alias("previous_quality"),
        _f(13).alias("curr_text"),
        pl.col("fields").list.get(14, null_on_oob=True).alias("curr_dt_text"),
        _f(15).alias("current_quality"),
        _f(18).alias("qty_text"),
        _f(19).str.to_uppercase().alias("unit"),
        pl.col("fields").list.get(21, null_on_oob=True).alias("update_text"),
    )
    reads = reads.with_columns(
        pl.col("prev_text").cast(pl.Float64, strict=False).alias("previous_read"),
        pl.col("curr_text").cast(pl.Float64, strict=False).alias("current_read"),
        pl.col("qty_text").cast(pl.Float64, strict=False).alias("quantity"),
        mdff_datetime(pl.col("prev_dt_text")).alias("previous_datetime"),
        mdff_datetime(pl.col("curr_dt_text")).alias("current_datetime"),
        mdff_datetime(pl.col("update_text")).alias("update_datetime"),
    )
    return reads


def _problems_250(reads: pl.DataFrame) -> list[pl.DataFrame]:
    """The problems of the 250 records: field count, NMI, reads, quantity, date-times, quality."""
    return [
        problems_where(
            reads,
            pl.col("n_fields") < 20,
            pl.format("250 record has {} fields, needs at least 20", "n_fields"),
        ),
        problems_where(
            reads,
            (pl.col("nmi").fill_null("") == "") | (pl.col("suffix").fill_null("") == ""),
            "250 record without NMI or NMISuffix",
        ),
        problems_where(
            reads,
            pl.col("current_read").is_null()
            | (pl.col("current_read").is_finite() & (pl.col("current_read") < 0)),
            pl.format("250 record CurrentRegisterRead '{}' is not a non-negative number", "curr_text"),
        ),
        problems_where(
            reads,
            (pl.col("prev_text").fill_null("") != "")
            & (
                pl.col("previous_read").is_null()
                | (pl.col("previous_read").is_finite() & (pl.col("previous_read") < 0))
            ),
            pl.format("250 record PreviousRegisterRead '{}' is not a non-negative number", "prev_text"),
        ),
        *[
            problems_where(
                reads,
                ~pl.col(column).is_finite(),
                pl.format(f"250 record {field} '{{}}' is not a finite number", text),
            )
            for column, field, text in (
                ("current_read", "CurrentRegisterRead", "curr_text"),
                ("previous_read", "PreviousRegisterRead", "prev_text"),
                ("quantity", "Quantity", "qty_text"),
            )
        ],
        problems_where(
            reads,
            pl.col("current_datetime").is_null(),
            pl.format("250 record CurrentRegisterReadDateTime '{}' is not a valid date-time", "curr_dt_text"),
        ),
        problems_where(
            reads,
            bad_datetime(pl.col("prev_dt_text")),
            pl.format(
                "250 record PreviousRegisterReadDateTime '{}' is not a valid date-time", "prev_dt_text"
            ),
        ),
        problems_where(
            reads,
            ~pl.col("current_quality").fill_null("").str.contains(QUALITY),
            pl.format(
                "250 record CurrentQualityMethod '{}' is not valid", pl.col("current_quality").fill_null("")
            ),
        ),
        problems_where(
            reads,
            bad_datetime(pl.col("update_text")),
            pl.format("250 record UpdateDateTime '{}' is not a valid date-time", "update_text"),
        ),
        problems_where(
            reads,
            (pl.col("qty_text").fill_null("") != "") & pl.col("quantity").is_null(),
            pl.format("250 record Quantity '{}' is not a number", "qty_text"),
        ),
    ]


def basic_reads(records: pl.DataFrame) -> pl.DataFrame:
    """One index read per (nmi, suffix, read_date) from 250 rows (in file order, then line order).

    Quality is the first character of the QualityMethod (A actual, E estimate, S/F substitute).
    """
    base = ["nmi", "suffix", "register_id", "serial", "update_datetime", "source_file", "source_line", "_rec"]
    records = records.with_row_index("_rec")  # file order, then line order
    prev = records.filter(
        pl.col("previous_datetime").is_not_null() & pl.col("previous_read").is_not_null()
    ).select(
        *base,
        pl.col("previous_datetime").dt.date().alias("read_date"),
        pl.col("previous_read").alias("index_value"),
        pl.col("previous_quality").fill_null("A").str.slice(0, 1).alias("quality"),
        pl.lit(0).alias("_kind"),
    )
    curr = records.select(
        *base,
        pl.col("current_datetime").dt.date().alias("read_date"),
        pl.col("current_read").alias("index_value"),
        pl.col("current_quality").str.slice(0, 1).alias("quality"),
        pl.lit(1).alias("_kind"),
    )
    both = pl.concat([prev, curr])
    return (
        both.sort("nmi", "suffix", "read_date", "update_datetime", "_rec", "_kind", nulls_last=False)
        .unique(subset=["nmi", "suffix", "read_date"], keep="last", maintain_order=True)
        .select([pl.col(c).cast(t) for c, t in READ_SCHEMA.items()])
    )


def resolve_registers(reads: pl.DataFrame, registers: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(matched reads with meter_register_id, rejects with a reason) — registers from the lookup query."""
    active = (pl.col("start_date").is_null() | (pl.col("start_date") <= pl.col("read_date"))) & (
        pl.col("end_date").is_null() | (pl.col("read_date") <= pl.col("end_date"))
    )
    keyed = reads.with_row_index("_r")
    by_suffix = (
        keyed.join(registers, left_on=["nmi", "suffix"], right_on=["nmi", "suffix"], how="inner")
        .filter(active)
        .with_columns(pl.lit(0).alias("_rank"))
    )
    by_register = (
        keyed.join(registers, left_on=["nmi", "register_id"], right_on=["nmi", "suffix"], how="inner")
        .filter(active)
        .with_columns(pl.lit(1).alias("_rank"))
    )
    candidates = pl.concat([by_suffix, by_register], how="diagonal_relaxed").with_columns(
        (pl.col("serial_number") != pl.col("serial")).fill_null(True).alias("_other_serial")
    )
    best = candidates.sort("_r", "_rank", "_other_serial", "meter_register_id").unique(
        subset=["_r"], keep="first", maintain_order=True
    )
    matched = best.select(
        "meter_register_id",
        "read_date",
        "index_value",
        "quality",
        "update_datetime",
        "source_file",
        "source_line",
    ).sort("meter_register_id", "read_date")
    known_nmi = keyed.join(registers.select("nmi").unique(), on="nmi", how="semi").select("_r")
    rejects = (
        keyed.join(best.select("_r"), on="_r", how="anti")
        .with_columns(
            pl.when(pl.col("_r").is_in(known_nmi["_r"].implode()))
            .then(
                pl.format(
                    "no register {} (or register id {}) of NMI {} active on {}",
                    "suffix",
                    "register_id",
                    "nmi",
                    "read_date",
                )
            )
            .otherwise(pl.format("NMI {} is not in the database", "nmi"))
            .alias("reason")
        )
        .drop("_r")
    )
    return matched, rejects


def lookup_registers(database_url: str) -> pl.DataFrame:
    return read_sql(database_url, "meter_register_lookup", schema=LOOKUP_SCHEMA)


def write_basic_reads(database_url: str, matched: pl.DataFrame) -> dict[str, int]:
    """Upsert on (meter_register_id, read_date) in one transaction: the latest update wins.

    A read replaces the stored one when its UpdateDateTime is the same or later (the same: the
    later file wins, as for NEM12) or the stored row has none (it came from elsewhere); an older
    update never replaces a newer one, whatever order the files are ingested in. A newer update
    with the same value and quality is "unchanged" but its update time is kept, so that a file
    dated in between cannot win later. Returns counts ``inserted``, ``replaced``, ``unchanged`` and
    ``older`` (reads kept out because the stored read is a later update). Re-ingesting a file
    inserts nothing.
    """
    table = metadata.tables["basic_read"]
    counts = {"inserted": 0, "replaced": 0, "unchanged": 0, "older": 0}
    if matched.height == 0:
        return counts
    if "update_datetime" not in matched.columns:
        matched = matched.with_columns(pl.lit(None, dtype=pl.Datetime("us")).alias("update_datetime"))
    ids = matched["meter_register_id"].unique().sort().to_list()
    with transaction(database_url) as conn:
        existing = _stored_reads(conn, table, ids)
        joined = matched.with_columns(
            pl.col("index_value").round(3), pl.col("update_datetime").cast(pl.Datetime("us"))
        ).join(existing, on=["meter_register_id", "read_date"], how="left")
        stored = pl.col("id").is_not_null()
        new = joined.filter(~stored)
        older = (
            stored
            & pl.col("old_update").is_not_null()
            & (pl.col("update_datetime").is_null() | (pl.col("update_datetime") < pl.col("old_update")))
        )
        differs = ((pl.col("old_value") - pl.col("index_value")).abs() > 5e-4) | (
            pl.col("old_quality") != pl.col("quality")
        )
        later = pl.col("update_datetime").is_not_null() & (
            pl.col("old_update").is_null() | (pl.col("update_datetime") > pl.col("old_update"))
        )
        joined = joined.with_columns(
            _older=older.fill_null(False),
            _differs=(stored & differs).fill_null(False),
            _later=(stored & later).fill_null(False),
        )
        rewrite = joined.filter(~pl.col("_older") & (pl.col("_differs") | pl.col("_later")))
        if rewrite.height:
            ids_out = rewrite["id"].to_list()
            for start in range(0, len(ids_out), 500):
                conn.execute(table.delete().where(table.c.id.in_(ids_out[start : start + 500])))
        rows = pl.concat([new, rewrite.drop("_older", "_differs", "_later")]).select(
            "meter_register_id", "read_date", "index_value", "quality", "update_datetime"
        )
        for start in range(0, rows.height, 5000):
            conn.execute(table.insert(), rows.slice(start, 5000).to_dicts())
        n_older = joined.filter("_older").height
        n_replaced = joined.filter(~pl.col("_older") & pl.col("_differs")).height
        counts = {
            "inserted": new.height,
            "replaced": n_replaced,
            "unchanged": joined.height - new.height - n_replaced - n_older,
            "older": n_older,
        }
    return counts


def _stored_reads(conn: Connection, table: sa.Table, ids: list[int]) -> pl.DataFrame:
    """The stored ``basic_read`` rows of the registers ``ids`` (500 ids a query), with their id and
    the value, quality and update time as ``old_*``."""
    existing_rows = []
    for start in range(0, len(ids), 500):
        stmt = sa.select(
            table.c.id,
            table.c.meter_register_id,
            table.c.read_date,
            table.c.index_value,
            table.c.quality,
            table.c.update_datetime,
        ).where(table.c.meter_register_id.in_(ids[start : start + 500]))
        existing_rows += [tuple(r) for r in conn.execute(stmt)]
    return pl.DataFrame(
        existing_rows,
        schema={
            "id": pl.Int64,
            "meter_register_id": pl.Int64,
            "read_date": pl.Date,
            "old_value": pl.Float64,
            "old_quality": pl.String,
            "old_update": pl.Datetime("us"),
        },
        orient="row",
    )
