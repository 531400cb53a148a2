"""Deltas of the meter store: a small delivery into an existing partition, and compaction.

MDPs send a NEM12 file every day with one day for many NMIs: each file touches the current month
partition of every shard. Merging it (``meter_store.merge_partition``) rewrites the whole month of
every shard to add one day (164 MB of a 2 GB store for 42k NMIs, bench/daily_delivery.py). Instead
an ingest whose rows for an existing partition are few writes them beside it as a *delta*:
``shard=NNN/month=YYYY-MM/delta-{seq:06d}-{ingest id}.parquet`` (atomically, fsync'd like the
partition), the rows deduped and sorted like a partition. ``seq`` is one more than the
partition's last delta, so the file names sort in ingest order.

A delta is written when the partition holds fewer than ``store_max_deltas`` deltas and its deltas'
register-days with the new ones stay under ``store_delta_fraction`` of the partition's; otherwise
the ingest merges as before, folding the deltas in (``merge_partition(..., deltas=)``): so a
partition's deltas stay small next to it and a month partition is rewritten a handful of times a
month, not daily. A delivery that changes nothing (the same file again, or older updates) writes
no delta: its register-days are compared with the partition's (deltas folded) first.

Compaction (``compact_store``; ``bua meter compact``; the month end's first step, flows/monthly.py)
folds every partition's deltas into it: the partition is rewritten with the same bytes as if each
delta had been merged at its ingest (same rule, same order, same writer), then the deltas are
deleted. A kill before the rename leaves the old partition and its deltas; after it, the new
partition and deltas already folded in, which folding again leaves unchanged (meter_store's module
docstring); so re-running is always safe. Readers fold deltas on read meanwhile
(``meter_store.partition_scan``). Like ingests, compaction must not run while an ingest writes to
the same store.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import polars as pl

from tasks.adapters.meter_store import (
    DELTA_PREFIX,
    SORT_KEY,
    Partition,
    check_shards,
    fold,
    list_partitions,
    merge_partition,
    parquet_bytes,
)
from tasks.adapters.nem12 import REGISTER_DAY_SCHEMA
from tasks.adapters.storage import scan_parquet, size, write_bytes_atomic
from tasks.settings import Settings, join_url

COMPACT_THREADS = 2  # partitions folded at once (pyarrow and fsync release the GIL)


def delta_url(part: Partition, ingest_id: str) -> str:
    assert part.data is not None
    seq = 1 + max((int(u.rsplit("/", 1)[-1].split("-")[1]) for u in part.deltas), default=0)
    return join_url(part.data.rsplit("/", 1)[0], f"{DELTA_PREFIX}{seq:06d}-{ingest_id}.parquet")


def _rows(urls: list[str], settings: Settings) -> int:
    """Rows of parquet files from their footers (no data read)."""
    if not urls:
        return 0
    return int(scan_parquet(urls, settings, hive_partitioning=False).select(pl.len()).collect().item())


def delta_fits(part: Partition, new_rows: int, settings: Settings) -> bool:
    """Whether ``new_rows`` register-days go to a delta of ``part`` (else the ingest folds)."""
    if part.data is None or len(part.deltas) >= settings.store_max_deltas:
        return False
    pending = _rows(list(part.deltas), settings) + new_rows
    return pending < settings.store_delta_fraction * _rows([part.data], settings)


def _current(part: Partition, delta: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """The partition's rows (deltas folded) of the register-days in ``delta``, sorted. Only the
    delta's days are read (the filter is pushed into the scan)."""
    days = delta.get_column("read_date").unique().implode()
    urls = [u for u in (part.data, *part.deltas) if u is not None]
    frames = [
        scan_parquet(u, settings, hive_partitioning=False).filter(pl.col("read_date").is_in(days)).collect()
        for u in urls
    ]
    keys = delta.select(SORT_KEY)
    return fold(frames).join(keys, on=list(SORT_KEY), how="semi").sort(list(SORT_KEY)).rechunk()


def _changes(part: Partition, delta: pl.DataFrame, settings: Settings) -> bool:
    """Whether folding ``delta`` into the partition would change it. A register-day the partition
    lacks (the usual daily file: a new day) is found from the key columns alone; only a delivery
    of days already held reads the rows to compare them."""
    days = delta.get_column("read_date").unique().implode()
    urls = [u for u in (part.data, *part.deltas) if u is not None]
    held = pl.concat(
        [
            scan_parquet(u, settings, hive_partitioning=False)
            .select(SORT_KEY)
            .filter(pl.col("read_date").is_in(days))
            .collect()
            for u in urls
        ]
    )
    if delta.select(SORT_KEY).join(held, on=list(SORT_KEY), how="anti").height:
        return True
    current = _current(part, delta, settings)
    return not fold([current, delta]).equals(current)


def write_delta(new: pl.DataFrame, part: Partition, ingest_id: str, settings: Settings) -> str | None:
    """Write rows of one partition (file order) as its next delta; its URL, or None when they
    would change nothing (every register-day already holds them, or a later update)."""
    delta = fold([new])
    if not _changes(part, delta, settings):
        return None
    url = delta_url(part, ingest_id)
    write_bytes_atomic(parquet_bytes(delta), url, settings)
    return url


@dataclass
class CompactSummary:
    """What ``compact_store`` did: partitions folded, deltas deleted, partitions rewritten, bytes."""

    partitions: int = 0
    deltas: int = 0
    rewritten: list[str] = field(default_factory=list)
    bytes_written: int = 0

    def line(self) -> str:
        return (
            f"compacted {self.partitions} partitions: {self.deltas} deltas folded, "
            f"{len(self.rewritten)} partitions rewritten ({self.bytes_written / 1e6:.1f} MB)"
        )


def compact_store(settings: Settings, shard: int | None = None) -> CompactSummary:
    """Fold every partition's deltas into it (or one shard's); idempotent, safe to re-run after a kill."""
    summary = CompactSummary()
    check_shards(settings, create=False)
    parts = [p for p in list_partitions(settings, shard).values() if p.deltas]
    with ThreadPoolExecutor(max_workers=COMPACT_THREADS, thread_name_prefix="bua-compact") as pool:
        futures = [pool.submit(_compact, p, settings) for p in parts]
        for part, fut in zip(parts, futures, strict=True):
            url = fut.result()
            summary.partitions += 1
            summary.deltas += len(part.deltas)
            if url is not None:
                summary.rewritten.append(url)
                summary.bytes_written += size(url, settings)
    return summary


def _compact(part: Partition, settings: Settings) -> str | None:
    return merge_partition(
        pl.DataFrame(schema=REGISTER_DAY_SCHEMA), settings, part.shard, part.month, part.deltas
    )
