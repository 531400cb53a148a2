"""The meter store side of a NEM12 ingest: each parsed file split by partition (shard, month), and
the writer that batches register-days and writes, stages and merges partitions."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from tasks.adapters.ingest_files import IngestSummary
from tasks.adapters.ingest_staging import (
    clean_staging,
    delete_runs,
    new_ingest_id,
    read_runs,
    run_url,
    write_run,
)
from tasks.adapters.meter_deltas import delta_fits, write_delta
from tasks.adapters.meter_store import (
    DELTA_PREFIX,
    Partition,
    check_shards,
    list_partitions,
    merge_partition,
    split_partitions,
)
from tasks.adapters.nem12 import parse_nem12
from tasks.settings import Settings

WRITE_THREADS = 2  # partitions serialised and written at once (pyarrow and fsync release the GIL)


@dataclass(frozen=True)
class _Parts:
    """One NEM12 file's register-days split by meter store partition (shard, month).
    ``superseded``: register-days and readings the producer already dropped as losers of the
    store's dedupe (the generator's batches); counted as read, as an ingest of the files counts them."""

    register_days: int
    parts: dict[tuple[int, str], pl.DataFrame]
    readings: dict[tuple[int, str], int]
    superseded: tuple[int, int] = (0, 0)


def parts_of(frame: pl.DataFrame, shards: int, superseded: tuple[int, int] = (0, 0)) -> _Parts:
    """Register-day rows (one file's, or the generator's: ``tasks.generate.store_out``) by partition."""
    parts = split_partitions(frame, shards)
    readings = {k: int(p["values"].list.len().sum() or 0) for k, p in parts.items()}
    return _Parts(frame.height, parts, readings, superseded)


def _parse_parts(shards: int, max_line_bytes: int) -> Callable[[bytes, str], _Parts]:
    def parse(data: bytes, name: str) -> _Parts:
        return parts_of(parse_nem12(data, name, max_line_bytes), shards)

    return parse


class _StoreWriter:
    """Register-days waiting for their partition, written on ``WRITE_THREADS``.

    When the rows waiting reach ``batch_readings``, every partition the latest file did not
    touch is written (files usually come a month or an NMI range at a time, so a partition the
    latest file touched is likely to get more rows from the next files); if the rest still holds
    ``batch_readings``, it is written too. A partition that is not in the store yet and has no
    run is written to the store directly (nothing to read back); any other is written as a sorted
    run to the staging folder (``tasks.adapters.ingest_staging``), and ``close`` merges each partition
    with runs once: store rows + runs + rows still waiting. So no partition is read and rewritten
    batch after batch (that was quadratic in the input when every file touches every partition).
    At ``close``, the rows of a partition that was in the store before this ingest go to a delta
    beside it when they are few (``tasks.adapters.meter_deltas``: a daily delivery), else they are
    merged with its deltas folded in.
    Memory: at most one batch waiting, one being written and a few files; at the end, one
    partition per writer thread. A flush first waits for the previous one, so no partition is ever
    written by two threads at once.
    """

    def __init__(
        self, settings: Settings, batch_readings: int, summary: IngestSummary, stage_all: bool = False
    ) -> None:
        self.settings, self.batch_readings, self.summary = settings, batch_readings, summary
        # every flush goes to runs, even a partition's first: for callers whose every batch touches
        # every partition (the generator), where a first write would be read back and rewritten
        self.stage_all = stage_all
        self.pending: dict[tuple[int, str], list[pl.DataFrame]] = {}
        self.pending_readings: dict[tuple[int, str], int] = {}
        self.writing: list[Future[str | None]] = []
        self.pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="bua-write")
        self.in_store: set[tuple[int, str]] | None = None  # partitions in the store (listed once)
        self.existing: dict[tuple[int, str], Partition] = {}  # ... as they were before this ingest
        self.runs: dict[tuple[int, str], list[str]] = {}
        self.ingest_id = new_ingest_id()

    def add(self, parsed: _Parts) -> None:
        for key, part in parsed.parts.items():
            self.pending.setdefault(key, []).append(part)
            self.pending_readings[key] = self.pending_readings.get(key, 0) + parsed.readings[key]
        if sum(self.pending_readings.values()) >= self.batch_readings:
            self.flush(keep=set(parsed.parts))
            if sum(self.pending_readings.values()) >= self.batch_readings:
                self.flush()

    def _start(self) -> set[tuple[int, str]]:
        if self.in_store is None:
            check_shards(self.settings, create=True)
            clean_staging(self.settings)  # runs an interrupted ingest left behind
            self.existing = {k: p for k, p in list_partitions(self.settings).items() if p.data}
            self.in_store = set(self.existing)
        return self.in_store

    def flush(self, keep: set[tuple[int, str]] | frozenset[tuple[int, str]] = frozenset()) -> None:
        self.wait()
        in_store = self._start()
        for key in sorted(k for k in self.pending if k not in keep):
            frames = self.pending.pop(key)
            del self.pending_readings[key]
            if key not in in_store and key not in self.runs and not self.stage_all:
                in_store.add(key)
                new = pl.concat(frames) if len(frames) > 1 else frames[0]
                self.writing.append(self.pool.submit(merge_partition, new, self.settings, *key))
            else:
                runs = self.runs.setdefault(key, [])
                runs.append(run_url(self.settings, self.ingest_id, *key, len(runs) + 1))
                self.writing.append(self.pool.submit(self._write_run, frames, runs[-1]))
                self.summary.runs_written += 1

    def _write_run(self, frames: list[pl.DataFrame], url: str) -> None:
        write_run(frames, url, self.settings)

    def _merge_runs(self, key: tuple[int, str], urls: list[str], frames: list[pl.DataFrame]) -> str | None:
        written = self._deliver(key, read_runs(urls, self.settings) + frames)
        delete_runs(urls, self.settings)
        return written

    def _deliver(self, key: tuple[int, str], frames: list[pl.DataFrame]) -> str | None:
        """The partition's last rows of this ingest: a delta when the partition was in the store
        and they are few, else merged (the partition's deltas folded in)."""
        new = pl.concat(frames) if len(frames) > 1 else frames[0]
        part = self.existing.get(key)
        if part is not None and delta_fits(part, new.height, self.settings):
            return write_delta(new, part, self.ingest_id, self.settings)
        return merge_partition(new, self.settings, *key, deltas=part.deltas if part else ())

    def wait(self) -> None:
        writing, self.writing = self.writing, []
        for fut in writing:
            if (url := fut.result()) is None:
                continue
            if url.rsplit("/", 1)[-1].startswith(DELTA_PREFIX):
                self.summary.deltas_written += 1
            else:
                self.summary.partitions_written += 1

    def close(self) -> None:
        try:
            self.wait()
            if self.pending or self.runs:
                self._start()
            for key in sorted(set(self.pending) | set(self.runs)):
                frames = self.pending.pop(key, [])
                if key in self.runs:  # store rows + runs + rows still waiting, merged once
                    self.writing.append(self.pool.submit(self._merge_runs, key, self.runs.pop(key), frames))
                else:
                    self.writing.append(self.pool.submit(self._deliver, key, frames))
            self.pending_readings.clear()
            self.wait()
            if self.in_store is not None:
                clean_staging(self.settings, self.ingest_id)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Stop writing; the store holds old or new partitions, the runs are deleted."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        try:
            if self.in_store is not None:
                clean_staging(self.settings, self.ingest_id)
        except OSError:  # the next ingest deletes them
            pass
