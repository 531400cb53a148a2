"""The pyarrow read of a month partition's columns (meter_store.interval_month_reads,
storage.read_parquet_columns): the same rows in the same order as the partition's polars scan,
no reader for a partition with pending deltas, the same on S3; and profile_read gives the same
frames with the readers as without."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from tasks.adapters.meter_deltas import delta_url
from tasks.adapters.meter_store import (
    interval_month_reads,
    list_partitions,
    merge_register_days,
    parquet_bytes,
)
from tasks.adapters.storage import write_bytes_atomic
from tasks.settings import Settings

JAN31, FEB1 = dt.date(2024, 1, 31), dt.date(2024, 2, 1)


def _rows() -> pl.DataFrame:
    """Four register-days, given out of store order: N2 on 31 Jan, N1 on 1 Feb, N1 on 31 Jan
    (one null value, slot 5, quality N there) and N1 on 1 Feb again for suffix B1."""
    ramp = [i * 0.25 for i in range(48)]  # slot i holds i/4 kWh
    with_null = [None if i == 5 else v for i, v in enumerate(ramp)]
    return pl.DataFrame(
        {
            "nmi": ["N2", "N1", "N1", "N1"],
            "suffix": ["E1", "E1", "E1", "B1"],
            "read_date": [JAN31, FEB1, JAN31, FEB1],
            "interval_minutes": [30, 30, 30, 30],
            "unit": "KWH",
            "values": [[2.0] * 48, ramp, with_null, [1.0] * 48],
            "quality": ["A" * 48, "A" * 48, "A" * 5 + "N" + "A" * 42, "S" * 48],
        },
        schema_overrides={"interval_minutes": pl.Int16},
    )


def _check_store(settings: Settings) -> None:
    merge_register_days(_rows(), settings)
    scans, readers = interval_month_reads(settings, 0, JAN31, FEB1)
    assert sorted(scans) == sorted(readers) == ["2024-01", "2024-02"]
    for month, scan in scans.items():
        want = scan.select("values", "quality").collect()
        got = pl.from_arrow(readers[month](["values", "quality"]))
        assert got.equals(want)  # type: ignore[union-attr]
    # by hand, store order is (nmi, suffix, read_date): January holds N1 E1 then N2 E1; February
    # N1 B1 then N1 E1
    jan = readers["2024-01"](["values", "quality"]).to_pydict()
    assert jan["values"][0][4:7] == [1.0, None, 1.5]  # slots 4, 5 (null), 6 of N1 on 31 Jan
    assert jan["quality"][0][5] == "N" and jan["values"][1] == [2.0] * 48
    feb = readers["2024-02"](["values"]).to_pydict()
    assert feb["values"][0] == [1.0] * 48 and feb["values"][1][47] == 11.75


def test_month_reader_reads_the_scans_rows_in_its_order(tmp_path: Path) -> None:
    _check_store(Settings(meter_store=str(tmp_path / "store"), shards=1))


def test_month_reader_on_s3(s3_bucket: str) -> None:
    """The reader goes through the same s3fs credentials and endpoint (moto) as the scans."""
    _check_store(Settings(meter_store=f"{s3_bucket}/store", output_url=f"{s3_bucket}/out", shards=1))


def test_a_partition_with_deltas_has_no_reader(tmp_path: Path) -> None:
    """January gets a pending delta (N2 on 31 Jan rewritten to 3.0): its rows are the fold, so it is
    read through its scan only; February keeps its reader."""
    settings = Settings(meter_store=str(tmp_path / "store"), shards=1)
    merge_register_days(_rows(), settings)
    part = list_partitions(settings, 0)[(0, "2024-01")]
    later = _rows().filter(pl.col("nmi") == "N2").with_columns(pl.lit([3.0] * 48).alias("values"))
    write_bytes_atomic(parquet_bytes(later), delta_url(part, "x"), settings)
    scans, readers = interval_month_reads(settings, 0, JAN31, FEB1)
    assert sorted(scans) == ["2024-01", "2024-02"] and sorted(readers) == ["2024-02"]
    assert scans["2024-01"].filter(pl.col("nmi") == "N2").collect()["values"].to_list() == [[3.0] * 48]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_profile_read_gives_the_same_frames_with_the_readers(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """profile_read over January and February (whole months, so read from their partitions) with
    and without the pyarrow readers, on a local store and on S3 (moto): equal partial sums, day
    grid and kept rows; the 1 Feb profile of N1 E1 is the ramp (slot 47 = 11.75 kWh, one register)."""
    from tasks.adapters.meter_store import scan_interval
    from tasks.domain.profiles import profile_read

    if where == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        settings = Settings(meter_store=f"{bucket}/store", output_url=f"{bucket}/out", shards=1)
    else:
        settings = Settings(meter_store=str(tmp_path / "store"), shards=1)
    merge_register_days(_rows(), settings)
    regs = pl.DataFrame(
        {
            "meter_register_id": [1, 2],
            "account_id": [1, 2],
            "nmi": ["N1", "N2"],
            "suffix": ["E1", "E1"],
            "customer_class": ["RES", "RES"],
            "jurisdiction": ["NSW", "NSW"],
            "stream": ["CONSUMPTION", "CONSUMPTION"],
            "tni": [None, None],
            "interval_minutes": [30, 30],
            "register_start": [dt.date(2024, 1, 1)] * 2,
            "register_end": [None, None],
        },
        schema_overrides={"register_end": pl.Date, "tni": pl.Utf8},
    )
    lo, hi = dt.date(2024, 1, 1), dt.date(2024, 2, 29)
    keep = pl.DataFrame({"nmi": ["N1", "N2"], "suffix": ["E1", "E1"], "read_date": [FEB1, JAN31]})
    scans, readers = interval_month_reads(settings, 0, lo, hi)
    scan = scan_interval(settings, 0, lo, hi)
    kw = {"grid_from": lo, "months": scans, "keep": keep}
    without = profile_read(regs, scan, False, lo, hi, **kw)  # type: ignore[arg-type]
    with_readers = profile_read(regs, scan, False, lo, hi, month_columns=readers, **kw)  # type: ignore[arg-type]
    for a, b in zip(without, with_readers, strict=True):
        assert a.equals(b)
    assert with_readers[2]["nmi"].to_list() == ["N2", "N1"]  # kept rows: chunk (month) order
    feb = with_readers[0].filter(pl.col("read_date") == FEB1, pl.col("segment") == "RES|NSW|CONSUMPTION")
    assert feb["registers"].to_list() == [1.0]
