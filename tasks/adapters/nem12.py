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
"""

from __future__ import annotations

import re

import polars as pl

RECORD_TYPES = ("100", "200", "300", "400", "500", "900")
INTERVAL_LENGTHS = (5, 10, 15, 30)
QUALITY_300 = r"^(?:[AEFNS][0-9]{0,2}|V)$"
QUALITY_400 = r"^[AEFNS][0-9]{0,2}$"
MAX_ERRORS = 20
MAX_LINE_BYTES = 1 << 20  # default line cap (Settings.ingest_max_line_bytes)
CUT = 80  # characters of a quoted field kept in a message
_QUOTED = re.compile(r"'([^'\n]{" + str(CUT + 1) + ",})'")
# the quality string of a day whose intervals all carry the 300 record's flag, by flag + count
_UNIFORM_QUALITY = {f"{flag}{1440 // il}": flag * (1440 // il) for flag in "AEFNSV" for il in (5, 10, 15, 30)}

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


def cut_text(text: str, n: int = CUT) -> str:
    """``text`` cut to ``n`` characters + "…" when longer."""
    return text if len(text) <= n else text[:n] + "…"


def _cut_reason(reason: str) -> str:
    """A reason with each quoted field cut to ``CUT`` characters, and at most ``4 * CUT`` in all."""
    return cut_text(_QUOTED.sub(lambda m: "'" + cut_text(m[1]) + "'", reason), 4 * CUT)


class MdffError(ValueError):
    """A file that cannot be read as a whole; ``problems`` are ``(line, reason)`` pairs (long quoted
    fields cut: ``_cut_reason``)."""

    def __init__(self, name: str, problems: list[tuple[int, str]]) -> None:
        self.name = cut_text(name, 2 * CUT)
        self.problems = [(line, _cut_reason(reason)) for line, reason in problems]
        problems = self.problems
        first_line, first_reason = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{name}:{first_line}: {first_reason}{more}")

    def report(self) -> str:
        """Every problem on its own line, ``file:line: reason``."""
        return "\n".join(f"{self.name}:{line}: {reason}" for line, reason in self.problems) + "\n"


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM); bytes that are not UTF-8 are read as Latin-1."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _field(i: int) -> pl.Expr:
    return pl.col("fields").list.get(i, null_on_oob=True)


def mdff_datetime(expr: pl.Expr) -> pl.Expr:
    """MDFF DateTime14 (or DateTime12) text to a datetime; empty → null, invalid → null."""
    s = expr.str.strip_chars()
    return (
        pl.when(s.str.len_chars() == 14)
        .then(s.str.to_datetime("%Y%m%d%H%M%S", strict=False, time_unit="us"))
        .when(s.str.len_chars() == 12)
        .then(s.str.to_datetime("%Y%m%d%H%M", strict=False, time_unit="us"))
        .otherwise(None)
    )


def bad_datetime(expr: pl.Expr) -> pl.Expr:
    s = expr.str.strip_chars().fill_null("")
    return (s != "") & mdff_datetime(expr).is_null()


def _read_lines(data: bytes) -> pl.DataFrame | None:
    """Every line of UTF-8 ``data`` as one string column, read by polars' CSV reader (one column,
    no quoting: a line is kept as it is, a blank line is null, the CR of CR LF is dropped, a BOM
    is skipped): several times faster than splitting a Python string. None when the bytes are not
    UTF-8 or otherwise not read that way (the caller decodes and splits them instead)."""
    try:
        return pl.read_csv(
            data,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            new_columns=["raw"],
            schema_overrides={"column_1": pl.String},
            infer_schema=False,
        )
    except (pl.exceptions.PolarsError, ValueError):
        return None


def _unparsed(text: pl.Expr, parsed: pl.Expr) -> pl.Expr:
    """``bad_datetime`` of a text already parsed by ``mdff_datetime``: not blank, yet null."""
    return (text.str.strip_chars().fill_null("") != "") & parsed.is_null()


def mdff_lines(text: str | bytes, fields: bool = True) -> pl.DataFrame:
    """Non-blank lines with their 1-based line number, record type and (``fields=True``) fields.

    ``text`` is the file's text, or its bytes (UTF-8 with or without BOM, else Latin-1: ``decode``).
    Without fields, callers split only the lines they read (``fields_of``): splitting every line
    and then filtering the lists costs more than splitting each record type's lines once."""
    lines = _read_lines(text) if isinstance(text, bytes) else None
    if lines is None:
        text = decode(text) if isinstance(text, bytes) else text
        # blank lines at the end need no line number: dropping them first usually leaves none
        lines = pl.DataFrame({"raw": pl.Series([text.rstrip()]).str.split("\n")}).explode("raw")
    lines = lines.with_row_index("line", offset=1).with_columns(pl.col("line").cast(pl.Int32))
    # a CR of CR LF may stay on the last field, which every reader of a last field strips
    blank = lines.get_column("raw").str.contains(r"\S").fill_null(False).not_()
    if blank.any():
        lines = lines.filter(blank.not_())
    if not fields:
        return lines.with_columns(pl.col("raw").str.extract(r"^([^,]*)").str.strip_chars().alias("rec"))
    return lines.with_columns(pl.col("raw").str.split(",").alias("fields")).with_columns(
        pl.col("fields").list.first().str.strip_chars().alias("rec")
    )


def long_lines(lines: pl.DataFrame, max_line_bytes: int) -> list[tuple[int, str]]:
    """``(line, reason)`` of the lines (``mdff_lines``) longer than ``max_line_bytes`` bytes."""
    size = pl.col("raw").str.len_bytes() - pl.col("raw").str.ends_with("\r").cast(pl.UInt32)  # CR of CR LF
    if lines.height == 0 or (lines.select(size.max()).item() or 0) <= max_line_bytes:
        return []
    rows = lines.filter(size > max_line_bytes).select("line", size.alias("n")).head(MAX_ERRORS).rows()
    return [
        (int(line), f"line is {n} bytes long, over the cap of {max_line_bytes} (BUA_INGEST_MAX_LINE_BYTES)")
        for line, n in rows
    ]


def fields_of(lines: pl.DataFrame, rec: str) -> pl.DataFrame:
    """The lines of one record type (``mdff_lines(..., fields=False)``) with their fields."""
    return lines.filter(pl.col("rec") == rec).with_columns(pl.col("raw").str.split(",").alias("fields"))


def problems_where(frame: pl.DataFrame, condition: pl.Expr, reason: pl.Expr | str) -> pl.DataFrame:
    msg = pl.lit(reason) if isinstance(reason, str) else reason
    return frame.filter(condition).select("line", msg.alias("reason")).head(MAX_ERRORS)


def problems_all(frame: pl.DataFrame, checks: list[tuple[pl.Expr, pl.Expr | str]]) -> list[pl.DataFrame]:
    """``problems_where`` of each ``(condition, reason)``, after one pass over ``frame`` that finds
    which conditions hold anywhere: a valid file costs one query per frame, not one per check."""
    if frame.height == 0 or not checks:
        return []
    hits = frame.select(
        [cond.fill_null(False).any().alias(f"c{i}") for i, (cond, _) in enumerate(checks)]
    ).row(0)
    return [
        problems_where(frame, cond, reason) for (cond, reason), hit in zip(checks, hits, strict=True) if hit
    ]


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


def envelope_problems(
    lines: pl.DataFrame, record_types: list[str] | tuple[str, ...], version: str
) -> list[pl.DataFrame]:
    """Problems of an MDFF file's envelope shared by NEM12 and NEM13: a 900 record closing the file,
    only known record types, one 100 header first and one 900 last (``lines`` is non-empty)."""
    first, last = lines.row(0, named=True), lines.row(lines.height - 1, named=True)
    found: list[pl.DataFrame] = []
    if last["rec"] != "900":
        found.append(
            pl.DataFrame(
                {"line": [last["line"]], "reason": ["missing 900 end-of-data record at the end of the file"]}
            )
        )
    found += problems_all(
        lines,
        [
            (
                ~pl.col("rec").is_in(list(record_types)),
                pl.format(f"unknown record type '{{}}' in a {version} file", pl.col("rec").str.slice(0, 12)),
            ),
            ((pl.col("rec") == "100") & (pl.col("line") != first["line"]), "100 header record repeated"),
            (
                (pl.col("rec") == "900") & (pl.col("line") != last["line"]),
                "900 end-of-data record before the end of the file",
            ),
        ],
    )
    return found


def _nmi_details(lines: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    d200 = fields_of(lines, "200").select(
        "line",
        _field(1).str.strip_chars().alias("nmi"),
        _field(3).str.strip_chars().fill_null("").alias("register_id"),
        _field(4).str.strip_chars().alias("suffix"),
        _field(6).str.strip_chars().fill_null("").alias("serial"),
        _field(7).str.strip_chars().str.to_uppercase().alias("unit"),
        _field(8).str.strip_chars().cast(pl.Int16, strict=False).alias("interval_minutes"),
        _field(8).alias("il_text"),
        pl.col("fields").list.len().alias("n_fields"),
    )
    found = problems_all(
        d200,
        [
            (
                pl.col("n_fields") < 9,
                pl.format("200 record has {} fields, needs at least 9", pl.col("n_fields")),
            ),
            (
                (pl.col("nmi").fill_null("") == "") | (pl.col("suffix").fill_null("") == ""),
                "200 record without NMI or NMISuffix",
            ),
            (
                ~pl.col("interval_minutes").is_in(INTERVAL_LENGTHS).fill_null(False)
                & (pl.col("n_fields") >= 9),
                pl.format("200 record IntervalLength '{}' is not one of 5, 10, 15, 30", pl.col("il_text")),
            ),
        ],
    )
    return d200.drop("il_text", "n_fields").rename({"line": "line200"}), found


def _hstack_left(frame: pl.DataFrame, other: pl.DataFrame, on: str, other_on: str) -> pl.DataFrame:
    """``frame`` with ``other``'s columns (at most one row per key) beside its rows, in its order:
    the join runs on the key column only, so ``frame``'s wide columns are never gathered."""
    joined = frame.select(on).join(
        other, left_on=on, right_on=other_on, how="left", maintain_order="left", validate="m:1"
    )
    return frame.hstack(joined.drop(on).get_columns())


def _interval_days(lines: pl.DataFrame, d200: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    # only the 300 records are split into fields; the 200 record details join on the key
    # column alone, and the (wide) fields are filtered only when some row must go
    l300 = fields_of(lines, "300")
    days = _hstack_left(l300.select("line", "ctx200"), d200, "ctx200", "line200").hstack(
        [l300.get_column("fields")]
    )
    known_length = days.get_column("interval_minutes").is_in(INTERVAL_LENGTHS).fill_null(False)
    if not known_length.all():
        days = days.filter(known_length)
    days = days.with_columns(
        (1440 // pl.col("interval_minutes").cast(pl.Int32)).alias("n"),
        pl.col("fields").list.len().alias("n_fields"),
    )
    qpos = pl.col("n") + 2
    days = days.with_columns(
        pl.col("fields").list.get(qpos, null_on_oob=True).str.strip_chars().alias("quality_method"),
        _field(1).str.strip_chars().alias("date_text"),
        pl.col("fields").list.get(qpos + 1, null_on_oob=True).str.strip_chars().alias("reason_code"),
        pl.col("fields").list.get(qpos + 3, null_on_oob=True).alias("update_text"),
        pl.col("fields").list.get(qpos + 4, null_on_oob=True).alias("msats_text"),
        pl.col("fields").list.get(qpos - 1, null_on_oob=True).alias("last_value"),
    )
    # fast check: the QualityMethod sits right after the n-th value; only rows failing it get
    # the (slower) count of their values for the error message
    looks_right = pl.col("quality_method").str.contains(r"^[A-Za-z]") & ~pl.col("last_value").str.contains(
        r"^\s*[A-Za-z]"
    )
    suspect = days.filter(~looks_right.fill_null(False))
    if suspect.height:
        suspect = suspect.with_columns(
            pl.col("fields")
            .list.slice(2)
            .list.eval(pl.element().str.contains(r"^\s*[A-Za-z]"))
            .alias("is_alpha")
        ).with_columns(
            pl.when(pl.col("is_alpha").list.any())
            .then(pl.col("is_alpha").list.arg_max())
            .otherwise(pl.col("n_fields") - 2)
            .cast(pl.Int64)
            .alias("n_values")
        )
        days = _hstack_left(days, suspect.select("line", "n_values"), "line", "line").with_columns(
            pl.col("n_values").fill_null(pl.col("n").cast(pl.Int64))
        )
    else:
        days = days.with_columns(pl.col("n").cast(pl.Int64).alias("n_values"))
    wrong_count = pl.col("n_values") != pl.col("n")
    found = problems_all(
        days,
        [
            (
                wrong_count,
                pl.format(
                    "300 record has {} interval values; IntervalLength {} of its 200 record (line {}) needs {}",
                    pl.col("n_values"),
                    pl.col("interval_minutes"),
                    pl.col("ctx200"),
                    pl.col("n"),
                ),
            )
        ],
    )
    if found:  # only rows with the right count of values are read further
        days = days.filter(~wrong_count)
    days = days.with_columns(
        pl.col("fields").list.slice(2, pl.col("n")).cast(pl.List(pl.Float64), strict=False).alias("values"),
        pl.col("date_text").str.to_date("%Y%m%d", strict=False).alias("read_date"),
        mdff_datetime(pl.col("update_text")).alias("update_datetime"),
        mdff_datetime(pl.col("msats_text")).alias("msats_load_datetime"),
    )
    # whole-column checks first (a non-numeric value casts to null; "nan" to NaN; "inf" and
    # "1e400" to infinity); the per-row lists are searched only in a file that has such a value
    flat = days.get_column("values").explode()
    if flat.is_null().any() or not flat.is_finite().all():
        found.append(_unreadable_values(days))
    if flat.len() and (flat.min() or 0) < 0:
        low = pl.col("values").list.eval(pl.element().filter(pl.element().is_finite())).list.min()
        found.append(
            problems_where(days, low < 0, pl.format("300 record has a negative interval value ({})", low))
        )
    days = days.drop("fields")
    found += problems_all(
        days,
        [
            (
                (pl.col("date_text").str.len_chars() != 8) | pl.col("read_date").is_null(),
                pl.format("300 record IntervalDate '{}' is not a valid YYYYMMDD date", pl.col("date_text")),
            ),
            (
                ~pl.col("quality_method").fill_null("").str.contains(QUALITY_300),
                pl.format(
                    "300 record QualityMethod '{}' is not valid", pl.col("quality_method").fill_null("")
                ),
            ),
            (
                _unparsed(pl.col("update_text"), pl.col("update_datetime")),
                pl.format("300 record UpdateDateTime '{}' is not a valid date-time", pl.col("update_text")),
            ),
            (
                _unparsed(pl.col("msats_text"), pl.col("msats_load_datetime")),
                pl.format("300 record MSATSLoadDateTime '{}' is not a valid date-time", pl.col("msats_text")),
            ),
        ],
    )
    return days.drop("last_value", "date_text", "update_text", "msats_text", "n_fields", "n_values"), found


def _unreadable_values(days: pl.DataFrame) -> pl.DataFrame:
    """The first value of each 300 record that is not a number, or not a finite one, with its
    interval number and text (``days`` still has its ``fields``)."""
    bad = pl.element().is_null() | ~pl.element().is_finite()
    rows = days.filter(pl.col("values").list.eval(bad).list.any()).head(MAX_ERRORS)
    rows = rows.with_columns(pl.col("values").list.eval(bad).list.arg_max().alias("_i"))
    text = pl.col("fields").list.get(pl.col("_i") + 2).str.strip_chars().str.slice(0, CUT + 1)
    what = pl.when(pl.col("values").list.get(pl.col("_i")).is_null()).then(pl.lit("a number"))
    what = what.otherwise(pl.lit("a finite number"))
    reason = pl.format("300 record interval {} value '{}' is not {}", pl.col("_i") + 1, text, what)
    return rows.select("line", reason.alias("reason"))


def _events(lines: pl.DataFrame, days: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """400 records as validated runs: line300, lo, hi (1-based inclusive), flag."""
    ev = (
        fields_of(lines, "400")
        .select(
            "line",
            "ctx300",
            _field(1).str.strip_chars().cast(pl.Int32, strict=False).alias("lo"),
            _field(2).str.strip_chars().cast(pl.Int32, strict=False).alias("hi"),
            _field(3).str.strip_chars().fill_null("").alias("qm"),
        )
        .join(
            days.select(pl.col("line").alias("ctx300"), "n", "quality_method"),
            on="ctx300",
            how="inner",
            maintain_order="left",
        )
    )
    found = problems_all(
        ev,
        [
            (
                pl.col("lo").is_null() | pl.col("hi").is_null(),
                "400 record StartInterval/EndInterval is not a whole number",
            ),
            (
                ~pl.col("qm").str.contains(QUALITY_400),
                pl.format("400 record QualityMethod '{}' is not valid", pl.col("qm")),
            ),
            (
                pl.col("quality_method") != "V",
                pl.format(
                    "400 record after a 300 record of QualityMethod '{}' (400 records belong to V days)",
                    pl.col("quality_method"),
                ),
            ),
        ],
    )
    ev = ev.with_columns((pl.col("hi").shift(1).over("ctx300") + 1).fill_null(1).alias("expected_lo"))
    expected_lo = pl.col("expected_lo")
    gap = (pl.col("lo") != expected_lo) | (pl.col("hi") < pl.col("lo")) | (pl.col("hi") > pl.col("n"))
    found.append(
        problems_where(
            ev,
            gap,
            pl.format(
                "400 record covers intervals {}-{}; expected to start at {} and end at most at {} (the day's 400 records must cover 1-{} exactly)",
                "lo",
                "hi",
                expected_lo,
                "n",
                "n",
            ),
        )
    )
    last = ev.group_by("ctx300").agg(pl.col("hi").last(), pl.col("line").last(), pl.col("n").first())
    found.append(
        problems_where(
            last,
            pl.col("hi") != pl.col("n"),
            pl.format("400 records of this day end at interval {}; they must cover 1-{} exactly", "hi", "n"),
        )
    )
    v_days = days.filter(pl.col("quality_method") == "V").join(
        ev.select("ctx300").unique(), left_on="line", right_on="ctx300", how="anti"
    )
    found.append(problems_where(v_days, pl.lit(True), "300 record of QualityMethod V without 400 records"))
    return ev.select("ctx300", "lo", "hi", pl.col("qm").str.slice(0, 1).alias("flag")), found


def _quality_strings(days: pl.DataFrame, ev: pl.DataFrame) -> pl.DataFrame:
    """One character per interval: the 300 record's flag, or the 400 runs of a V day."""
    key = pl.col("quality_method").str.slice(0, 1) + pl.col("n").cast(pl.String)
    uniform = days.select(
        "line", key.replace_strict(_UNIFORM_QUALITY, default=None, return_dtype=pl.String).alias("quality")
    )
    if ev.height == 0:
        return uniform
    runs = (
        ev.sort("ctx300", "lo")
        .with_columns(pl.col("flag").repeat_by(pl.col("hi") - pl.col("lo") + 1).list.join("").alias("run"))
        .group_by("ctx300", maintain_order=True)
        .agg(pl.col("run").str.join("").alias("quality"))
        .rename({"ctx300": "line"})
    )
    return uniform.join(runs, on="line", how="left", suffix="_400", maintain_order="left").select(
        "line", pl.coalesce("quality_400", "quality").alias("quality")
    )


def _b2b(lines: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """500 records with an IndexRead, keyed by their 300 record (last one wins)."""
    b = fields_of(lines, "500").select(
        "line",
        "ctx300",
        _field(1).str.strip_chars().alias("b2b_trans_code"),
        _field(3).alias("read_text"),
        _field(4).str.strip_chars().fill_null("").alias("index_text"),
    )
    b = b.with_columns(
        mdff_datetime(pl.col("read_text")).alias("b2b_read_datetime"),
        pl.col("index_text").cast(pl.Float64, strict=False).alias("b2b_index_read"),
    )
    found = problems_all(
        b,
        [
            (
                (pl.col("index_text") != "") & pl.col("b2b_index_read").is_null(),
                pl.format("500 record IndexRead '{}' is not a number", "index_text"),
            ),
            (
                ~pl.col("b2b_index_read").is_finite(),
                pl.format("500 record IndexRead '{}' is not a finite number", "index_text"),
            ),
            (
                bad_datetime(pl.col("read_text")),
                pl.format("500 record ReadDateTime '{}' is not a valid date-time", "read_text"),
            ),
        ],
    )
    kept = (
        b.filter(pl.col("b2b_index_read").is_not_null())
        .group_by("ctx300")
        .agg(pl.all().sort_by("line").last())
        .select("ctx300", "b2b_trans_code", "b2b_read_datetime", "b2b_index_read")
    )
    return kept, found


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
