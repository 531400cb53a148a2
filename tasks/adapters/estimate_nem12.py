"""NEM12 files of the interval estimates (SPEC §4.5), one shard.

Method: from the interval ``usage`` rows, keep every register-day with at least one estimated
interval; its quality string is ``E`` for an interval bua estimated and ``A`` for one taken from
the meter store as given. ``tasks.adapters.nem12_write`` then writes one 300 record per register-day:
quality ``V`` with 400 records marking the estimated runs ``E24`` on mixed days, quality ``E24`` on
all-estimated days (MDFF requires a method flag after E; 24 Data Scaling is bua's interval
method, tasks/domain/flags.py). Values are exactly the floats rating used (the writer prints each float's
shortest exact decimal). One file per shard, split every ``max_rows`` register-days:
``{output_url}/nem12/{run_date}/shard=NNN/estimates-PPP.csv``; the 100 record's DateTime is the
run's creation time passed in, so the same run writes the same bytes.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.adapters.nem12_write import nem12_text
from tasks.adapters.storage import write_bytes_atomic
from tasks.domain.flags import INTERVAL_METHOD_FLAG
from tasks.settings import Settings, join_url


def estimate_days(usage: pl.DataFrame) -> pl.DataFrame:
    """Register-days (writer shape) of the interval usage rows that carry any estimate."""
    return (
        usage.filter((pl.col("method") == "INTERVAL") & pl.col("estimated").list.any())
        .select(
            "nmi",
            "suffix",
            "read_date",
            "interval_minutes",
            "unit",
            "values",
            pl.col("estimated")
            .list.eval(pl.when(pl.element()).then(pl.lit("E")).otherwise(pl.lit("A")))
            .list.join("")
            .alias("quality"),
            pl.lit(INTERVAL_METHOD_FLAG).alias("method_flag"),
        )
        .sort("nmi", "suffix", "read_date")
    )


def nem12_folder(settings: Settings, run_date: dt.date, shard: int, scenario: str = "") -> str:
    """``{output_url}/nem12/{run_date}/[scenario={name}/]shard=NNN``."""
    base = join_url(settings.output_url, "nem12", run_date.isoformat())
    return join_url(join_url(base, f"scenario={scenario}") if scenario else base, f"shard={shard:03d}")


def write_estimate_nem12(
    usage: pl.DataFrame,
    settings: Settings,
    run_date: dt.date,
    shard: int,
    created: dt.datetime,
    max_rows: int = 200_000,
    scenario: str = "",
) -> list[str]:
    """Write the shard's NEM12 estimate files; returns their URLs (none when nothing was estimated)."""
    days = estimate_days(usage)
    base = nem12_folder(settings, run_date, shard, scenario)
    urls: list[str] = []
    for part, offset in enumerate(range(0, days.height, max_rows)):
        url = join_url(base, f"estimates-{part:03d}.csv")
        text = nem12_text(days.slice(offset, max_rows), created=created)
        write_bytes_atomic(text.encode("ascii"), url, settings)
        urls.append(url)
    return urls
