"""Vectorised NEM12 writer: register-day frames (the meter store's shape) to MDFF NEM12 text.

Input is one row per register-day — ``nmi, suffix, read_date, interval_minutes, unit, values
(list[f64]), quality`` (one quality character per interval) and optionally ``update_datetime``,
``msats_load_datetime``, ``serial``, ``register_id``, ``method_flag`` (two digits appended to E, S
and F quality flags, e.g. ``52``). Every record is built with polars string expressions over the
whole frame: one 200 record per run of consecutive days of the same (NMI, suffix, interval
length, unit, serial, register), one 300 record per day, and for days whose intervals carry more
than one quality flag a 300 record with QualityMethod ``V`` followed by one 400 record per run of
equal quality (MDFF: the 400 records of a V day cover the day exactly). A day whose intervals all
carry the same flag gets that flag in the 300 record (``A`` actual, ``E`` all-estimated …) and no
400 records. Values are printed in their shortest exact decimal form, so a reader gets back the
very floats that were written. Lines end with CR LF as in the MDFF specification.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.adapters.storage import write_bytes_atomic
from tasks.settings import Settings

# MDFF spells units in mixed case; the meter store keeps them upper-cased.
UNIT_SPELLING = {
    "KWH": "kWh",
    "WH": "Wh",
    "MWH": "MWh",
    "KVARH": "kVArh",
    "KVAH": "kVAh",
    "KW": "kW",
    "KVA": "kVA",
    "KVAR": "kVAr",
    "MJ": "MJ",
}
_NEEDS_METHOD = ("E", "S", "F")
FLAGS = ("A", "E", "F", "N", "S", "V")
REQUIRED = ("nmi", "suffix", "read_date", "interval_minutes", "unit", "values", "quality")


def _opt(df: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    return pl.col(name) if name in df.columns else pl.lit(None, dtype=dtype).alias(name)


def _quality_method(flag: pl.Expr, method: pl.Expr) -> pl.Expr:
    """Quality flag plus method flag where MDFF requires one (E, S, F) and the caller gave one."""
    return pl.when(flag.is_in(_NEEDS_METHOD) & method.is_not_null()).then(flag + method).otherwise(flag)


def _prepare(df: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"NEM12 writer: input lacks column(s) {', '.join(missing)}")
    out = df.select(
        pl.col("nmi").cast(pl.String),
        pl.col("suffix").cast(pl.String),
        pl.col("read_date").cast(pl.Date),
        pl.col("interval_minutes").cast(pl.Int32),
        pl.col("unit").cast(pl.String),
        pl.col("values").cast(pl.List(pl.Float64)),
        pl.col("quality").cast(pl.String),
        _opt(df, "update_datetime", pl.Datetime("us")).cast(pl.Datetime("us")),
        _opt(df, "msats_load_datetime", pl.Datetime("us")).cast(pl.Datetime("us")),
        _opt(df, "serial", pl.String).cast(pl.String).fill_null(""),
        _opt(df, "register_id", pl.String).cast(pl.String).fill_null(""),
        _opt(df, "method_flag", pl.String).cast(pl.String),
    )
    n_expected = pl.lit(1440) // pl.col("interval_minutes")
    bad = out.filter(
        (pl.lit(1440) % pl.col("interval_minutes") != 0)
        | (pl.col("values").list.len() != n_expected)
        | (pl.col("quality").str.len_chars() != n_expected)
        | pl.col("values").list.eval(pl.element().is_null() | pl.element().is_nan()).list.any()
        | ~pl.col("quality").str.contains(f"^[{''.join(FLAGS)}]*$")
        | (pl.col("values").list.min() < 0)
    )
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(
            f"NEM12 writer: {bad.height} register-day(s) malformed, e.g. {row['nmi']} {row['suffix']} {row['read_date']}: "
            f"{len(row['values'])} values (none negative or missing) and {len(row['quality'])} quality flags "
            f"(of {''.join(FLAGS)}) for {row['interval_minutes']}-minute intervals"
        )
    dup = out.filter(pl.struct("nmi", "suffix", "read_date").is_duplicated())
    if dup.height:
        row = dup.row(0, named=True)
        raise ValueError(
            f"NEM12 writer: {row['nmi']} {row['suffix']} {row['read_date']} appears more than once"
        )
    return out.sort(
        "nmi", "suffix", "interval_minutes", "unit", "serial", "register_id", "read_date", maintain_order=True
    )


def _decimal_text(x: pl.Expr) -> pl.Expr:
    """Shortest exact decimal text of a float ("2" not "2.0"); MDFF has no exponents, so the rare
    value that would print as 1e-7 is written with 12 decimals instead."""
    text = x.cast(pl.String)
    plain = text.str.replace(r"\.0$", "")
    small = x.cast(pl.Decimal(38, 12)).cast(pl.String).str.replace(r"0+$", "").str.replace(r"\.$", "")
    large = x.cast(pl.Int64).cast(pl.String)  # floats this large are whole numbers
    fixed = pl.when(x.abs() >= 1e15).then(large).otherwise(small)
    return pl.when(text.str.contains("e", literal=True)).then(fixed).otherwise(plain)


def _stamp(col: str) -> pl.Expr:
    return pl.col(col).dt.strftime("%Y%m%d%H%M%S").fill_null("")


def _day_records(days: pl.DataFrame) -> pl.DataFrame:
    """The 300 record of every day (sort keys group, day, sub=0)."""
    first = pl.col("quality").str.slice(0, 1)
    uniform = (
        pl.sum_horizontal([pl.col("quality").str.contains(f, literal=True).cast(pl.Int8) for f in FLAGS]) == 1
    )
    flag = pl.when(uniform).then(first).otherwise(pl.lit("V"))
    values = pl.col("values").list.eval(_decimal_text(pl.element())).list.join(",")
    line = pl.concat_str(
        [
            pl.lit("300"),
            pl.col("read_date").dt.strftime("%Y%m%d"),
            values,
            _quality_method(flag, pl.col("method_flag")),
            pl.lit(""),
            pl.lit(""),
            _stamp("update_datetime"),
            _stamp("msats_load_datetime"),
        ],
        separator=",",
    )
    return days.select(
        "group", "day", pl.lit(0, pl.Int32).alias("sub"), line.alias("line"), uniform.alias("uniform")
    )


def _event_records(days: pl.DataFrame) -> pl.DataFrame:
    """400 records for the days with mixed quality: one per run of equal flags (1-based, inclusive)."""
    if days.height == 0:
        return pl.DataFrame(schema={"group": pl.Int64, "day": pl.Int64, "sub": pl.Int32, "line": pl.String})
    per_interval = (
        days.select("group", "day", "method_flag", pl.col("quality").str.split("").alias("flag"))
        .explode("flag")
        .with_columns(pl.int_range(pl.len()).over("day").cast(pl.Int32).alias("i"))
    )
    run_start = (pl.col("flag") != pl.col("flag").shift(1)) | (pl.col("day") != pl.col("day").shift(1))
    runs = (
        per_interval.with_columns(run_start.fill_null(True).cum_sum().alias("run"))
        .group_by("run", maintain_order=True)
        .agg(
            pl.first("group"),
            pl.first("day"),
            pl.first("flag"),
            pl.first("method_flag"),
            pl.min("i").alias("lo"),
            pl.max("i").alias("hi"),
        )
    )
    line = pl.concat_str(
        [
            pl.lit("400"),
            (pl.col("lo") + 1).cast(pl.String),
            (pl.col("hi") + 1).cast(pl.String),
            _quality_method(pl.col("flag"), pl.col("method_flag")),
            pl.lit(""),
            pl.lit(""),
        ],
        separator=",",
    )
    return runs.select("group", "day", (pl.col("lo") + 1).alias("sub"), line.alias("line"))


def nem12_text(
    df: pl.DataFrame,
    *,
    created: dt.datetime,
    from_participant: str = "BUA",
    to_participant: str = "BUA",
    line_end: str = "\r\n",
) -> str:
    """NEM12 file text for the register-days in ``df`` (see the module docstring for the shape).

    ``created`` is the 100 record's DateTime: pass it explicitly so that the same input always
    gives the same bytes.
    """
    days = _prepare(df)
    group_keys = ["nmi", "suffix", "interval_minutes", "unit", "serial", "register_id"]
    consecutive = (pl.col("read_date") - pl.col("read_date").shift(1)).dt.total_days() == 1
    same_group = pl.all_horizontal([pl.col(k) == pl.col(k).shift(1) for k in group_keys]) & consecutive
    days = days.with_columns(
        (~same_group.fill_null(False)).cum_sum().cast(pl.Int64).alias("group"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("day"),
    )
    config = days.group_by("nmi").agg(pl.col("suffix").unique().sort().str.join("").alias("config"))
    unit = pl.col("unit").replace(UNIT_SPELLING)
    headers = (
        days.group_by("group", maintain_order=True)
        .agg(pl.first(*group_keys), pl.min("day"))
        .join(config, on="nmi", how="left")
        .select(
            "group",
            (pl.col("day") - 1).alias("day"),
            pl.lit(0, pl.Int32).alias("sub"),
            pl.concat_str(
                [
                    pl.lit("200"),
                    pl.col("nmi"),
                    pl.col("config"),
                    pl.col("register_id"),
                    pl.col("suffix"),
                    pl.lit(""),
                    pl.col("serial"),
                    unit,
                    pl.col("interval_minutes").cast(pl.String),
                    pl.lit(""),
                ],
                separator=",",
            ).alias("line"),
        )
    )
    day_lines = _day_records(days)
    mixed = days.join(day_lines.filter(~pl.col("uniform")).select("day"), on="day", how="semi")
    body = pl.concat(
        [headers, day_lines.drop("uniform"), _event_records(mixed)], how="vertical_relaxed"
    ).sort("group", "day", "sub")
    header = f"100,NEM12,{created:%Y%m%d%H%M},{from_participant},{to_participant}"
    text = body.select(pl.col("line").str.join(line_end)).item() if body.height else ""
    parts = [header, text, "900"] if text else [header, "900"]
    return line_end.join(parts) + line_end


def write_nem12(
    df: pl.DataFrame,
    url: str,
    settings: Settings,
    *,
    created: dt.datetime,
    from_participant: str = "BUA",
    to_participant: str = "BUA",
) -> None:
    """Write the NEM12 text of ``df`` to a local path or s3:// URL atomically."""
    text = nem12_text(df, created=created, from_participant=from_participant, to_participant=to_participant)
    write_bytes_atomic(text.encode("ascii"), url, settings)
