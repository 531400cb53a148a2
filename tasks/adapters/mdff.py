"""MDFF (NEM12 and NEM13) file reading shared by both formats: the file's lines as a polars frame,
their fields, MDFF date-times, the envelope checks (100 first, 900 last, known record types) and
:class:`MdffError`, the rejection of a whole file naming each line and what is wrong with it.

Problems are frames of ``(line, reason)``, at most ``MAX_ERRORS`` per check; quoted fields in
messages are cut to ``CUT`` characters + "…" (a 20 MB field is not echoed).
"""

from __future__ import annotations

import re

import polars as pl

MAX_ERRORS = 20
MAX_LINE_BYTES = 1 << 20  # default line cap (Settings.ingest_max_line_bytes)
CUT = 80  # characters of a quoted field kept in a message
_QUOTED = re.compile(r"'([^'\n]{" + str(CUT + 1) + ",})'")


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
