"""Meter data ingest: find the input files, read each one whole or reject it, load what is good.

Sources are files, folders (every file below, sorted), zip archives (every member, including
archives with several members) and ``s3://`` prefixes, taken in the order given. Each file (or
zip member) is read whole by ``tasks.nem12``/``tasks.nem13``; a malformed one is moved to the
quarantine (``{quarantine}/{name}`` — a zip member as ``{zip name}!{member}`` with the member's
bytes — plus ``{name}.reason.txt`` with every ``file:line: reason``) and the others go on.

NEM12 register-days are merged into the meter store in batches of about ``batch_readings``
readings, so interval data never sits whole in memory; every partition write is atomic and
re-ingesting is idempotent, so an interrupted ingest is finished by running it again. NEM13 reads
go to ``basic_read``; reads of NMIs/registers the database does not know go to
``{rejects}/{file}.rejects.csv`` (``rejects`` is the quarantine's sibling folder) with a reason.
"""

from __future__ import annotations

import io
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tasks.meter_store import merge_register_days
from tasks.nem12 import MdffError, decode, parse_nem12
from tasks.settings import Settings, join_url
from tasks.storage import delete, is_s3, list_files, read_bytes, write_bytes_atomic

ZIP_MAGIC = b"PK\x03\x04"
PARSE_THREADS = 1


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
    reads: int = 0
    reads_inserted: int = 0
    reads_replaced: int = 0
    reads_unchanged: int = 0
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
            )
        else:
            out.append(
                f"basic_read: {self.reads} read(s): {self.reads_inserted} inserted, {self.reads_replaced} replaced, {self.reads_unchanged} unchanged"
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
    """The readable units of one file: itself, or each member of a zip archive."""
    data = read_bytes(url, settings)
    if not data.startswith(ZIP_MAGIC):
        yield Unit(_base(url), url, None, data)
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if not members:
                yield quarantine(
                    Unit(_base(url), url, None, data), f"{_base(url)}:0: zip archive has no files\n", settings
                )
            for m in members:
                yield Unit(f"{_base(url)}!{m.filename}", url, m.filename, archive.read(m))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        yield quarantine(
            Unit(_base(url), url, None, data),
            f"{_base(url)}:0: not a readable zip archive ({exc})\n",
            settings,
        )


def quarantine(unit: Unit, report: str, settings: Settings) -> Rejected:
    """Keep the rejected bytes in the quarantine with the reason beside them; remove a plain source."""
    name = unit.name.replace("/", "_")
    dst = join_url(settings.quarantine(), name)
    write_bytes_atomic(unit.data, dst, settings)
    write_bytes_atomic(report.encode(), dst + ".reason.txt", settings)
    if unit.member is None and unit.url != dst:
        if _read_only(unit.url):
            report += "(source left in place: its folder is read-only)\n"
        else:
            try:
                delete([unit.url], settings)
            except OSError as exc:  # the copy is in quarantine either way
                report += f"(source left in place: {exc.strerror or exc})\n"
    return Rejected(unit.name, report, dst)


def _read_only(url: str) -> bool:
    """A local file whose folder or itself has no write permission bits (root ignores them)."""
    if is_s3(url):
        return False
    path = Path(url)
    return not (path.parent.stat().st_mode & 0o222) or not (path.stat().st_mode & 0o222)


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
    paths: list[str], settings: Settings, summary: IngestSummary, parse: Callable[[str, str], pl.DataFrame]
) -> Iterator[pl.DataFrame]:
    """Parsed frames in file order; rejected files quarantined on the way.

    Files are parsed on ``PARSE_THREADS`` threads (polars releases the GIL), at most that many
    ahead of the consumer, so memory holds a bounded number of files.
    """

    def job(unit: Unit) -> pl.DataFrame | MdffError:
        try:
            return parse(decode(unit.data), unit.name)
        except MdffError as exc:
            return exc

    def outcome(unit: Unit, result: pl.DataFrame | MdffError) -> pl.DataFrame | None:
        if isinstance(result, MdffError):
            summary.rejected.append(quarantine(unit, result.report(), settings))
            return None
        summary.accepted += 1
        return result

    in_flight: deque[tuple[Unit, Future[pl.DataFrame | MdffError]]] = deque()
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
                while len(in_flight) > PARSE_THREADS:
                    done, fut = in_flight.popleft()
                    if (frame := outcome(done, fut.result())) is not None:
                        yield frame
        while in_flight:
            done, fut = in_flight.popleft()
            if (frame := outcome(done, fut.result())) is not None:
                yield frame


def ingest_nem12(paths: list[str], settings: Settings, batch_readings: int = 6_000_000) -> IngestSummary:
    """Read NEM12 files and merge them into the meter store, ``batch_readings`` at a time."""
    summary = IngestSummary("nem12")
    pending: list[pl.DataFrame] = []
    pending_readings = 0

    def flush() -> None:
        nonlocal pending, pending_readings
        if pending:
            summary.partitions_written += len(merge_register_days(pl.concat(pending), settings))
        pending, pending_readings = [], 0

    for frame in _each_parsed(paths, settings, summary, parse_nem12):
        n = int(frame["values"].list.len().sum() or 0)
        summary.register_days += frame.height
        summary.readings += n
        pending.append(frame)
        pending_readings += n
        if pending_readings >= batch_readings:
            flush()
    flush()
    return summary


def ingest_nem13(paths: list[str], settings: Settings) -> IngestSummary:
    """Read NEM13 files into ``basic_read``; unknown NMIs/registers go to a rejects file."""
    from tasks.db import require_tables
    from tasks.nem13 import basic_reads, lookup_registers, parse_nem13, resolve_registers, write_basic_reads

    require_tables(settings.database_url, ["site", "meter", "meter_register", "basic_read"])
    summary = IngestSummary("nem13")
    frames = list(_each_parsed(paths, settings, summary, parse_nem13))
    if not frames:
        return summary
    reads = basic_reads(pl.concat(frames))
    matched, unknown = resolve_registers(reads, lookup_registers(settings.database_url))
    counts = write_basic_reads(settings.database_url, matched)
    summary.reads = reads.height
    summary.reads_inserted, summary.reads_replaced, summary.reads_unchanged = (
        counts["inserted"],
        counts["replaced"],
        counts["unchanged"],
    )
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
