"""NEM12 ingest merges through sorted runs (tasks.adapters.ingest_staging): the store's bytes do not depend
on the batch size, match the old read-merge-rewrite after every file, and an interrupted ingest
leaves a readable store that re-running completes.

The files look like an initial load: each carries a group of NMIs over the same three months,
so every file touches every (shard, month) partition, the case that made batch after batch of
read-merge-rewrite quadratic.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

import tasks.adapters.ingest_store as ingest_store
from tasks.adapters.ingest import ingest_nem12
from tasks.adapters.ingest_staging import staging_root
from tasks.adapters.meter_store import merge_register_days, partition_url
from tasks.adapters.nem12 import MdffError, parse_nem12
from tasks.adapters.nem12_write import nem12_text
from tasks.adapters.storage import list_files, read_bytes
from tasks.domain.shard import shard_of
from tasks.settings import Settings
from tests.conftest import needs_mdff
from tests.ingest.helpers import NEM12_FILES, member_bytes

CREATED = dt.datetime(2024, 5, 1)
NMIS = [f"NMI{i:07d}" for i in range(8)]
DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(91)]  # Jan, Feb, Mar 2024


def _file(path: Path, nmis: list[str], value: float, update: dt.datetime) -> Path:
    df = pl.DataFrame(
        {
            "nmi": [n for n in nmis for _ in DAYS],
            "suffix": "E1",
            "read_date": DAYS * len(nmis),
            "interval_minutes": 30,
            "unit": "KWH",
            "values": [[value] * 48 for _ in nmis for _ in DAYS],
            "quality": "A" * 48,
            "update_datetime": update,
        }
    )
    path.write_text(nem12_text(df, created=CREATED), newline="")
    return path


@pytest.fixture
def load(tmp_path: Path) -> list[str]:
    """Four files of two NMIs each (value 1-4, updated 2 Apr), then a re-send of NMIs 0-3 with
    the same UpdateDateTime (value 5: the later file wins the tie) and one of NMIs 2-5 updated
    earlier (value 6, 1 Apr: loses everywhere). So NMIs 0-3 end at 5.0, 4-5 at 3.0, 6-7 at 4.0."""
    src = tmp_path / "src"
    src.mkdir()
    upd = dt.datetime(2024, 4, 2)
    files = [_file(src / f"f{i}.csv", NMIS[2 * i : 2 * i + 2], float(i + 1), upd) for i in range(4)]
    files.append(_file(src / "f4.csv", NMIS[:4], 5.0, upd))
    files.append(_file(src / "f5.csv", NMIS[2:6], 6.0, dt.datetime(2024, 4, 1)))
    return [str(f) for f in files]


def _settings(root: Path) -> Settings:
    return Settings(meter_store=str(root), output_url=str(root) + "-out", shards=4)


def _store_bytes(root: Path) -> dict[str, bytes]:
    """Every partition file's bytes by its path below the store (``interval/shard=…``)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "interval").rglob("*.parquet"))}


def _old_way(paths: list[str], settings: Settings) -> None:
    """The behaviour before runs: every file read-merged-rewritten into the store on its own."""
    for p in paths:
        name, data = member_bytes(Path(p))
        try:
            merge_register_days(parse_nem12(data, name), settings)
        except MdffError:
            continue


def test_tiny_and_huge_batches_and_the_old_way_give_the_same_bytes(load: list[str], tmp_path: Path) -> None:
    tiny, huge, old = (_settings(tmp_path / n) for n in ("tiny", "huge", "old"))
    # each file holds 2-4 NMIs × 91 days × 48 = 8,736-17,472 readings: a batch of 3,000 is full
    # after every file, so every partition gets a run from every file after the first
    many = ingest_nem12(load, tiny, batch_readings=3000)
    one = ingest_nem12(load, huge, batch_readings=10**12)
    _old_way(load, old)
    assert many.runs_written > 0 and one.runs_written == 0
    assert (
        _store_bytes(tmp_path / "tiny") == _store_bytes(tmp_path / "huge") == _store_bytes(tmp_path / "old")
    )
    assert not Path(staging_root(tiny)).exists()  # the runs are deleted once merged
    # hand check: every partition's final values by NMI (fixture docstring)
    got = pl.concat(
        pl.read_parquet(f) for f in sorted((tmp_path / "tiny" / "interval").rglob("data.parquet"))
    )
    by_nmi = got.group_by("nmi").agg(pl.col("values").list.first().unique(), pl.len()).sort("nmi")
    assert by_nmi["values"].to_list() == [[5.0]] * 4 + [[3.0]] * 2 + [[4.0]] * 2
    assert by_nmi["len"].to_list() == [91] * 8  # one row per register-day


def test_runs_merge_into_partitions_already_in_the_store(load: list[str], tmp_path: Path) -> None:
    """A second ingest into a non-empty store takes the run path for every partition: same bytes
    as merging the files one by one the old way."""
    new, old = _settings(tmp_path / "new"), _settings(tmp_path / "old")
    ingest_nem12(load[:3], new, batch_readings=3000)
    summary = ingest_nem12(load[3:], new, batch_readings=3000)
    _old_way(load, old)
    assert summary.runs_written > 0
    assert _store_bytes(tmp_path / "new") == _store_bytes(tmp_path / "old")


@needs_mdff
def test_example_files_same_bytes_as_the_old_way(tmp_path: Path) -> None:
    """Every NEM12 example file (the conformance set, zips included), in one ingest with runs
    forced after every file vs. merged file by file the old way."""
    src = tmp_path / "src"
    src.mkdir()
    paths = [str(shutil.copy(p, src / p.name)) for p in NEM12_FILES]
    new, old = _settings(tmp_path / "new"), _settings(tmp_path / "old")
    _old_way(paths, old)
    summary = ingest_nem12(paths, new, batch_readings=1)
    assert summary.runs_written > 0
    assert _store_bytes(tmp_path / "new") == _store_bytes(tmp_path / "old") != {}


def test_interrupted_ingest_leaves_a_readable_store_and_rerun_completes(
    load: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final merge fails on its third partition: the store's partitions are whole parquet
    files, the runs are deleted, and running the same ingest again gives a clean ingest's bytes."""
    clean, crashed = _settings(tmp_path / "clean"), _settings(tmp_path / "crashed")
    ingest_nem12(load, clean)
    calls = {"n": 0}
    real = ingest_store.merge_partition

    def failing(*args: object, **kwargs: object) -> str | None:
        calls["n"] += 1
        if calls["n"] == 4 * 3 + 3:  # 12 direct first writes (4 shards × 3 months), then 2 merges
            raise OSError("disk gone")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_store, "merge_partition", failing)
    with pytest.raises(OSError, match="disk gone"):
        ingest_nem12(load, crashed, batch_readings=3000)
    monkeypatch.setattr(ingest_store, "merge_partition", real)
    for f in (tmp_path / "crashed" / "interval").rglob("data.parquet"):
        assert pl.read_parquet(f).height > 0
    assert _store_bytes(tmp_path / "crashed") != _store_bytes(tmp_path / "clean")  # really cut short
    assert list_staged(crashed) == []
    ingest_nem12(load, crashed, batch_readings=3000)
    assert _store_bytes(tmp_path / "crashed") == _store_bytes(tmp_path / "clean")


def list_staged(settings: Settings) -> list[Path]:
    return sorted(p for p in Path(staging_root(settings)).rglob("*") if p.is_file())


def test_leftover_runs_of_a_killed_ingest_are_deleted_not_merged(load: list[str], tmp_path: Path) -> None:
    """A killed ingest cannot clean up: its runs (here a bogus one with other values) stay in
    the staging folder until the next ingest deletes them; they never reach the store."""
    settings, clean = _settings(tmp_path / "s"), _settings(tmp_path / "clean")
    ingest_nem12(load, clean)
    ingest_nem12(load[:1], settings)
    shard = shard_of(NMIS[0], 4)
    bogus = (
        Path(staging_root(settings))
        / "deadbeef"
        / f"shard={shard:03d}"
        / "month=2024-01"
        / "run-000001.arrow"
    )
    bogus.parent.mkdir(parents=True)
    pl.read_parquet(partition_url(settings, shard, "2024-01")).with_columns(
        pl.col("values").list.eval(pl.element() * 100)
    ).write_ipc(bogus)
    ingest_nem12(load, settings, batch_readings=3000)
    assert list_staged(settings) == []
    assert _store_bytes(tmp_path / "s") == _store_bytes(tmp_path / "clean")


def test_runs_on_s3_same_bytes_as_local(load: list[str], s3_bucket: str, tmp_path: Path) -> None:
    """The same load into a store on S3 (moto) with runs forced: every partition object holds the
    bytes of the local store's file, and no run is left under the staging prefix."""
    s3 = Settings(meter_store=f"{s3_bucket}/store", output_url=f"{s3_bucket}/out", shards=4)
    local = _settings(tmp_path / "local")
    summary = ingest_nem12(load, s3, batch_readings=3000)
    ingest_nem12(load, local)
    assert summary.runs_written > 0
    want = _store_bytes(tmp_path / "local")
    got = {
        url.split("/store/", 1)[1]: read_bytes(url, s3)
        for url in list_files(f"{s3_bucket}/store/interval", s3, suffix=".parquet")
    }
    assert got == want != {}
    assert list_files(staging_root(s3), s3) == []
