"""Daily weather observations (SPEC §2 ``weather_daily``, §4.3): parsing the Bureau of Meteorology's
daily CSV shape, and degree days per jurisdiction and day.

The Bureau's Climate Data Online daily files carry one element each: product IDCJAC0010
(``Maximum temperature (Degree C)``, ``Days of accumulation of maximum temperature``, ``Quality``)
and IDCJAC0011 (``Minimum temperature (Degree C)``, ``Days of accumulation of minimum
temperature``, ``Quality``), both after ``Product code``, ``Bureau of Meteorology station number``,
``Year``, ``Month``, ``Day``. A missing observation is a blank value; quality is Y (quality
controlled), N (not yet) or blank. :func:`parse_bom_daily` reads such a file (or one carrying
both temperature columns) into one row per station and day with the value(s) it holds, and
returns the rows it cannot read with their line and reason. Stations are mapped to a
jurisdiction by a station table (docs/METHOD.md, "Weather"); a station the table does not know is
a reject, never guessed.

Degree days: the day's mean temperature T = (min + max) / 2 averaged over the jurisdiction's
stations that have both; HDD(b) = max(0, b − T), CDD(b) = max(0, T − b) (CalTRACK's daily degree
days, on the daily mean of min and max).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

STATION = "Bureau of Meteorology station number"
MAX_COL = "Maximum temperature (Degree C)"
MIN_COL = "Minimum temperature (Degree C)"
DATE_PARTS = ("Year", "Month", "Day")
PLAUSIBLE_C = (-40.0, 60.0)  # outside this a temperature is a misprint (Australian records: −23 °C, 50.7 °C)

OBS_SCHEMA = {
    "station_id": pl.String,
    "jurisdiction": pl.String,
    "date": pl.Date,
    "min_temp_c": pl.Float64,
    "max_temp_c": pl.Float64,
    "source_file": pl.String,
    "source_line": pl.Int64,
}
REJECT_SCHEMA = {"source_file": pl.String, "source_line": pl.Int64, "reason": pl.String, "raw": pl.String}


class WeatherFileError(ValueError):
    """A weather file that cannot be read at all (not the BoM daily shape)."""

    def __init__(self, name: str, line: int, reason: str) -> None:
        super().__init__(f"{name}:{line}: {reason}")
        self.name, self.line, self.reason = name, line, reason


def normalise_station(expr: pl.Expr) -> pl.Expr:
    """BoM station numbers are six digits with leading zeros (066062); files and tables may drop them."""
    return expr.cast(pl.String).str.strip_chars().str.zfill(6)


def parse_bom_daily(text: str, name: str, stations: Mapping[str, str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(observations ``OBS_SCHEMA``, rejects ``REJECT_SCHEMA``) of one BoM daily CSV file.

    ``stations``: station number (six digits) → jurisdiction code. Raises :class:`WeatherFileError`
    when the header is not the BoM daily shape with a minimum or maximum temperature column.
    Line numbers are the file's (the header is line 1).
    """
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    header = _checked_header(lines, name)
    # the Bureau's files hold no quoted fields: split each line on commas, keeping its line number
    body = pl.DataFrame({"raw": lines[1:]}, schema={"raw": pl.String}).with_row_index("_i")
    body = body.filter(pl.col("raw").str.strip_chars() != "")
    fields = pl.col("raw").str.split(",")

    def field(col: str) -> pl.Expr:
        return fields.list.get(header.index(col), null_on_oob=True).fill_null("").str.strip_chars()

    f = body.select(
        (pl.col("_i").cast(pl.Int64) + 2).alias("source_line"),
        "raw",
        *[field(c).alias(c) for c in header if c in (STATION, *DATE_PARTS, MIN_COL, MAX_COL)],
    ).with_columns(
        normalise_station(pl.col(STATION)).alias("station_id"),
        pl.format("{}-{}-{}", pl.col("Year"), pl.col("Month").str.zfill(2), pl.col("Day").str.zfill(2))
        .str.to_date("%Y-%m-%d", strict=False)
        .alias("date"),
    )
    values, problems = _temperatures(f)
    known = pl.col("station_id").is_in(list(stations))
    reason = pl.coalesce(
        pl.when(pl.col(STATION).str.contains(r"^\d{1,6}$").not_()).then(
            pl.format("station number '{}' is not a BoM station number (up to six digits)", pl.col(STATION))
        ),
        pl.when(pl.col("date").is_null()).then(
            pl.format("Year/Month/Day '{}-{}-{}' is not a date", "Year", "Month", "Day")
        ),
        pl.when(~known).then(
            pl.format(
                "station {} is not in the station table (BUA_WEATHER_STATIONS: station → jurisdiction)",
                "station_id",
            )
        ),
        *problems,
    )
    f = f.with_columns(*values, reason.alias("reason"))
    rejects = f.filter(pl.col("reason").is_not_null()).select(
        pl.lit(name).alias("source_file"), "source_line", "reason", "raw"
    )
    good = (
        f.filter(pl.col("reason").is_null())
        .filter(pl.col("min_temp_c").is_not_null() | pl.col("max_temp_c").is_not_null())
        .select(
            "station_id",
            pl.col("station_id").replace_strict(dict(stations), default=None).alias("jurisdiction"),
            "date",
            "min_temp_c",
            "max_temp_c",
            pl.lit(name).alias("source_file"),
            "source_line",
        )
    )
    # a station-day twice in one file: the later line wins (like a corrected re-issue of the day)
    good = good.sort("station_id", "date", "source_line").unique(["station_id", "date"], keep="last")
    return good.cast(OBS_SCHEMA).sort("station_id", "date"), rejects.cast(REJECT_SCHEMA)  # type: ignore[arg-type]


def _checked_header(lines: list[str], name: str) -> list[str]:
    """The header's column names; WeatherFileError when it is not the BoM daily temperature shape."""
    if not lines or not lines[0].strip():
        raise WeatherFileError(name, 1, "empty file: no header line")
    header = [h.strip() for h in lines[0].split(",")]
    need = [STATION, *DATE_PARTS]
    missing = [c for c in need if c not in header]
    if missing or (MAX_COL not in header and MIN_COL not in header):
        raise WeatherFileError(
            name,
            1,
            "not a Bureau of Meteorology daily temperature file: the header needs "
            + ", ".join(f"'{c}'" for c in need)
            + f" and '{MIN_COL}' or '{MAX_COL}' (found: {lines[0][:160]!r})",
        )
    return header


def _temperatures(f: pl.DataFrame) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """min_temp_c and max_temp_c (null where the file has no such column) and the problem of each
    (not a number, or implausible)."""
    values = []
    problems: list[pl.Expr] = []
    for col, out in ((MIN_COL, "min_temp_c"), (MAX_COL, "max_temp_c")):
        if col in f.columns:
            txt = pl.col(col)
            val = txt.cast(pl.Float64, strict=False)
            values.append(val.alias(out))
            problems.append(
                pl.when((txt != "") & val.is_null())
                .then(pl.format("{} '{}' is not a number", pl.lit(col), txt))
                .when(val.is_not_null() & ~val.is_between(*PLAUSIBLE_C))
                .then(pl.format("{} {} is outside {} … {} °C", pl.lit(col), txt, *map(pl.lit, PLAUSIBLE_C)))
            )
        else:
            values.append(pl.lit(None, dtype=pl.Float64).alias(out))
    return values, problems


def combine_observations(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """One row per (station, date) from several files' observations (min and max files of the same
    station merge; for the same element the later file wins): station_id, jurisdiction, date,
    min_temp_c, max_temp_c."""
    if not frames:
        return pl.DataFrame(schema={k: v for k, v in OBS_SCHEMA.items() if not k.startswith("source")})
    allf = pl.concat([f.with_columns(pl.lit(i).alias("_file")) for i, f in enumerate(frames)])
    return (
        allf.sort("station_id", "date", "_file", "source_line")
        .group_by("station_id", "date", maintain_order=True)
        .agg(
            pl.col("jurisdiction").last(),
            pl.col("min_temp_c").drop_nulls().last(),
            pl.col("max_temp_c").drop_nulls().last(),
        )
        .sort("station_id", "date")
    )


def daily_temperature(weather: pl.DataFrame) -> pl.DataFrame:
    """jurisdiction, read_date, temp: the mean over the jurisdiction's stations of (min + max) / 2
    (station-days with both observations only), sorted."""
    return (
        weather.filter(pl.col("min_temp_c").is_not_null() & pl.col("max_temp_c").is_not_null())
        .group_by("jurisdiction", pl.col("date").alias("read_date"))
        .agg(
            ((pl.col("min_temp_c").cast(pl.Float64) + pl.col("max_temp_c").cast(pl.Float64)) / 2)
            .mean()
            .alias("temp")
        )
        .sort("jurisdiction", "read_date")
    )
