"""NEM12 data records read as frames: 200 (NMI data details), 300 (interval data, one row per
register-day), 400 (interval events: per-interval quality runs) and 500 (B2B details), each with
the ``(line, reason)`` problems found in it (see ``tasks.adapters.nem12`` for the method).
"""

from __future__ import annotations

import polars as pl

from tasks.adapters.mdff import (
    CUT,
    MAX_ERRORS,
    _field,
    _unparsed,
    bad_datetime,
    fields_of,
    mdff_datetime,
    problems_all,
    problems_where,
)

INTERVAL_LENGTHS = (5, 10, 15, 30)
QUALITY_300 = r"^(?:[AEFNS][0-9]{0,2}|V)$"
QUALITY_400 = r"^[AEFNS][0-9]{0,2}$"
# the quality string of a day whose intervals all carry the 300 record's flag, by flag + count
_UNIFORM_QUALITY = {f"{flag}{1440 // il}": flag * (1440 // il) for flag in "AEFNSV" for il in (5, 10, 15, 30)}


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


def _day_fields(lines: pl.DataFrame, d200: pl.DataFrame) -> pl.DataFrame:
    """300 records of a known interval length with their 200 record's details, their fields, the
    expected count of values ``n`` and the texts after the values."""
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
    return days


def _with_value_counts(days: pl.DataFrame) -> pl.DataFrame:
    """``days`` with ``n_values``, the count of numeric values of each 300 record."""
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
    return days


def _interval_days(lines: pl.DataFrame, d200: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """300 records as register-day rows with their values, dates and quality method, and the
    problems found in them."""
    days = _with_value_counts(_day_fields(lines, d200))
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
    found += _value_problems(days)
    days = days.drop("fields")
    found += _day_problems(days)
    return days.drop("last_value", "date_text", "update_text", "msats_text", "n_fields", "n_values"), found


def _value_problems(days: pl.DataFrame) -> list[pl.DataFrame]:
    """Interval values that are not finite numbers, or negative (``days`` still has its ``fields``)."""
    found: list[pl.DataFrame] = []
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
    return found


def _day_problems(days: pl.DataFrame) -> list[pl.DataFrame]:
    """IntervalDate, QualityMethod, UpdateDateTime and MSATSLoadDateTime that do not read."""
    return problems_all(
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
