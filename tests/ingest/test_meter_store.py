"""The meter store: idempotent, order-independent merges; latest update wins; lazy scans push down.

Files are written with bua's NEM12 writer so each test states its data in a few lines: a value
per day (every interval of the day carries it) and an UpdateDateTime.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from tasks.adapters.ingest import ingest_nem12
from tasks.adapters.meter_deltas import compact_store
from tasks.adapters.meter_store import MeterStoreError, explode_intervals, partition_url, scan_interval
from tasks.adapters.nem12_write import nem12_text
from tasks.domain.shard import shard_of
from tasks.settings import Settings

CREATED = dt.datetime(2024, 3, 1)
NMIS = ["NMI0000001", "NMI0000002", "QB00000003"]


def _file(path: Path, days: list[tuple[str, dt.date, float]], update: dt.datetime) -> Path:
    df = pl.DataFrame(
        {
            "nmi": [d[0] for d in days],
            "suffix": "E1",
            "read_date": [d[1] for d in days],
            "interval_minutes": 30,
            "unit": "KWH",
            "values": [[d[2]] * 48 for d in days],
            "quality": "A" * 48,
            "update_datetime": update,
        }
    )
    path.write_text(nem12_text(df, created=CREATED), newline="")
    return path


def _days(start: dt.date, n: int) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n)]


def _store_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def _compacted_bytes(settings: Settings) -> dict[str, bytes]:
    """The store's bytes once its deltas are folded in (``bua meter compact``)."""
    compact_store(settings)
    return _store_bytes(Path(settings.meter_store))


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """January-February of three NMIs (value 1.0, updated 2 Mar) and a re-send of 15 Jan - 15 Feb
    for two of them (value 2.0, updated 5 Mar): the overlap must hold 2.0 whatever the order."""
    old = _file(
        tmp_path / "old.csv",
        [(n, d, 1.0) for n in NMIS for d in _days(dt.date(2024, 1, 1), 60)],
        dt.datetime(2024, 3, 2),
    )
    new = _file(
        tmp_path / "new.csv",
        [(n, d, 2.0) for n in NMIS[:2] for d in _days(dt.date(2024, 1, 15), 32)],
        dt.datetime(2024, 3, 5),
    )
    return old, new


def _settings(root: Path) -> Settings:
    return Settings(meter_store=str(root), output_url=str(root.parent / "out"), shards=4)


def test_latest_update_wins_in_either_order(files: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = files
    a, b = _settings(tmp_path / "a"), _settings(tmp_path / "b")
    ingest_nem12([str(old)], a)
    ingest_nem12([str(new)], a)
    ingest_nem12([str(new)], b)
    ingest_nem12([str(old)], b)
    # in order a the re-send is a delta beside January and February; folded, the same bytes
    assert any((tmp_path / "a").rglob("delta-*.parquet"))
    assert _compacted_bytes(a) == _compacted_bytes(b) != {}
    shard = shard_of("NMI0000001", 4)
    days = (
        scan_interval(a, shard, nmis=["NMI0000001"])
        .select("read_date", pl.col("values").list.first())
        .collect()
        .sort("read_date")
    )
    assert days.height == 60  # 1 Jan - 29 Feb, one row per day: never double-counted
    by_value = days.group_by("values").agg(pl.len()).sort("values").rows()
    assert by_value == [(1.0, 60 - 32), (2.0, 32)]


def test_same_file_twice_leaves_the_same_bytes(files: tuple[Path, Path], tmp_path: Path) -> None:
    old, _ = files
    settings = _settings(tmp_path / "s")
    first = ingest_nem12([str(old)], settings)
    before = _store_bytes(tmp_path / "s")
    again = ingest_nem12([str(old)], settings)
    assert first.partitions_written > 0 and again.partitions_written == 0
    assert _store_bytes(tmp_path / "s") == before


def test_batches_do_not_change_the_result(files: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = files
    one, many = _settings(tmp_path / "one"), _settings(tmp_path / "many")
    ingest_nem12([str(old), str(new)], one)
    ingest_nem12([str(old), str(new)], many, batch_readings=48 * 10)  # a merge every ~10 days of data
    assert _store_bytes(tmp_path / "one") == _store_bytes(tmp_path / "many")


def test_equal_update_later_file_wins(tmp_path: Path) -> None:
    same = dt.datetime(2024, 3, 2)
    f1 = _file(tmp_path / "f1.csv", [("NMI0000001", dt.date(2024, 1, 1), 1.0)], same)
    f2 = _file(tmp_path / "f2.csv", [("NMI0000001", dt.date(2024, 1, 1), 3.0)], same)
    settings = _settings(tmp_path / "s")
    ingest_nem12([str(f1), str(f2)], settings)
    row = scan_interval(settings, shard_of("NMI0000001", 4)).collect().row(0, named=True)
    assert row["values"] == [3.0] * 48 and row["source_file"] == "f2.csv" and row["source_line"] == 3


def test_partition_layout_and_scan_pushdown(files: tuple[Path, Path], tmp_path: Path) -> None:
    old, _ = files
    settings = _settings(tmp_path / "s")
    ingest_nem12([str(old)], settings)
    shard = shard_of("QB00000003", 4)
    assert Path(partition_url(settings, shard, "2024-02")).exists()
    lf = scan_interval(
        settings, shard, dt.date(2024, 2, 10), dt.date(2024, 2, 12), nmis=["QB00000003"]
    ).select("nmi", "read_date")
    plan = lf.explain()
    assert "month=2024-01" not in plan  # January's file is not even opened
    scan = plan[plan.index("Parquet SCAN") :]
    assert "PROJECT 2/" in scan and "SELECTION" in scan  # columns and filters pushed into the scan
    got = lf.collect()
    assert got.columns == ["nmi", "read_date"] and got["read_date"].to_list() == _days(
        dt.date(2024, 2, 10), 3
    )


def test_explode_intervals_market_time(files: tuple[Path, Path], tmp_path: Path) -> None:
    old, _ = files
    settings = _settings(tmp_path / "s")
    ingest_nem12([str(old)], settings)
    rows = explode_intervals(
        scan_interval(
            settings, shard_of("NMI0000002", 4), dt.date(2024, 1, 31), dt.date(2024, 1, 31), ["NMI0000002"]
        )
    ).collect()
    assert rows.columns == ["nmi", "suffix", "interval_start", "interval_minutes", "value", "unit", "quality"]
    assert rows.height == 48
    assert rows["interval_start"][0] == dt.datetime(2024, 1, 31, 0, 0) and rows["interval_start"][
        47
    ] == dt.datetime(2024, 1, 31, 23, 30)


def test_scanning_with_another_shard_count_fails_loudly(files: tuple[Path, Path], tmp_path: Path) -> None:
    old, _ = files
    ingest_nem12([str(old)], _settings(tmp_path / "s"))
    with pytest.raises(MeterStoreError, match="partitioned into 4 shards but BUA_SHARDS is 16"):
        scan_interval(Settings(meter_store=str(tmp_path / "s"), shards=16), 0)


def test_partition_from_an_older_column_set_is_merged(files: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = files
    settings = _settings(tmp_path / "s").model_copy(update={"store_max_deltas": 0})  # merged, no delta
    ingest_nem12([str(old)], settings)
    url = partition_url(settings, shard_of("NMI0000001", 4), "2024-01")
    pl.read_parquet(url).drop("b2b_trans_code", "b2b_read_datetime", "b2b_index_read").write_parquet(url)
    ingest_nem12([str(new)], settings)
    merged = pl.read_parquet(url).filter(pl.col("nmi") == "NMI0000001")
    assert merged.height == 31 and merged["b2b_index_read"].null_count() == 31
    assert merged.filter(pl.col("read_date") >= dt.date(2024, 1, 15))[
        "values"
    ].list.first().unique().to_list() == [2.0]


def test_partition_of_the_latest_file_waits_for_the_next_one(tmp_path: Path) -> None:
    """Batches of 1,000 readings; three files of half a month of one NMI each (15 or 16 days × 48
    = 720 / 768 readings): f1 NMI a, f2 NMI b (another shard), f3 NMI b again. After f2 the 1,440
    rows waiting reach the batch: a's partition (untouched by f2) is written, b's (720 < 1,000)
    waits; after f3 it holds 1,488 and is written once with both halves. So 2 partition writes
    (flushing everything at each full batch would write b's partition twice), and the same bytes
    as one batch."""
    a, b = next((x, y) for x in NMIS for y in NMIS if shard_of(x, 4) != shard_of(y, 4))
    update = dt.datetime(2024, 3, 2)
    f1 = _file(tmp_path / "f1.csv", [(a, d, 1.0) for d in _days(dt.date(2024, 1, 1), 15)], update)
    f2 = _file(tmp_path / "f2.csv", [(b, d, 2.0) for d in _days(dt.date(2024, 1, 1), 15)], update)
    f3 = _file(tmp_path / "f3.csv", [(b, d, 3.0) for d in _days(dt.date(2024, 1, 16), 16)], update)
    paths = [str(f1), str(f2), str(f3)]
    small, one = _settings(tmp_path / "small"), _settings(tmp_path / "one")
    summary = ingest_nem12(paths, small, batch_readings=1000)
    assert summary.readings == (15 + 15 + 16) * 48 and summary.partitions_written == 2
    ingest_nem12(paths, one)
    assert _store_bytes(tmp_path / "small") == _store_bytes(tmp_path / "one")
    days = scan_interval(small, shard_of(b, 4), nmis=[b]).collect()
    assert days.height == 31 and days["read_date"].is_sorted()  # 1-31 Jan, both halves


def test_dedupe_sorts_rows_out_of_order_in_any_key_column() -> None:
    """Rows already in (nmi, suffix, read_date) order come back as they are; a row out of order in
    the suffix alone (E2 before E1 on the same NMI and day) is put in order, and a repeated key
    keeps its later row (equal UpdateDateTime)."""
    from tasks.adapters.nem12 import dedupe_register_days

    d = dt.date(2024, 1, 1)
    frame = pl.DataFrame(
        {
            "nmi": ["N1", "N1", "N1", "N2"],
            "suffix": ["E1", "E1", "E2", "E1"],
            "read_date": [d, d + dt.timedelta(days=1), d, d],
            "update_datetime": [dt.datetime(2024, 2, 1)] * 4,
            "row": [0, 1, 2, 3],
        }
    )
    assert dedupe_register_days(frame)["row"].to_list() == [0, 1, 2, 3]
    swapped = frame[[2, 0, 1, 3]]  # E2 first
    assert dedupe_register_days(swapped)["row"].to_list() == [0, 1, 2, 3]
    repeated = pl.concat([frame, frame.with_columns(pl.col("row") + 10)])
    assert dedupe_register_days(repeated)["row"].to_list() == [10, 11, 12, 13]
