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
the store (``clean_tmp_files``). NEM13 reads
go to ``basic_read``; reads of NMIs/registers the database does not know go to
``{rejects}/{file}.rejects.csv`` (``rejects`` is the quarantine's sibling folder) with a reason.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import polars as pl

from tasks.adapters.ingest_staging import (
    clean_staging,
    clean_tmp_files,
    delete_runs,
    new_ingest_id,
    read_runs,
    run_url,
    write_run,
)
from tasks.adapters.meter_store import check_shards, interval_root, merge_partition, split_partitions
from tasks.adapters.nem12 import MdffError, cut_text, decode, parse_nem12
from tasks.adapters.storage import exists, is_s3, list_files, read_bytes, size, write_bytes_atomic
from tasks.settings import Settings, join_url

ZIP_MAGIC = b"PK\x03\x04"
PARSE_THREADS = 2  # two files parsed at once: measured 3.9-4.1 s -> 2.9-3.1 s wall on the bench, same CPU (docs/NEM12-CONFORMANCE.md)
PARSE_AHEAD = 4  # files parsed ahead of the consumer (bounds memory)
WRITE_THREADS = 2  # partitions serialised and written at once (pyarrow and fsync release the GIL)
T = TypeVar("T")


class SourceError(ValueError):
    """A path given to ingest does not exist (a usage error, not a data problem)."""


@dataclass(frozen=True)
class Unit:
    """One file to read: a plain file, or one member of a zip archive."""

    name: str  # file name, or "archive.zip!member"
    url: str  # where the file or archive is
    member: str | None
    data: bytes


@dataclass
class Rejected:
    name: str
    reason: str
    quarantined_as: str


@dataclass
class IngestSummary:
    kind: str
    files: int = 0
    accepted: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    register_days: int = 0
    readings: int = 0
    partitions_written: int = 0
    runs_written: int = 0
    reads: int = 0
    reads_inserted: int = 0
    reads_replaced: int = 0
    reads_unchanged: int = 0
    reads_older: int = 0  # NEM13 reads not stored: the stored read of that day is a later update
    unknown_reads: int = 0
    rejects_files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"{self.kind}: {self.files} file(s) read, {self.accepted} accepted, {len(self.rejected)} rejected"
            + (f", {len(self.skipped)} skipped" if self.skipped else "")
        ]
        other = "nem13" if self.kind == "nem12" else "nem12"
        out += [
            f"skipped {name}: a {other.upper()} file (load it with `bua ingest {other}`)"
            for name in self.skipped
        ]
        if self.kind == "nem12":
            out.append(
                f"meter store: {self.register_days} register-days ({self.readings} readings), {self.partitions_written} partition write(s)"
                + (f" ({self.runs_written} sorted run(s) staged and merged)" if self.runs_written else "")
            )
        else:
            out.append(
                f"basic_read: {self.reads} read(s): {self.reads_inserted} inserted, {self.reads_replaced} replaced, {self.reads_unchanged} unchanged"
                + (
                    f", {self.reads_older} older than the stored update (kept out)"
                    if self.reads_older
                    else ""
                )
            )
            if self.unknown_reads:
                out.append(
                    f"{self.unknown_reads} read(s) of NMIs/registers unknown to the database written to {', '.join(self.rejects_files)}"
                )
        out += [
            f"rejected {r.name} (kept as {r.quarantined_as}):\n  " + r.reason.strip().replace("\n", "\n  ")
            for r in self.rejected
        ]
        return out


def discover(paths: list[str], settings: Settings) -> list[str]:
    """Every file named by ``paths`` (folders and s3:// prefixes expanded, sorted within each)."""
    found: list[str] = []
    for p in paths:
        if is_s3(p):
            files = list_files(p, settings)
        else:
            if not Path(p).exists():
                raise SourceError(f"no such file or folder: {p}")
            files = list_files(p, settings)
        if not files:
            raise SourceError(f"no files at {p}")
        found += [f for f in files if not f.endswith(".reason.txt")]
    return found


def _base(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def units(url: str, settings: Settings) -> Iterator[Unit | Rejected]:
    """The readable units of one file: itself, or each member of a zip archive (a file over the size
    cap is rejected before it is read, a member over the size or ratio caps from its header)."""
    if (n := size(url, settings)) > settings.ingest_max_file_bytes:
        yield _too_big(url, n, settings)
        return
    data = read_bytes(url, settings)
    if not data.startswith(ZIP_MAGIC):
        yield Unit(_base(url), url, None, data)
        return
    archive_unit = Unit(_base(url), url, None, data)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if not members:
                yield quarantine(archive_unit, f"{_base(url)}:0: zip archive has no files\n", settings)
            for m in members:
                if too_big := _over_caps(m, settings):
                    name = f"{_base(url)}!{cut_text(m.filename)}"
                    yield quarantine(archive_unit, f"{name}:0: {too_big}\n", settings, member=m.filename)
                    continue
                yield Unit(f"{_base(url)}!{m.filename}", url, m.filename, archive.read(m))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        yield quarantine(
            archive_unit, f"{_base(url)}:0: not a readable zip archive ({cut_text(str(exc))})\n", settings
        )


def _too_big(url: str, n: int, settings: Settings) -> Rejected:
    """A file over the size cap: not read, so not copied (it stays where it is); the reason file
    is ``unread-{sha256(url)[:16]}-{name}.reason.txt``."""
    name = _base(url)
    report = (
        f"{name}:0: file is {n} bytes, over the cap of {settings.ingest_max_file_bytes} "
        "(BUA_INGEST_MAX_FILE_BYTES); not read\n"
    )
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    reason_url = join_url(settings.quarantine(), f"unread-{digest}-{_safe_name(name)}.reason.txt")
    write_bytes_atomic(report.encode(), reason_url, settings)
    return Rejected(name, report, url)


def _over_caps(member: zipfile.ZipInfo, settings: Settings) -> str | None:
    """Why a zip member is not extracted (its declared sizes over the caps), or None."""
    size, packed = member.file_size, member.compress_size
    if size > settings.ingest_max_file_bytes:
        return (
            f"zip member declares {size} bytes uncompressed, over the cap of "
            f"{settings.ingest_max_file_bytes} (BUA_INGEST_MAX_FILE_BYTES); not extracted"
        )
    if size > settings.ingest_max_zip_ratio * max(packed, 1):
        return (
            f"zip member declares {size} bytes from {packed} compressed, a ratio over "
            f"{settings.ingest_max_zip_ratio:g} (BUA_INGEST_MAX_ZIP_RATIO); not extracted"
        )
    return None


def _safe_name(name: str) -> str:
    """A file name for the quarantine: no folder separators, at most 200 bytes."""
    return name.replace("/", "_").replace("\\", "_").encode()[:200].decode(errors="ignore")


def quarantine(unit: Unit, report: str, settings: Settings, member: str | None = None) -> Rejected:
    """Copy the rejected bytes to the quarantine as ``{sha256[:16]}-{name}`` with the reason beside
    them; the source is left where it is. ``member``: a zip member rejected unread — the archive
    (``unit``) is kept and the reason file is named after the member."""
    digest = hashlib.sha256(unit.data).hexdigest()[:16]
    dst = join_url(settings.quarantine(), f"{digest}-{_safe_name(unit.name)}")
    if not exists(dst, settings):  # the same hash and name: the same bytes are there already
        write_bytes_atomic(unit.data, dst, settings)
    reason_url = (f"{dst}!{_safe_name(member)}" if member is not None else dst) + ".reason.txt"
    write_bytes_atomic(report.encode(), reason_url, settings)
    name = unit.name if member is None else f"{unit.name}!{cut_text(member)}"
    return Rejected(name, report, dst)


def rejects_root(settings: Settings) -> str:
    q = settings.quarantine().rstrip("/")
    parent = q.rsplit("/", 1)[0] if "/" in q.removeprefix("s3://") else "."
    return join_url(parent, "rejects")


def _is_other_version(data: bytes, kind: str) -> bool:
    """True for a file whose 100 record names the other MDFF version (NEM13 given to nem12 …):
    it is left where it is, not rejected, so one folder can hold both kinds."""
    other = b"NEM13" if kind == "nem12" else b"NEM12"
    head = data[:200].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"100,") and head.split(b",", 2)[1].strip().upper() == other


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


@dataclass(frozen=True)
class _Parts:
    """One NEM12 file's register-days split by meter store partition (shard, month)."""

    register_days: int
    parts: dict[tuple[int, str], pl.DataFrame]
    readings: dict[tuple[int, str], int]


def _parse_parts(shards: int, max_line_bytes: int) -> Callable[[bytes, str], _Parts]:
    def parse(data: bytes, name: str) -> _Parts:
        frame = parse_nem12(data, name, max_line_bytes)
        parts = split_partitions(frame, shards)
        readings = {k: int(p["values"].list.len().sum() or 0) for k, p in parts.items()}
        return _Parts(frame.height, parts, readings)

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
    Memory: at most one batch waiting, one being written and a few files; at the end, one
    partition per writer thread. A flush first waits for the previous one, so no partition is ever
    written by two threads at once.
    """

    def __init__(self, settings: Settings, batch_readings: int, summary: IngestSummary) -> None:
        self.settings, self.batch_readings, self.summary = settings, batch_readings, summary
        self.pending: dict[tuple[int, str], list[pl.DataFrame]] = {}
        self.pending_readings: dict[tuple[int, str], int] = {}
        self.writing: list[Future[str | None]] = []
        self.pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="bua-write")
        self.in_store: set[tuple[int, str]] | None = None  # partitions in the store (listed once)
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
            self.in_store = set()
            for url in list_files(interval_root(self.settings), self.settings, suffix="data.parquet"):
                shard, month = url.rstrip("/").split("/")[-3:-1]
                if shard.startswith("shard=") and month.startswith("month="):
                    self.in_store.add((int(shard.removeprefix("shard=")), month.removeprefix("month=")))
        return self.in_store

    def flush(self, keep: set[tuple[int, str]] | frozenset[tuple[int, str]] = frozenset()) -> None:
        self.wait()
        in_store = self._start()
        for key in sorted(k for k in self.pending if k not in keep):
            frames = self.pending.pop(key)
            del self.pending_readings[key]
            if key not in in_store and key not in self.runs:
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
        rows = read_runs(urls, self.settings) + frames
        written = merge_partition(pl.concat(rows) if len(rows) > 1 else rows[0], self.settings, *key)
        delete_runs(urls, self.settings)
        return written

    def wait(self) -> None:
        writing, self.writing = self.writing, []
        for fut in writing:
            if fut.result() is not None:
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
                    new = pl.concat(frames) if len(frames) > 1 else frames[0]
                    self.writing.append(self.pool.submit(merge_partition, new, self.settings, *key))
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


def ingest_nem12(paths: list[str], settings: Settings, batch_readings: int = 6_000_000) -> IngestSummary:
    """Read NEM12 files and merge them into the meter store, about ``batch_readings`` at a time.

    Parsing (``PARSE_THREADS``) and partition writes (``WRITE_THREADS``) overlap; the store ends
    the same whatever the batch size or thread timing (each partition merges its rows in file
    order, and partitions are independent).
    """
    summary = IngestSummary("nem12")
    clean_tmp_files(settings.meter_store)  # left by a killed write (a killed ingest)
    writer = _StoreWriter(settings, batch_readings, summary)
    parse = _parse_parts(settings.shards, settings.ingest_max_line_bytes)
    try:
        for parsed in _each_parsed(paths, settings, summary, parse):
            summary.register_days += parsed.register_days
            summary.readings += sum(parsed.readings.values())
            writer.add(parsed)
        writer.close()
    except BaseException:
        writer.abort()  # partitions written so far are whole; this ingest's runs are deleted
        raise
    return summary


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
