"""`bua ingest weather`: BoM daily min/max CSVs into weather_daily (SPEC §2) on SQLite, MariaDB,
PostgreSQL; bad rows rejected with file:line:reason, a file of another shape quarantined (a copy;
the source stays), min and max files of a station merge, re-ingest changes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from typer.testing import CliRunner

from flows.cli import app
from sql.schema import metadata
from tasks.adapters.db import engine_for, init_db
from tasks.adapters.weather import ingest_weather
from tasks.domain.weather import daily_temperature, parse_bom_daily
from tasks.settings import Settings

HEAD = (
    "Product code,Bureau of Meteorology station number,Year,Month,Day,{},Days of accumulation of {},Quality\n"
)
MAX_FILE = HEAD.format("Maximum temperature (Degree C)", "maximum temperature") + (
    "IDCJAC0010,066062,2026,07,01,17.5,1,Y\n"
    "IDCJAC0010,066062,2026,07,02,,,\n"  # missing observation: nothing stored for it
    "IDCJAC0010,066062,2026,07,03,18.9,1,N\n"
    "IDCJAC0010,066062,2026,02,30,25.0,1,N\n"  # line 5: no such date
    "IDCJAC0010,012345,2026,07,01,20.0,1,Y\n"  # line 6: a station the table does not know
)
MIN_FILE = HEAD.format("Minimum temperature (Degree C)", "minimum temperature") + (
    "IDCJAC0011,066062,2026,07,01,8.5,1,Y\nIDCJAC0011,66062,2026,07,03,9.1,1,Y\nIDCJAC0011,066062,2026,07,04,x,1,Y\n"
)


def _rows(url: str) -> list[tuple]:
    t = metadata.tables["weather_daily"]
    with engine_for(url).connect() as c:
        rows = c.execute(
            sa.select(t.c.jurisdiction_id, t.c.station_id, t.c.date, t.c.min_temp_c, t.c.max_temp_c).order_by(
                t.c.station_id, t.c.date
            )
        ).all()
    return [
        (
            r[0],
            r[1],
            r[2] if isinstance(r[2], dt.date) else dt.date.fromisoformat(str(r[2])),
            None if r[3] is None else float(r[3]),
            None if r[4] is None else float(r[4]),
        )
        for r in rows
    ]


def test_weather_ingest_merges_min_and_max_rejects_bad_rows_and_is_idempotent(
    db_url: str, tmp_path: Path
) -> None:
    init_db(db_url)
    with engine_for(db_url).begin() as c:
        c.execute(
            metadata.tables["jurisdiction"].insert(),
            [{"id": 3, "code": "NSW", "timezone": "Australia/Sydney"}],
        )
    src = tmp_path / "in"
    src.mkdir()
    (src / "IDCJAC0010_066062_1800_Data.csv").write_text(MAX_FILE)
    (src / "IDCJAC0011_066062_1800_Data.csv").write_text(MIN_FILE)
    (src / "notes.csv").write_text("date,temp\n2026-07-01,12\n")
    settings = Settings(database_url=db_url, output_url=str(tmp_path / "out"))
    s = ingest_weather([str(src)], settings)
    assert (s.files, s.accepted, len(s.rejected), s.rows_rejected) == (3, 2, 1, 3)
    # 066062 = Sydney (Observatory Hill) -> NSW (id 3) in the built-in station table; 1 Jul has both,
    # 3 Jul both (the min file wrote the station without its leading zero), 2 Jul nothing at all
    assert _rows(db_url) == [
        (3, "066062", dt.date(2026, 7, 1), 8.5, 17.5),
        (3, "066062", dt.date(2026, 7, 3), 9.1, 18.9),
    ]
    rejects = pl.read_csv(tmp_path / "out" / "rejects" / "IDCJAC0010_066062_1800_Data.csv.rejects.csv")
    assert rejects.select("source_line", "reason").rows() == [
        (5, "Year/Month/Day '2026-02-30' is not a date"),
        (6, "station 012345 is not in the station table (BUA_WEATHER_STATIONS: station → jurisdiction)"),
    ]
    mins = pl.read_csv(tmp_path / "out" / "rejects" / "IDCJAC0011_066062_1800_Data.csv.rejects.csv")
    assert mins.select("source_line", "reason").rows() == [
        (4, "Minimum temperature (Degree C) 'x' is not a number")
    ]
    # the unknown shape is quarantined as a copy with its reason; the source stays
    reason = (tmp_path / "out" / "quarantine" / "notes.csv.reason.txt").read_text()
    assert reason.startswith("notes.csv:1: not a Bureau of Meteorology daily temperature file")
    assert (src / "notes.csv").exists()
    again = ingest_weather([str(src / "IDCJAC0010_066062_1800_Data.csv")], settings)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    # a corrected max for 1 Jul replaces the stored one and keeps the min
    fix = tmp_path / "fix.csv"
    fix.write_text(
        HEAD.format("Maximum temperature (Degree C)", "maximum temperature")
        + "IDCJAC0010,066062,2026,07,01,18.0,1,Y\n"
    )
    third = ingest_weather([str(fix)], settings)
    assert (third.inserted, third.updated) == (0, 1)
    assert _rows(db_url)[0] == (3, "066062", dt.date(2026, 7, 1), 8.5, 18.0)


def test_station_table_from_setting_and_cli(sqlite_url: str, tmp_path: Path) -> None:
    init_db(sqlite_url)
    with engine_for(sqlite_url).begin() as c:
        c.execute(
            metadata.tables["jurisdiction"].insert(),
            [{"id": 1, "code": "VIC", "timezone": "Australia/Melbourne"}],
        )
    table = tmp_path / "stations.csv"
    table.write_text("station_id,jurisdiction,name\n12345,VIC,Somewhere\n")
    f = tmp_path / "max.csv"
    f.write_text(
        HEAD.format("Maximum temperature (Degree C)", "maximum temperature")
        + "IDCJAC0010,012345,2026,07,01,14.0,1,Y\n"
    )
    result = CliRunner().invoke(
        app,
        ["--database-url", sqlite_url, "--output-url", str(tmp_path / "out"), "ingest", "weather", str(f)],
        env={"BUA_WEATHER_STATIONS": str(table)},
    )
    assert result.exit_code == 0, result.output
    assert "1 inserted" in result.output
    assert _rows(sqlite_url) == [(1, "012345", dt.date(2026, 7, 1), None, 14.0)]


def test_daily_temperature_is_the_mean_of_min_and_max_over_stations() -> None:
    # NSW 1 Jul: station A (8 + 18) / 2 = 13, station B (10 + 20) / 2 = 15 -> 14; station B's 2 Jul
    # has no min -> left out, so 2 Jul is station A's (6 + 16) / 2 = 11
    w = pl.DataFrame(
        {
            "jurisdiction": ["NSW"] * 4,
            "station_id": ["A", "B", "A", "B"],
            "date": [dt.date(2026, 7, 1)] * 2 + [dt.date(2026, 7, 2)] * 2,
            "min_temp_c": [8.0, 10.0, 6.0, None],
            "max_temp_c": [18.0, 20.0, 16.0, 21.0],
        }
    )
    assert daily_temperature(w).rows() == [
        ("NSW", dt.date(2026, 7, 1), 14.0),
        ("NSW", dt.date(2026, 7, 2), 11.0),
    ]


def test_parse_keeps_the_later_line_of_a_station_day() -> None:
    text = HEAD.format("Maximum temperature (Degree C)", "maximum temperature") + (
        "IDCJAC0010,066062,2026,07,01,17.5,1,N\nIDCJAC0010,066062,2026,07,01,17.9,1,Y\n"
    )
    obs, bad = parse_bom_daily(text, "f.csv", {"066062": "NSW"})
    assert obs.select("date", "max_temp_c", "source_line").rows() == [(dt.date(2026, 7, 1), 17.9, 3)]
    assert bad.height == 0
