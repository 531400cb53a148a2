"""Vectorised NEM12 reader: one file's text to register-day rows, or a rejection naming the line.

Method: the whole file is one polars column of lines. The record indicator is the first field;
every line learns its 200 record (NMI data details) and its 300 record (interval data) by
forward-filling the line number of the last 200/300 seen. 300 records are split into fields once;
``values`` is the slice of ``1440 / IntervalLength`` fields after the date, cast to f64 as a list.
400 records become runs of per-interval quality flags on their own 300 record's day (the
forward-filled 300 line, never "the last day of that channel"), and must tile the day exactly
from interval 1 to the last. 500 records (B2B details) carrying an IndexRead are kept on the
register-day they follow. Nothing is looped over in Python except the (few) error messages.

The file is checked as a whole and rejected on the first problems found — with ``file:line:
reason`` — rather than partly read: a 100 record first (version NEM12), a 900 record last,
known record types only, a 200 record before any 300, a 300 record before any 400/500, interval
lengths dividing the day (5, 10, 15, 30), exactly the right number of non-negative numeric
values, valid dates and date-times, QualityMethod V exactly when 400 records follow. A value
that is not a finite number (``nan``, ``inf``, ``1e400`` — beyond f64, read as infinity) rejects
the file like any other malformed value, naming the interval and the text; so does a line longer
than ``max_line_bytes`` (``BUA_INGEST_MAX_LINE_BYTES``), checked before any line is split.
Quoted fields in messages are cut to ``CUT`` characters + "…" (a 20 MB field is not echoed).

Duplicates inside one file (the same NMI, suffix and day twice) are resolved like duplicates
across files: latest UpdateDateTime, then the later line, wins (``dedupe_register_days``).

Here: the file's structure, the assembly of the register-day frame and the dedupe; the 200 to 500
record readers are in ``nem12_records``, the line reading and checks shared with NEM13 in ``mdff``
(re-exported from here).
"""

from __future__ import annotations

import polars as pl

from tasks.adapters.mdff import (
    CUT,
    MAX_ERRORS,
    MAX_LINE_BYTES,
    MdffError,
    bad_datetime,
    cut_text,
    decode,
    envelope_problems,
    fields_of,
    long_lines,
    mdff_datetime,
    mdff_lines,
    problems_all,
    problems_where,
)
from tasks.adapters.nem12_records import (
    INTERVAL_LENGTHS,
    QUALITY_300,
    QUALITY_400,
    _b2b,
    _events,
    _hstack_left,
    _interval_days,
    _nmi_details,
    _quality_strings,
)

__all__ = [  # the MDFF helpers are re-exported: callers import them from here
    "CUT",
    "INTERVAL_LENGTHS",
    "MAX_ERRORS",
    "MAX_LINE_BYTES",
    "QUALITY_300",
    "QUALITY_400",
    "RECORD_TYPES",
    "REGISTER_DAY_SCHEMA",
    "MdffError",
    "bad_datetime",
    "cut_text",
    "decode",
    "dedupe_register_days",
    "envelope_problems",
    "fields_of",
    "long_lines",
    "mdff_datetime",
    "mdff_lines",
    "parse_nem12",
    "problems_all",
    "problems_where",
]

RECORD_TYPES = ("100", "200", "300", "400", "500", "900")

REGISTER_DAY_SCHEMA: dict[str, pl.DataType] = {
    "nmi": pl.String(),
    "suffix": pl.String(),
    "read_date": pl.Date(),
    "interval_minutes": pl.Int16(),
    "unit": pl.String(),
    "values": pl.List(pl.Float64()),
    "quality": pl.String(),
    "quality_method": pl.String(),
    "reason_code": pl.String(),
    "update_datetime": pl.Datetime("us"),
    "msats_load_datetime": pl.Datetime("us"),
    "serial": pl.String(),
    "register_id": pl.String(),
    "b2b_trans_code": pl.String(),
    "b2b_read_datetime": pl.Datetime("us"),
    "b2b_index_read": pl.Float64(),
    "source_file": pl.String(),
    "source_line": pl.Int32(),
}


def _structure_problems(lines: pl.DataFrame) -> list[pl.DataFrame]:
    found: list[pl.DataFrame] = []
    if lines.height == 0:
        return [
            pl.DataFrame(
                {"line": [1], "reason": ["empty file: no 100 header record"]},
                schema={"line": pl.Int32, "reason": pl.String},
            )
        ]
    first = lines.row(0, named=True)
    if first["rec"] != "100":
        found.append(
            pl.DataFrame(
                {
                    "line": [first["line"]],
                    "reason": [f"missing 100 header record (first record is {first['rec'][:12]!r})"],
                }
            )
        )
    elif (first["raw"].split(",")[1:2] or [""])[0].strip().upper() != "NEM12":
        found.append(
            pl.DataFrame(
                {
                    "line": [first["line"]],
                    "reason": [
                        f"100 record version is {(first['raw'].split(',')[1:2] or [''])[0]!r}, not NEM12"
                    ],
                }
            )
        )
    found += envelope_problems(lines, RECORD_TYPES, "NEM12")
    prev = pl.col("rec").shift(1)
    found += problems_all(
        lines,
        [
            ((pl.col("rec") == "300") & pl.col("ctx200").is_null(), "300 record before any 200 record"),
            (
                (pl.col("rec") == "400") & ~prev.is_in(["300", "400"]),
                "400 record not directly after a 300 or 400 record",
            ),
            (
                (pl.col("rec") == "500") & ~prev.is_in(["300", "400", "500"]),
                "500 record not after a 300/400 record",
            ),
        ],
    )
    return found


def parse_nem12(text: str | bytes, name: str, max_line_bytes: int = MAX_LINE_BYTES) -> pl.DataFrame:
    """Register-day rows (``REGISTER_DAY_SCHEMA``) of one NEM12 file (its text, or its bytes as
    read: see ``mdff_lines``), or :class:`MdffError`."""
    lines = mdff_lines(text, fields=False)
    if too_long := long_lines(lines, max_line_bytes):
        raise MdffError(name, too_long)
    rec = pl.col("rec")
    lines = lines.with_columns(
        pl.when(rec == "200").then(pl.col("line")).forward_fill().alias("ctx200"),
        # a 200 record ends the previous 300's scope, so 300 context resets to null there
        pl.when(rec == "300")
        .then(pl.col("line"))
        .when(rec == "200")
        .then(pl.lit(-1))
        .forward_fill()
        .alias("ctx300"),
    ).with_columns(pl.when(pl.col("ctx300") > 0).then(pl.col("ctx300")).alias("ctx300"))
    found = _structure_problems(lines)
    d200, more = _nmi_details(lines)
    found += more
    days, more = _interval_days(lines, d200)
    found += more
    ev, more = _events(lines, days)
    found += more
    b2b, more = _b2b(lines)
    found += more
    problems = (
        pl.concat([f.cast({"line": pl.Int32}) for f in found if f.height], how="vertical_relaxed")
        if any(f.height for f in found)
        else None
    )
    if problems is not None:
        rows = problems.unique().sort("line", "reason").head(MAX_ERRORS).rows()
        raise MdffError(name, [(int(line), str(reason)) for line, reason in rows])
    # quality is one row per day in the days' order; b2b joins on the line column alone
    out = days.hstack([_quality_strings(days, ev).get_column("quality")])
    out = _hstack_left(out, b2b, "line", "ctx300")
    return out.select(
        [
            pl.col(c).cast(t)
            if c not in ("source_file", "source_line")
            else (pl.lit(name) if c == "source_file" else pl.col("line")).cast(t).alias(c)
            for c, t in REGISTER_DAY_SCHEMA.items()
        ]
    )


def dedupe_register_days(frame: pl.DataFrame) -> pl.DataFrame:
    """Keep one row per (nmi, suffix, read_date): latest update_datetime, then the later row.

    "Later row" is the frame's own order, which callers make file order then line order (and
    the store's existing rows before newly ingested ones). A missing UpdateDateTime loses to any
    present one. The result is sorted by (nmi, suffix, read_date). Only the key columns are
    sorted; the rows (with their value lists) are gathered once, or not at all when the frame
    is already sorted and free of duplicates (the usual case: MDP files come sorted by NMI).
    """
    key = ["nmi", "suffix", "read_date"]
    if _strictly_ascending(frame, key):
        return frame
    # after the sort the winner is the last row of its key: keep rows whose successor differs
    last_of_key = pl.any_horizontal([pl.col(k) != pl.col(k).shift(-1) for k in key]).fill_null(True)
    keep = (
        frame.select(*key, "update_datetime")
        .with_row_index("_order")
        .sort(*key, "update_datetime", "_order", nulls_last=False)
        .filter(last_of_key)
        .get_column("_order")
    )
    if keep.len() == frame.height and keep.is_sorted():
        return frame
    return frame[keep]


def _strictly_ascending(frame: pl.DataFrame, key: list[str]) -> bool:
    """True when every row's key is greater than the previous row's (sorted, no duplicates, no
    nulls): one comparison per row instead of a sort."""
    if any(frame.get_column(k).null_count() for k in key):
        return False
    if frame.height < 2:
        return True
    later, earlier = frame.select(key).slice(1), frame.select(key).slice(0, frame.height - 1)
    greater: pl.Series | None = None
    for k in reversed(key):  # (a, b, c) > (a', b', c') built from the last column outwards
        c, p = later.get_column(k), earlier.get_column(k)
        greater = (c > p) if greater is None else (c > p) | ((c == p) & greater)
    return bool(greater is not None and greater.all())
