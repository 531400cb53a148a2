"""The files of a meter data ingest and what became of them: the sources expanded to files, each
file or zip member as a unit to read (the size and zip-ratio caps checked first), a rejected unit
copied to the quarantine with its reason, and the summary of the ingest."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tasks.adapters.mdff import cut_text
from tasks.adapters.storage import exists, is_s3, list_files, read_bytes, size, write_bytes_atomic
from tasks.settings import Settings, join_url

ZIP_MAGIC = b"PK\x03\x04"


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
    deltas_written: int = 0
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
                + (f", {self.deltas_written} delta(s) beside their partition" if self.deltas_written else "")
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
