"""Meter data ingest: find the input files, read each one whole or reject it, load what is good.

Sources are files, folders (every file below, sorted), zip archives (every member, including
archives with several members) and ``s3://`` prefixes, taken in the order given. Each file (or
zip member) is read whole by ``tasks.adapters.nem12``/``tasks.adapters.nem13``; a malformed one is
rejected whole and COPIED to the quarantine as ``{sha256[:16]}-{name}`` (the first 16 hex digits of
its bytes' SHA-256; a zip member as ``{hash}-{zip name}!{member}`` with the member's bytes) plus
``….reason.txt`` with every ``file:line: reason``; the source is never moved or deleted, so two
bad files of one name from two folders both keep their bytes; the others go on. Caps are checked
before reading: a file over ``ingest_max_file_bytes`` is not read (nor copied: it stays where it
is; the reason is ``unread-{sha256(path)[:16]}-{name}.reason.txt``); a zip member declaring more
than that, or a compression ratio over ``ingest_max_zip_ratio``, is not extracted (the archive's
bytes are kept, the reason is ``{hash}-{zip name}!{member}.reason.txt``). zipfile never inflates
a member past its declared size (a lying header ends in a CRC error: the archive is rejected).

NEM12 register-days wait in batches of about ``batch_readings`` readings, so interval data never
sits whole in memory; a full batch's partitions go to the store when new there, else to sorted runs
merged once per partition at the end (``tasks.adapters.ingest_staging``: linear in the input). Every
partition write is atomic and re-ingesting is idempotent, so an interrupted ingest is finished by
running it again; the next NEM12 ingest also deletes the ``.*.tmp`` files a killed write left in
the store (``storage.sweep_temporaries``). NEM13 reads
go to ``basic_read``; reads of NMIs/registers the database does not know go to
``{rejects}/{file}.rejects.csv`` (``rejects`` is the quarantine's sibling folder) with a reason.

Layout: the files, caps, quarantine and summary in ``ingest_files``; the partition writer in
``ingest_store``; here the parse pool and the two ingests (every moved name is re-exported).
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import polars as pl

from tasks.adapters.ingest_files import (
    ZIP_MAGIC,
    IngestSummary,
    Rejected,
    SourceError,
    Unit,
    _is_other_version,
    discover,
    quarantine,
    rejects_root,
    units,
)
from tasks.adapters.ingest_store import WRITE_THREADS, _parse_parts, _Parts, _StoreWriter
from tasks.adapters.mdff import MdffError, decode
from tasks.adapters.storage import sweep_temporaries, write_bytes_atomic
from tasks.settings import Settings, join_url

__all__ = [
    "PARSE_AHEAD",
    "PARSE_THREADS",
    "RegisterDayLoader",
    "WRITE_THREADS",
    "ZIP_MAGIC",
    "IngestSummary",
    "Rejected",
    "SourceError",
    "Unit",
    "discover",
    "ingest_nem12",
    "ingest_nem13",
    "quarantine",
    "rejects_root",
    "units",
]

PARSE_THREADS = 2  # two files parsed at once: measured 3.9-4.1 s -> 2.9-3.1 s wall on the bench, same CPU (docs/NEM12-CONFORMANCE.md)
PARSE_AHEAD = 4  # files parsed ahead of the consumer (bounds memory)
T = TypeVar("T")


def _each_parsed(
    paths: list[str], settings: Settings, summary: IngestSummary, parse: Callable[[bytes, str], T]
) -> Iterator[T]:
    """Parsed files in file order; rejected files quarantined on the way.

    Files are parsed on ``PARSE_THREADS`` threads (polars releases the GIL), at most
    ``PARSE_AHEAD`` files ahead of the consumer, so memory holds a bounded number of files and
    parsing goes on while the consumer waits for its partition writes.
    """

    def job(unit: Unit) -> T | MdffError:
        try:
            return parse(unit.data, unit.name)
        except MdffError as exc:
            return exc

    def outcome(unit: Unit, result: T | MdffError) -> T | None:
        if isinstance(result, MdffError):
            summary.rejected.append(quarantine(unit, result.report(), settings))
            return None
        summary.accepted += 1
        return result

    in_flight: deque[tuple[Unit, Future[T | MdffError]]] = deque()
    with ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="bua-parse") as pool:
        for url in discover(paths, settings):
            for unit in units(url, settings):
                summary.files += 1
                if isinstance(unit, Rejected):
                    summary.rejected.append(unit)
                    continue
                if _is_other_version(unit.data, summary.kind):
                    summary.files -= 1
                    summary.skipped.append(unit.name)
                    continue
                in_flight.append((unit, pool.submit(job, unit)))
                while len(in_flight) > PARSE_AHEAD:
                    done, fut = in_flight.popleft()
                    if (parsed := outcome(done, fut.result())) is not None:
                        yield parsed
        while in_flight:
            done, fut = in_flight.popleft()
            if (parsed := outcome(done, fut.result())) is not None:
                yield parsed


class RegisterDayLoader:
    """Register-days merged into the meter store as ``ingest_nem12`` merges parsed files: ``add``
    them in file order (``tasks.adapters.ingest_store.parts_of``), then ``close`` (or ``abort``).
    ``ingest_nem12`` feeds it parsed NEM12 files; ``bua generate --store`` the generator's rows.
    ``stage_all``: no partition is written before ``close`` (every batch goes to sorted runs), for
    a caller whose every batch touches every partition."""

    def __init__(self, settings: Settings, batch_readings: int = 6_000_000, stage_all: bool = False) -> None:
        self.summary = IngestSummary("nem12")
        sweep_temporaries(settings.meter_store, settings)  # left by a killed write (a killed ingest)
        self.writer = _StoreWriter(settings, batch_readings, self.summary, stage_all)

    def add(self, parsed: _Parts) -> None:
        self.summary.register_days += parsed.register_days + parsed.superseded[0]
        self.summary.readings += sum(parsed.readings.values()) + parsed.superseded[1]
        self.writer.add(parsed)

    def close(self) -> IngestSummary:
        self.writer.close()
        return self.summary

    def abort(self) -> None:
        self.writer.abort()  # partitions written so far are whole; this ingest's runs are deleted


def ingest_nem12(paths: list[str], settings: Settings, batch_readings: int = 6_000_000) -> IngestSummary:
    """Read NEM12 files and merge them into the meter store, about ``batch_readings`` at a time.

    Parsing (``PARSE_THREADS``) and partition writes (``WRITE_THREADS``) overlap; the store ends
    the same whatever the batch size or thread timing (each partition merges its rows in file
    order, and partitions are independent).
    """
    loader = RegisterDayLoader(settings, batch_readings)
    parse = _parse_parts(settings.shards, settings.ingest_max_line_bytes)
    try:
        for parsed in _each_parsed(paths, settings, loader.summary, parse):
            loader.add(parsed)
        return loader.close()
    except BaseException:
        loader.abort()
        raise


def ingest_nem13(paths: list[str], settings: Settings) -> IngestSummary:
    """Read NEM13 files into ``basic_read``; unknown NMIs/registers go to a rejects file."""
    from tasks.adapters.db import require_tables
    from tasks.adapters.nem13 import (
        basic_reads,
        lookup_registers,
        parse_nem13,
        resolve_registers,
        write_basic_reads,
    )

    require_tables(settings.db_url, ["site", "meter", "meter_register", "basic_read"])
    summary = IngestSummary("nem13")
    cap = settings.ingest_max_line_bytes
    frames = list(
        _each_parsed(paths, settings, summary, lambda data, name: parse_nem13(decode(data), name, cap))
    )
    if not frames:
        return summary
    reads = basic_reads(pl.concat(frames))
    matched, unknown = resolve_registers(reads, lookup_registers(settings.db_url))
    counts = write_basic_reads(settings.db_url, matched)
    summary.reads = reads.height
    summary.reads_inserted, summary.reads_replaced, summary.reads_unchanged = (
        counts["inserted"],
        counts["replaced"],
        counts["unchanged"],
    )
    summary.reads_older = counts.get("older", 0)
    summary.unknown_reads = unknown.height
    for (source,), part in (
        unknown.sort("source_file", "source_line").partition_by(["source_file"], as_dict=True).items()
    ):
        url = join_url(rejects_root(settings), f"{str(source).replace('/', '_')}.rejects.csv")
        buf = io.BytesIO()
        part.select(
            "source_file",
            "source_line",
            "nmi",
            "suffix",
            "register_id",
            "serial",
            "read_date",
            "index_value",
            "quality",
            "reason",
        ).write_csv(buf)
        write_bytes_atomic(buf.getvalue(), url, settings)
        summary.rejects_files.append(url)
    return summary
