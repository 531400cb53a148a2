"""A month end over a meter store with a pending daily delivery (a delta beside its partition, issue
14) books what it books over the store that merged the delivery, and compacts the store first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from flows.fingerprints import source_fingerprints
from tasks.adapters.ingest import ingest_nem12
from tasks.adapters.meter_store import list_partitions, parquet_bytes
from tasks.adapters.nem12_write import nem12_text
from tasks.pipeline.sinks import summary_rows
from tasks.pipeline.spec import resolve_run
from tasks.settings import Settings
from tests.flows.conftest import R, copy_of, output_digests, run_monthly

pytestmark = pytest.mark.usefixtures("harness")

LAST_DAY = R - dt.timedelta(days=1)  # 31 Oct 2026: delivered the morning of the run date


def _last_day_out(settings: Settings, work: Path) -> Path:
    """Take 31 Oct out of the store (as it was the evening before); the MDPs' daily file of it."""
    store = Path(settings.meter_store)
    parts = sorted(store.glob(f"interval/*/month={LAST_DAY:%Y-%m}/data.parquet"))
    day = pl.concat([pl.read_parquet(p).filter(pl.col("read_date") == LAST_DAY) for p in parts])
    for p in parts:
        p.write_bytes(parquet_bytes(pl.read_parquet(p).filter(pl.col("read_date") != LAST_DAY)))
    path = work / f"NEM12_{LAST_DAY:%Y%m%d}.csv"
    path.write_text(nem12_text(day, created=dt.datetime(2026, 11, 1, 3)), newline="")
    return path


def test_month_end_over_pending_deltas_books_the_same_as_over_the_merged_store(
    loaded: Path, tmp_path: Path
) -> None:
    deltas = copy_of(loaded, tmp_path / "deltas")
    merged = copy_of(loaded, tmp_path / "merged", store_max_deltas=0)
    spec = resolve_run(deltas, R)
    assert ingest_nem12([str(_last_day_out(merged, tmp_path))], merged).deltas_written == 0
    daily = _last_day_out(deltas, tmp_path)
    before = source_fingerprints(spec, deltas)["meter_data"]
    assert ingest_nem12([str(daily)], deltas).deltas_written == 4  # one per shard: 4 shards
    # the deltas change the source fingerprint of every shard (a cached run would not see them otherwise)
    after = source_fingerprints(spec, deltas)["meter_data"]
    assert all(a != b for a, b in zip(after, before, strict=True))

    ref, run = run_monthly(merged), run_monthly(deltas)
    assert ref.error is None and run.error is None, (ref.error, run.error)
    assert not any(p.deltas for p in list_partitions(deltas).values())  # compacted by the run
    assert output_digests(deltas) == output_digests(merged) != {}
    assert summary_rows(deltas.db_url, R) == summary_rows(merged.db_url, R) != []
    # compacted, the store holds the bytes of the merged one
    files = lambda s: {p.relative_to(s): p.read_bytes() for p in sorted(s.rglob("*.parquet"))}  # noqa: E731
    assert files(Path(deltas.meter_store)) == files(Path(merged.meter_store))
