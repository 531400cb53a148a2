"""Daily deliveries as deltas beside their partition (tasks/adapters/meter_deltas.py): read folded,
compacted to the bytes a direct merge writes, idempotent, and consistent after a crash.

The store ``direct`` gets the same files with ``store_max_deltas=0`` (every ingest merges into the
partition, the way bua worked before deltas): it is the byte reference for compaction.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tasks.adapters import meter_store
from tasks.adapters.ingest import ingest_nem12
from tasks.adapters.meter_deltas import compact_store
from tasks.adapters.meter_store import list_partitions, read_partition, scan_interval
from tests.ingest.test_meter_store import _days, _file, _store_bytes

NMIS = [f"NMI000000{i}" for i in range(6)]
SHARDS = 2
JAN = dt.date(2024, 1, 1)


def _settings(root: Path, **kw: object):  # noqa: ANN202
    from tasks.settings import Settings

    return Settings(meter_store=str(root), output_url=str(root.parent / "out"), shards=SHARDS, **kw)


@pytest.fixture
def month(tmp_path: Path) -> Path:
    """1-20 January of six NMIs, value 1.0, updated 21 Jan: the store as the daily files find it."""
    return _file(
        tmp_path / "month.csv", [(n, d, 1.0) for n in NMIS for d in _days(JAN, 20)], dt.datetime(2024, 1, 21)
    )


def _daily(tmp_path: Path, day: int, value: float, update: dt.datetime) -> Path:
    """One day of every NMI (every interval ``value``)."""
    return _file(
        tmp_path / f"day{day}-{value}.csv", [(n, dt.date(2024, 1, day), value) for n in NMIS], update
    )


def _stores(tmp_path: Path, month: Path):  # noqa: ANN202
    delta, direct = _settings(tmp_path / "delta"), _settings(tmp_path / "direct", store_max_deltas=0)
    for s in (delta, direct):
        ingest_nem12([str(month)], s)
    return delta, direct


def _ingest_both(files: list[Path], *stores) -> None:  # noqa: ANN002
    for f in files:
        for s in stores:
            ingest_nem12([str(f)], s)


def _deltas(settings) -> list[str]:  # noqa: ANN001
    return [d for p in list_partitions(settings).values() for d in p.deltas]


def _day_values(settings, day: dt.date) -> list[float]:  # noqa: ANN001
    """The first interval of ``day`` of every NMI, in NMI order, as every reader sees it."""
    rows = pl.concat([scan_interval(settings, s, day, day).collect() for s in range(SHARDS)])
    return rows.sort("nmi")["values"].list.first().to_list()


def test_daily_files_are_deltas_and_compaction_gives_the_direct_merge_bytes(
    tmp_path: Path, month: Path
) -> None:
    delta, direct = _stores(tmp_path, month)
    before = _store_bytes(tmp_path / "delta")
    days = [
        _daily(tmp_path, 21, 2.0, dt.datetime(2024, 1, 22)),
        _daily(tmp_path, 22, 3.0, dt.datetime(2024, 1, 23)),
    ]
    _ingest_both(days, delta, direct)
    # both shards hold some of the six NMIs: one delta per shard per day, the partitions untouched
    assert len(_deltas(delta)) == 2 * SHARDS and _deltas(direct) == []
    assert {k: v for k, v in _store_bytes(tmp_path / "delta").items() if "delta-" not in k} == before
    # readers fold the deltas in: 21 Jan reads 2.0 and 22 Jan 3.0 for all six NMIs, in both stores
    for s in (delta, direct):
        assert _day_values(s, dt.date(2024, 1, 21)) == [2.0] * 6
        assert _day_values(s, dt.date(2024, 1, 22)) == [3.0] * 6
    done = compact_store(delta)
    assert (done.partitions, done.deltas, len(done.rewritten)) == (SHARDS, 2 * SHARDS, SHARDS)
    assert _deltas(delta) == [] and _store_bytes(tmp_path / "delta") == _store_bytes(tmp_path / "direct")
    assert compact_store(delta).partitions == 0  # idempotent: nothing left to fold


def test_a_later_update_replaces_a_value_and_an_older_one_changes_nothing(
    tmp_path: Path, month: Path
) -> None:
    delta, direct = _stores(tmp_path, month)
    first = _daily(tmp_path, 21, 2.0, dt.datetime(2024, 1, 22, 3))
    fixed = _daily(tmp_path, 21, 7.0, dt.datetime(2024, 1, 25))  # the MDP's correction: later update
    stale = _daily(tmp_path, 21, 9.0, dt.datetime(2024, 1, 22))  # an older update than the first
    _ingest_both([first, fixed], delta, direct)
    assert len(_deltas(delta)) == 2 * SHARDS
    assert _day_values(delta, dt.date(2024, 1, 21)) == [7.0] * 6
    snapshot = _store_bytes(tmp_path / "delta")
    _ingest_both([stale], delta, direct)  # loses to 25 Jan everywhere: no delta written
    assert _store_bytes(tmp_path / "delta") == snapshot
    assert _day_values(delta, dt.date(2024, 1, 21)) == [7.0] * 6
    compact_store(delta)
    assert _store_bytes(tmp_path / "delta") == _store_bytes(tmp_path / "direct")


def test_re_ingesting_the_same_daily_file_changes_nothing(tmp_path: Path, month: Path) -> None:
    delta, _ = _stores(tmp_path, month)
    day = _daily(tmp_path, 21, 2.0, dt.datetime(2024, 1, 22))
    ingest_nem12([str(day)], delta)
    snapshot = _store_bytes(tmp_path / "delta")
    again = ingest_nem12([str(day)], delta)
    assert (again.deltas_written, again.partitions_written) == (0, 0)
    assert _store_bytes(tmp_path / "delta") == snapshot
    compact_store(delta)
    folded = _store_bytes(tmp_path / "delta")
    ingest_nem12([str(day)], delta)  # and after compaction: the day is in the partition already
    assert _store_bytes(tmp_path / "delta") == folded


def test_too_many_deltas_fold_at_ingest(tmp_path: Path, month: Path) -> None:
    """With ``store_max_deltas=2`` the third daily file folds the two deltas and itself into the
    partition: 21, 22 as deltas; 23 merged (no delta left), the direct merge's bytes."""
    delta, direct = _stores(tmp_path, month)
    delta = delta.model_copy(update={"store_max_deltas": 2})
    days = [_daily(tmp_path, d, float(d), dt.datetime(2024, 1, d + 1)) for d in (21, 22, 23)]
    _ingest_both(days[:2], delta, direct)
    assert len(_deltas(delta)) == 2 * SHARDS
    _ingest_both(days[2:], delta, direct)
    assert _deltas(delta) == [] and _store_bytes(tmp_path / "delta") == _store_bytes(tmp_path / "direct")


def test_a_crash_between_writing_the_partition_and_deleting_its_deltas(
    tmp_path: Path, month: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partition is rewritten, then the deletion of its deltas fails: the deltas are folded
    again by readers and by the next compaction, which changes nothing (the day still reads 2.0,
    not doubled or lost) and ends with the direct merge's bytes."""
    delta, direct = _stores(tmp_path, month)
    _ingest_both([_daily(tmp_path, 21, 2.0, dt.datetime(2024, 1, 22))], delta, direct)

    def crash(urls: object, settings: object) -> None:
        raise OSError("killed before the deltas were deleted")

    monkeypatch.setattr(meter_store, "delete", crash)
    with pytest.raises(OSError, match="killed"):
        compact_store(delta)
    monkeypatch.undo()
    assert len(_deltas(delta)) == SHARDS  # both left behind
    assert _day_values(delta, dt.date(2024, 1, 21)) == [2.0] * 6
    rows = sum(read_partition(p, delta).height for p in list_partitions(delta).values())
    assert rows == 6 * 21  # six NMIs x 21 days, once each
    compact_store(delta)
    assert _store_bytes(tmp_path / "delta") == _store_bytes(tmp_path / "direct")


def test_kill_9_during_compaction_then_rerun(tmp_path: Path, month: Path) -> None:
    """``bua meter compact`` killed (SIGKILL) with its first new partition written to a temporary
    file, before the rename: the old partition and its deltas are intact and read the same; the
    next compaction finishes with the direct merge's bytes (the temporary file is left beside, a
    dot-file no reader lists, deleted by the next ingest)."""
    delta, direct = _stores(tmp_path, month)
    _ingest_both([_daily(tmp_path, 21, 2.0, dt.datetime(2024, 1, 22))], delta, direct)
    env = {**os.environ, "BUA_METER_STORE": delta.meter_store, "BUA_SHARDS": str(SHARDS),
           "BUA_TEST_PAUSE_BEFORE_RENAME": "data.parquet:60"}  # fmt: skip
    bua = str(Path(sys.executable).parent / "bua")
    proc = subprocess.Popen([bua, "meter", "compact"], env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while "holding a write" not in proc.stderr.readline() and time.monotonic() < deadline:
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(Path(delta.meter_store).rglob(".data.parquet.*.tmp"))  # really killed mid-write
    assert len(_deltas(delta)) == SHARDS
    assert _day_values(delta, dt.date(2024, 1, 21)) == [2.0] * 6
    compact_store(delta)
    assert _store_bytes(tmp_path / "delta") == _store_bytes(tmp_path / "direct")


def test_deltas_and_compaction_on_s3(s3_bucket: str, tmp_path: Path, month: Path) -> None:
    """The same on S3 (moto): the daily file is a delta object per shard; compacted, the store's
    objects hold the local direct merge's bytes."""
    from tasks.adapters.storage import list_files, read_bytes
    from tasks.settings import Settings

    s3 = Settings(meter_store=f"{s3_bucket}/store", output_url=f"{s3_bucket}/out", shards=SHARDS)
    direct = _settings(tmp_path / "direct", store_max_deltas=0)
    day = _daily(tmp_path, 21, 2.0, dt.datetime(2024, 1, 22))
    _ingest_both([month, day], s3, direct)
    assert len(_deltas(s3)) == SHARDS
    assert _day_values(s3, dt.date(2024, 1, 21)) == [2.0] * 6
    compact_store(s3)
    assert _deltas(s3) == []
    base = f"{s3_bucket}/store/"
    on_s3 = {u.removeprefix(base): read_bytes(u, s3) for u in list_files(base, s3, suffix=".parquet")}
    assert on_s3 == _store_bytes(tmp_path / "direct") != {}


def test_every_reader_folds_pending_deltas(tmp_path: Path, month: Path) -> None:
    """Month scans (the profiles' reader), the register-day count (inventory) and the pre-run
    checks' newest day see a pending delta as if it had been merged: 6 NMIs x 21 days = 126 rows,
    newest day 21 Jan (the month file stops at the 20th)."""
    from types import SimpleNamespace

    from tasks.adapters.meter_store import interval_month_scans, register_day_count
    from tasks.pipeline.prechecks import _store

    delta, direct = _stores(tmp_path, month)
    _ingest_both([_daily(tmp_path, 21, 2.0, dt.datetime(2024, 1, 22))], delta, direct)
    assert _deltas(delta)
    for s in range(SHARDS):
        got = interval_month_scans(delta, s, JAN, dt.date(2024, 1, 31))["2024-01"].collect()
        assert got.equals(interval_month_scans(direct, s, JAN, dt.date(2024, 1, 31))["2024-01"].collect())
    assert register_day_count(delta) == register_day_count(direct) == 6 * 21
    spec = SimpleNamespace(run_date=dt.date(2024, 1, 22), shards=SHARDS)
    has_data, newest, recent = _store(delta, spec)  # type: ignore[arg-type]
    assert has_data and newest == dt.date(2024, 1, 21) and recent.height == 6
