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


def _records(
    regs: pl.DataFrame, q: np.ndarray, plan: dict[str, np.ndarray], which: str, cal: Calendar
) -> dict[str, np.ndarray | pl.Series]:
    """One delivery file's records (line order) as arrays: register row ``r``, day ``d``, 300-record
    line, UpdateDateTime, delivered thousandths, QualityMethod and per-interval quality strings."""
    k = q.shape[2]
    rec = delivery_records(regs, q, plan, which)
    r, d, kind = rec["r"], rec["d"], rec["kind"]
    line = _line_numbers(r, kind)
    epoch = np.datetime64(cal.start, "D")
    upd = (epoch + rec["upd_day"].astype("timedelta64[D]")).astype("datetime64[us]") + rec["minute"].astype(
        "timedelta64[m]"
    )
    method = pl.Series(np.select([kind == E, (kind == V) | (kind == P)], [1, 2], 0).astype(np.uint8))
    days = pl.DataFrame(
        {
            "line": line.astype(np.int32),
            # codes mapped in polars: a numpy array of strings is slow to hand over
            "quality_method": method.replace_strict([0, 1, 2], ["A", "E52", "V"], return_dtype=pl.String),
            "n": np.full(r.size, k, np.int32),
        }
    )
    ev = _events(line, kind, plan["a"][r, d], plan["b"][r, d], plan["cut"][r, d], k)
    return {
        "r": r,
        "d": d,
        "line": line.astype(np.int32),
        "upd": upd,
        "milli": rec["milli"],
        "quality_method": days.get_column("quality_method"),
        "quality": _quality_strings(days, ev).get_column("quality"),
    }


def _heads(regs: pl.DataFrame) -> pl.DataFrame:
    """Per register row: the 200 record's fields as ``parse_nem12`` reads them back."""
    return regs.select(
        pl.col("identifier").str.strip_chars().alias("nmi"),
        pl.col("suffix").str.strip_chars(),
        pl.col("unit").replace_strict(UNIT, default="kWh").str.to_uppercase().alias("unit"),
        pl.col("serial_number").str.strip_chars().fill_null("").alias("serial"),
        pl.col("register_no").str.strip_chars().fill_null("").alias("register_id"),
    )


def _frame(
    heads: pl.DataFrame, rec: dict, take: np.ndarray, names: pl.Series, src: np.ndarray, k: int, cal: Calendar
) -> pl.DataFrame:
    """Register-day rows (``REGISTER_DAY_SCHEMA`` columns) of the records ``take`` (in that order);
    ``src``: each record's file (a row of ``names``)."""
    epoch = np.datetime64(cal.start, "D")
    r, upd, idx = rec["r"][take], rec["upd"][take], pl.Series(take, dtype=pl.UInt32)
    values = pl.Series("values", rec["milli"][take].reshape(-1) / 1000.0).reshape((take.size, k))
    return heads[r].with_columns(
        pl.Series("read_date", epoch + rec["d"][take].astype("timedelta64[D]")),
        pl.lit(1440 // k, pl.Int16).alias("interval_minutes"),
        values.cast(pl.List(pl.Float64)),
        rec["quality"].gather(idx),
        rec["quality_method"].gather(idx),
        pl.lit("", pl.String).alias("reason_code"),  # the 300 record's ReasonCode field is empty
        pl.Series("update_datetime", upd),
        pl.Series("msats_load_datetime", upd + np.timedelta64(60, "m")),
        names.gather(pl.Series(src[take], dtype=pl.UInt32)).alias("source_file"),
        pl.Series("source_line", rec["line"][take]),
    )


def delivery_frame(
    regs: pl.DataFrame, q: np.ndarray, plan: dict[str, np.ndarray], which: str, cal: Calendar, name: str
) -> pl.DataFrame:
    """Register-day rows (``REGISTER_DAY_SCHEMA`` columns, line order) of one delivery file."""
    rec = _records(regs, q, plan, which, cal)
    n = rec["r"].size
    return _frame(_heads(regs), rec, np.arange(n), pl.Series([name]), np.zeros(n, np.int64), q.shape[2], cal)


def _key_ranks(heads: pl.DataFrame) -> np.ndarray | None:
    """Per register row, the dense rank of its (nmi, suffix) in the store's sort order (None when
    a key is null: then the ingest's own dedupe decides)."""
    if heads["nmi"].null_count() or heads["suffix"].null_count():
        return None
    s = heads.select("nmi", "suffix").with_row_index("i").sort("nmi", "suffix")
    new = ((s["nmi"] != s["nmi"].shift(1)) | (s["suffix"] != s["suffix"].shift(1))).fill_null(True)
    rank = np.empty(heads.height, np.int64)
    rank[s["i"].to_numpy()] = np.cumsum(new.to_numpy())
    return rank


def batch_register_days(
    regs: pl.DataFrame, q: np.ndarray, plan: dict[str, np.ndarray], cal: Calendar, batch: int
) -> tuple[pl.DataFrame, int]:
    """The register-days the ingest of both deliveries would store, sorted by (nmi, suffix,
    read_date): of each key the row ``tasks.adapters.nem12.dedupe_register_days`` keeps from the
    rows in file order then line order (the latest UpdateDateTime, then the later row). Chosen on
    integer keys (the dense rank of (nmi, suffix), day, UpdateDateTime, file position) before any
    row is built, so the store writer's dedupe of the batch is a no-op check, not a sort; the rows
    are what that dedupe would return. Also: how many of the files' register-days lost (superseded)."""
    k = q.shape[2]
    recs = [_records(regs, q, plan, which, cal) for which in ("first", "second")]
    names = pl.Series([file_name(batch, delivery) for delivery in (1, 2)])
    rec: dict = {
        c: pl.concat([x[c] for x in recs])
        if isinstance(recs[0][c], pl.Series)
        else np.concatenate([x[c] for x in recs])
        for c in recs[0]
    }
    src = np.repeat(np.arange(2), [x["r"].size for x in recs])
    heads, n = _heads(regs), rec["r"].size
    rank = _key_ranks(heads)
    if rank is None or n == 0:  # rows in file order, as the files' ingest meets them
        return _frame(heads, rec, np.arange(n), names, src, k, cal), 0
    key_r, key_d = rank[rec["r"]], rec["d"]
    order = np.lexsort((np.arange(n), rec["upd"].astype(np.int64), key_d, key_r))
    kr, kd = key_r[order], key_d[order]
    last = np.r_[(kr[1:] != kr[:-1]) | (kd[1:] != kd[:-1]), True]
    return _frame(heads, rec, order[last], names, src, k, cal), int(n - last.sum())
