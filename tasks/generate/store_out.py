"""The meter store rows a NEM12 ingest of a batch's two deliveries would produce, without the text.

``bua generate --store DIR`` writes the interval meter store directly (docs/GENERATOR.md, "Large
portfolios"): a 1M-account portfolio's NEM12 text would be ~90 GB. For each delivery of a batch
(``mdp.delivery_records``: the same records, values and timestamps the NEM12 writer formats) this
builds the register-day rows ``tasks.adapters.nem12.parse_nem12`` reads back from that file, with
the ingest's own pieces where they carry NEM12 semantics: per-interval quality from the 300 flag
and the 400 runs (``_quality_strings``), the store's columns and dtypes (``meter_store``), the
dedupe of the two deliveries (latest UpdateDateTime, then the later file/line) and the partition
writer (``tasks.adapters.ingest_store``). Provenance is what the ingest of the files would record:
``source_file`` is the file name ``NEM12_{batch}_{delivery}.csv`` (even when no file is written)
and ``source_line`` the 1-based line of the day's 300 record in it. tests/generate/test_store_direct.py
proves the store equal to generate → ``ingest_nem12``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tasks.adapters.nem12_records import _quality_strings
from tasks.generate.calendar import Calendar
from tasks.generate.mdp import UNIT, E, P, V, delivery_records, file_name


def _line_numbers(r: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """1-based line of each 300 record in its file: the 100 header, a 200 record before each
    register's first day, and the 400 records after V (3) and partial (2) days."""
    new_reg = np.r_[True, r[1:] != r[:-1]] if r.size else np.zeros(0, bool)
    extra = np.select([kind == V, kind == P], [3, 2], 0)
    return 2 + np.cumsum(new_reg) + np.arange(r.size) + (np.cumsum(extra) - extra)


def _events(
    line: np.ndarray, kind: np.ndarray, a: np.ndarray, b: np.ndarray, cut: np.ndarray, k: int
) -> pl.DataFrame:
    """The 400 records of the V and partial days as runs (ctx300, lo, hi 1-based inclusive, flag)."""
    v, p = kind == V, kind == P
    lv, lp = line[v], line[p]
    runs = [
        (lv, np.ones_like(lv), a[v], "A"),
        (lv, a[v] + 1, b[v], "E"),
        (lv, b[v] + 1, np.full_like(lv, k), "A"),
        (lp, np.ones_like(lp), cut[p], "A"),
        (lp, cut[p] + 1, np.full_like(lp, k), "N"),
    ]
    return pl.concat(
        [
            pl.DataFrame(
                {"ctx300": ctx, "lo": lo, "hi": hi, "flag": pl.Series([flag]).new_from_index(0, ctx.size)},
                schema={"ctx300": pl.Int32, "lo": pl.Int32, "hi": pl.Int32, "flag": pl.String},
            )
            for ctx, lo, hi, flag in runs
        ]
    )


def delivery_frame(
    regs: pl.DataFrame, q: np.ndarray, plan: dict[str, np.ndarray], which: str, cal: Calendar, name: str
) -> pl.DataFrame:
    """Register-day rows (``REGISTER_DAY_SCHEMA`` columns, line order) of one delivery file."""
    k = q.shape[2]
    rec = delivery_records(regs, q, plan, which)
    r, d, kind = rec["r"], rec["d"], rec["kind"]
    line = _line_numbers(r, kind)
    epoch = np.datetime64(cal.start, "D")
    upd = (epoch + rec["upd_day"].astype("timedelta64[D]")).astype("datetime64[us]") + rec["minute"].astype(
        "timedelta64[m]"
    )
    days = pl.DataFrame(
        {
            "line": line.astype(np.int32),
            "quality_method": np.select([kind == E, (kind == V) | (kind == P)], ["E52", "V"], "A"),
            "n": np.full(r.size, k, np.int32),
        }
    )
    ev = _events(line, kind, plan["a"][r, d], plan["b"][r, d], plan["cut"][r, d], k)
    quality = _quality_strings(days, ev).get_column("quality")
    head = regs.select(
        pl.col("identifier").str.strip_chars().alias("nmi"),
        pl.col("suffix").str.strip_chars(),
        pl.col("unit").replace_strict(UNIT, default="kWh").str.to_uppercase().alias("unit"),
        pl.col("serial_number").str.strip_chars().fill_null("").alias("serial"),
        pl.col("register_no").str.strip_chars().fill_null("").alias("register_id"),
    )[r]
    values = (
        pl.Series("values", rec["milli"].reshape(-1) / 1000.0).reshape((r.size, k)).cast(pl.List(pl.Float64))
    )
    return head.with_columns(
        pl.Series("read_date", epoch + d.astype("timedelta64[D]")),
        pl.lit(1440 // k, pl.Int16).alias("interval_minutes"),
        values,
        quality,
        days.get_column("quality_method"),
        pl.lit("", pl.String).alias("reason_code"),  # the 300 record's ReasonCode field is empty
        pl.Series("update_datetime", upd),
        pl.Series("msats_load_datetime", upd + np.timedelta64(60, "m")),
        pl.lit(name).alias("source_file"),
        pl.Series("source_line", line.astype(np.int32)),
    )


def batch_register_days(
    regs: pl.DataFrame, q: np.ndarray, plan: dict[str, np.ndarray], cal: Calendar, batch: int
) -> pl.DataFrame:
    """Both deliveries' rows in file order then line order (as an ingest of the folder meets them)."""
    frames = [
        delivery_frame(regs, q, plan, which, cal, file_name(batch, delivery))
        for delivery, which in ((1, "first"), (2, "second"))
    ]
    return pl.concat([f for f in frames if f.height]) if any(f.height for f in frames) else frames[0]
