"""`bua ingest weather PATH...`: Bureau of Meteorology daily temperature files into ``weather_daily``.

Files, folders, zip archives and ``s3://`` prefixes as for meter data (tasks/adapters/ingest.py).
Each file is read by :func:`tasks.domain.weather.parse_bom_daily`. A file that is not the BoM daily
shape is copied to the quarantine with its reason (``{name}.reason.txt``; the source is left where
it is) and the others go on; unreadable rows (bad date, not a number, implausible value, a station
the station table does not know) go to ``{rejects}/{file}.rejects.csv`` with ``file:line`` and a
reason, and the file's other rows load. Minimum and maximum files of the same station merge into
one row per (station, date); re-ingesting a file changes nothing; a value of a later file replaces
the stored one. One transaction per ingest.

Station → jurisdiction: a CSV named by ``BUA_WEATHER_STATIONS`` (columns ``station_id,jurisdiction``,
optional ``name``), else :data:`DEFAULT_STATIONS` — two Bureau stations per mainland state capital
and one each for Canberra and Hobart (station numbers from the Bureau's station list; the synthetic
portfolio writes its weather under the same numbers).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import polars as pl
import sqlalchemy as sa

from sql.schema import metadata
from tasks.adapters.db import engine_for, require_tables, transaction
from tasks.adapters.ingest_files import Rejected, SourceError, Unit, discover, rejects_root, units
from tasks.adapters.mdff import decode
from tasks.adapters.storage import read_bytes, write_bytes_atomic
from tasks.domain.weather import WeatherFileError, combine_observations, normalise_station, parse_bom_daily
from tasks.settings import Settings, join_url

# station number → (jurisdiction, name)
DEFAULT_STATIONS: dict[str, tuple[str, str]] = {
    "066062": ("NSW", "Sydney (Observatory Hill)"),
    "067105": ("NSW", "Richmond RAAF"),
    "086338": ("VIC", "Melbourne (Olympic Park)"),
    "087031": ("VIC", "Laverton RAAF"),
    "040913": ("QLD", "Brisbane"),
    "040842": ("QLD", "Brisbane Aero"),
    "023000": ("SA", "Adelaide (West Terrace / Ngayirdapira)"),
    "023034": ("SA", "Adelaide Airport"),
    "070351": ("ACT", "Canberra Airport"),
    "094029": ("TAS", "Hobart (Ellerslie Road)"),
}
__all__ = ["DEFAULT_STATIONS", "WeatherSummary", "ingest_weather", "station_table"]


@dataclass
class WeatherSummary:
    files: int = 0
    accepted: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rows_rejected: int = 0
    station_days: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def lines(self) -> list[str]:
        out = [
            f"weather: {self.files} file(s), {self.accepted} read, {len(self.rejected)} quarantined",
            f"weather_daily: {self.station_days} station-day(s): {self.inserted} inserted, {self.updated} updated, "
            f"{self.unchanged} unchanged; {self.rows_rejected} row(s) rejected",
        ]
        out += [f"rejected {r.name}: {r.reason.strip()} (copy: {r.quarantined_as})" for r in self.rejected]
        return out


def station_table(settings: Settings) -> dict[str, str]:
    """Station number (six digits) → jurisdiction code, from ``BUA_WEATHER_STATIONS`` or the default."""
    if not settings.weather_stations:
        return {k: j for k, (j, _) in DEFAULT_STATIONS.items()}
    url = settings.weather_stations
    try:
        df = pl.read_csv(io.BytesIO(read_bytes(url, settings)), infer_schema=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a usage error here
        raise SourceError(f"{url}: the station table cannot be read ({exc})") from exc
    missing = {"station_id", "jurisdiction"} - set(df.columns)
    if missing:
        raise SourceError(
            f"{url}:1: the station table needs columns station_id,jurisdiction (lacks {sorted(missing)})"
        )
    return dict(
        df.select(
            normalise_station(pl.col("station_id")), pl.col("jurisdiction").str.strip_chars()
        ).iter_rows()
    )


def _quarantine_copy(unit: Unit, report: str, settings: Settings) -> Rejected:
    """Keep a copy of the rejected file and its reason; the source is never moved or deleted."""
    dst = join_url(settings.quarantine(), unit.name.replace("/", "_"))
    write_bytes_atomic(unit.data, dst, settings)
    write_bytes_atomic(report.encode(), dst + ".reason.txt", settings)
    return Rejected(unit.name, report, dst)


def ingest_weather(paths: list[str], settings: Settings) -> WeatherSummary:
    """Load BoM daily temperature files into ``weather_daily`` (see the module docstring)."""
    require_tables(settings.db_url, ["jurisdiction", "weather_daily"])
    stations = station_table(settings)
    summary = WeatherSummary()
    frames: list[pl.DataFrame] = []
    for url in discover(paths, settings):
        for unit in units(url, settings):
            summary.files += 1
            if isinstance(unit, Rejected):
                summary.rejected.append(unit)
                continue
            try:
                obs, bad = parse_bom_daily(decode(unit.data), unit.name, stations)
            except (WeatherFileError, UnicodeDecodeError) as exc:
                report = (
                    f"{exc}\n" if isinstance(exc, WeatherFileError) else f"{unit.name}:0: not text ({exc})\n"
                )
                summary.rejected.append(_quarantine_copy(unit, report, settings))
                continue
            summary.accepted += 1
            frames.append(obs)
            if bad.height:
                summary.rows_rejected += bad.height
                dst = join_url(rejects_root(settings), f"{unit.name.replace('/', '_')}.rejects.csv")
                buf = io.BytesIO()
                bad.write_csv(buf)
                write_bytes_atomic(buf.getvalue(), dst, settings)
    obs = combine_observations(frames)
    if obs.height == 0:
        return summary
    jt = metadata.tables["jurisdiction"]
    with engine_for(settings.db_url).connect() as conn:
        jid = {code: int(i) for i, code in conn.execute(sa.select(jt.c.id, jt.c.code))}
    unknown = sorted(set(obs["jurisdiction"].drop_nulls().to_list()) - set(jid))
    if unknown:
        raise SourceError(
            f"station table maps stations to jurisdiction(s) {unknown} not in the jurisdiction table"
        )
    new = obs.with_columns(
        pl.col("jurisdiction").replace_strict(jid, return_dtype=pl.Int64).alias("jurisdiction_id")
    )
    counts = _upsert(settings.db_url, new)
    summary.station_days = new.height
    summary.inserted, summary.updated, summary.unchanged = counts
    return summary


def _upsert(url: str, new: pl.DataFrame) -> tuple[int, int, int]:
    """Merge the new (station, date) rows into weather_daily in one transaction: a value given
    replaces the stored one, a value not given (the other file of the pair) keeps it."""
    table = metadata.tables["weather_daily"]
    stations = new["station_id"].unique().sort().to_list()
    lo, hi = new["date"].min(), new["date"].max()
    with transaction(url) as conn:
        rows = conn.execute(
            sa.select(table.c.station_id, table.c.date, table.c.min_temp_c, table.c.max_temp_c).where(
                table.c.station_id.in_(stations) & table.c.date.between(lo, hi)
            )
        ).all()
        old = pl.DataFrame(
            [tuple(r) for r in rows],
            schema={"station_id": pl.String, "date": pl.Date, "old_min": pl.Float64, "old_max": pl.Float64},
            orient="row",
        )
        merged = new.join(old, on=["station_id", "date"], how="left").with_columns(
            stored=pl.col("old_min").is_not_null() | pl.col("old_max").is_not_null(),
            min_temp_c=pl.coalesce("min_temp_c", "old_min").round(1),
            max_temp_c=pl.coalesce("max_temp_c", "old_max").round(1),
        )
        same = (
            pl.col("stored")
            & (pl.col("min_temp_c").eq_missing(pl.col("old_min").round(1)))
            & (pl.col("max_temp_c").eq_missing(pl.col("old_max").round(1)))
        )
        changed = merged.filter(~same)
        upd = changed.filter("stored")
        for (st,), part in upd.partition_by(["station_id"], as_dict=True).items():
            days = part["date"].to_list()
            for start in range(0, len(days), 500):
                conn.execute(
                    table.delete().where(
                        (table.c.station_id == st) & table.c.date.in_(days[start : start + 500])
                    )
                )
        out = changed.select("jurisdiction_id", "station_id", "date", "min_temp_c", "max_temp_c")
        for start in range(0, out.height, 5000):
            conn.execute(table.insert(), out.slice(start, 5000).to_dicts())
    return changed.height - upd.height, upd.height, merged.height - changed.height
