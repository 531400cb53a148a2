"""Sorted runs of an ingest waiting for their meter store partition (an external merge).

A NEM12 ingest that holds more than a batch of readings does not read-merge-rewrite store
partitions batch after batch (quadratic when every file touches every partition, e.g. an initial
load whose files each carry a batch of NMIs for a whole year). A partition's rows of a batch are
deduped and written as a *run*:
``{meter_store}/_staging/{ingest id}/shard=NNN/month=YYYY-MM/run-NNNNNN.arrow`` (Arrow IPC, LZ4: a
run is read back once, whole, by this process — IPC's write + read costs ≈ 0.8× parquet's and
≈ 0.4× uncompressed, which would need ≈ 3× the scratch disk); at the end each
partition is merged once — the store's rows, then its runs in file order, then the rows still
waiting — with the store's rule (``tasks.adapters.meter_store.merge_partition``) and its runs deleted.

A run is deduped with the store's rule before it is written: latest UpdateDateTime, then the
later row. That keeps each key's winner within the batch, and runs stay in file order, so the final
merge picks the same row as merging every file's rows in one go: the store's bytes do not depend
on the batch size. Runs live outside ``{meter_store}/interval`` (readers never see them) and are
scratch: written without fsync; a crash leaves the store's partitions old or new (each write is
atomic) and the runs behind, which the next ingest deletes (``clean_staging``) — re-running the
ingest finishes the job. A write killed between its temporary file and the rename leaves a
``.data.parquet.*.tmp`` beside the partition; the next ingest deletes those too (``storage.sweep_temporaries``). Two ingests into one store at once are not supported (nor were they).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import uuid
from pathlib import Path

import polars as pl

from tasks.adapters.meter_store import _normalise
from tasks.adapters.nem12 import dedupe_register_days
from tasks.adapters.storage import delete, is_s3, list_files, read_bytes, write_bytes_atomic
from tasks.settings import Settings, join_url

STAGING = "_staging"


def staging_root(settings: Settings) -> str:
    return join_url(settings.meter_store, STAGING)


def new_ingest_id() -> str:
    return uuid.uuid4().hex[:16]


def run_url(settings: Settings, ingest_id: str, shard: int, month: str, seq: int) -> str:
    return join_url(
        staging_root(settings), ingest_id, f"shard={shard:03d}", f"month={month}", f"run-{seq:06d}.arrow"
    )


def write_run(frames: list[pl.DataFrame], url: str, settings: Settings) -> int:
    """One batch's rows of a partition (file order), deduped and sorted, as a run; its row count."""
    run = dedupe_register_days(pl.concat(frames) if len(frames) > 1 else frames[0])
    buf = io.BytesIO()
    run.write_ipc(buf, compression="lz4")
    if is_s3(url):
        write_bytes_atomic(buf.getvalue(), url, settings)
    else:  # scratch: no fsync (a crash discards runs anyway)
        path = Path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.getvalue())
    return run.height


def read_runs(urls: list[str], settings: Settings) -> list[pl.DataFrame]:
    """The runs at ``urls`` in that order, in the store's columns."""
    return [_normalise(pl.read_ipc(io.BytesIO(read_bytes(u, settings)))) for u in urls]


def delete_runs(urls: list[str], settings: Settings) -> None:
    delete(urls, settings)


def clean_staging(settings: Settings, ingest_id: str | None = None) -> int:
    """Delete the runs of one ingest (or of every earlier, interrupted one); the number of files."""
    root = staging_root(settings) if ingest_id is None else join_url(staging_root(settings), ingest_id)
    urls = list_files(root, settings)
    if urls:
        delete(urls, settings)
    if not is_s3(root):
        shutil.rmtree(root, ignore_errors=True)
        with contextlib.suppress(OSError):  # the staging folder itself, once empty
            Path(staging_root(settings)).rmdir()
    return len(urls)
