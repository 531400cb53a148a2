"""CSV export of output tables (SPEC §6), shared by the accrual and the companion flows.

Each table goes to ``{dest_url}/{table}.csv``, or to ``{table}-0001.csv``, ``{table}-0002.csv`` …
when it has more than ``max_rows_per_file`` rows. Files have a header row, are comma-separated,
carry ISO dates (``YYYY-MM-DD``) and datetimes (``YYYY-MM-DDTHH:MM:SS``) and use ``.`` as the
decimal point (polars' CSV writer, never hand-written). Before anything is written every stale
file of the destination folder that belongs to one of the exported tables is removed, so a
re-run never leaves a ``-0003`` file from an earlier, larger run; each file is then written
atomically (temporary name + rename locally, a single PUT on S3). When ``settings.integration_url``
is set, the same files are copied there under the same relative path.

A table may come as :class:`SlicedRows` (issue 14: the line items of 1M accounts): its rows are spilled
shard by shard to local Arrow files in slices of consecutive key ranges
(tasks/adapters/row_slices.py) and written slice after slice, so the writer holds one slice, never
the whole table; the files are the same bytes as for the whole table sorted at once.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import polars as pl

from tasks.adapters import storage
from tasks.adapters.row_slices import ShardRows, read_slices, spill
from tasks.settings import Settings, join_url

_SPLIT_NAME = re.compile(r"^(?P<table>.+?)(-\d{4})?\.csv$")


def csv_bytes(df: pl.DataFrame) -> bytes:
    """The CSV text of ``df``: header, comma, ISO dates, '.' decimals, empty string for null."""
    buf = io.BytesIO()
    write_csv(df, buf)
    return buf.getvalue()


CSV_ROWS_PER_WRITE = 100_000


@dataclass(frozen=True)
class SlicedRows:
    """A table's rows for :func:`export_tables` without the whole table in memory: ``rows`` (a
    :class:`ShardRows` with a ``by`` key and its slice bounds) read slice by slice, each slice
    passed through ``finish`` (e.g. typed and sorted by the export's keys) before it is written.
    The files are those of ``finish`` applied to the whole concatenation when ``finish`` works row
    by row and its sort leads with ``by`` (then sorting each key range is sorting the whole)."""

    rows: ShardRows
    finish: Callable[[pl.DataFrame], pl.DataFrame]


def write_csv(
    df: pl.DataFrame, fh: BinaryIO, rows_per_write: int = CSV_ROWS_PER_WRITE, header: bool = True
) -> None:
    """:func:`csv_bytes`'s text written to ``fh`` ``rows_per_write`` rows at a time (the header
    once, unless ``header`` is False: a file's later part): the same bytes, without the whole text
    in memory (a 1M-account month end's line items are ~0.6 GB of CSV)."""
    for i in range(max(1, -(-df.height // rows_per_write))):
        df.slice(i * rows_per_write, rows_per_write).write_csv(
            fh,
            include_header=header and i == 0,
            separator=",",
            date_format="%Y-%m-%d",
            datetime_format="%Y-%m-%dT%H:%M:%S",
            null_value="",
        )


def file_names(table: str, rows: int, max_rows_per_file: int) -> list[str]:
    """File names for a table of ``rows`` rows: one plain file, or numbered parts."""
    if max_rows_per_file < 1:
        raise ValueError("max_rows_per_file must be at least 1")
    if rows <= max_rows_per_file:
        return [f"{table}.csv"]
    parts = -(-rows // max_rows_per_file)
    return [f"{table}-{i:04d}.csv" for i in range(1, parts + 1)]


def _stale(dest_url: str, tables: set[str], settings: Settings) -> list[str]:
    out = []
    for url in storage.list_files(dest_url, settings, suffix=".csv"):
        rel = url[len(dest_url.rstrip("/")) + 1 :]
        if "/" in rel:
            continue
        m = _SPLIT_NAME.match(rel)
        if m and m.group("table") in tables:
            out.append(url)
    return out


def export_tables(
    frames: dict[str, pl.DataFrame | SlicedRows],
    dest_url: str,
    settings: Settings,
    max_rows_per_file: int | None = None,
) -> list[str]:
    """Write every frame as CSV under ``dest_url``; return the written URLs (destination first).

    Stale files of the same tables in ``dest_url`` (and in the integration copy) are deleted
    first. An empty frame still gives one file with its header, so consumers see the table.
    A :class:`SlicedRows` is spilled to a local temporary folder and written slice by slice.
    """
    limit = max_rows_per_file or settings.max_rows_per_file
    dests = [dest_url]
    integration = _integration_dest(dest_url, settings)
    if integration:
        dests.append(integration)
    for d in dests:
        storage.sweep_temporaries(d, settings)  # a killed run's half-written files
        storage.delete(_stale(d, set(frames), settings), settings)
    written: list[str] = []
    with storage.scratch_dir("export") as tmp:
        for table, rows in frames.items():
            height, pieces = _pieces(rows, f"{tmp}/{table}")
            for name in file_names(table, height, limit):
                file_rows = _take(pieces, limit)  # this file's rows, pulled as it is written
                if len(dests) == 1:
                    storage.write_atomic(
                        join_url(dest_url, name), settings, lambda fh, it=file_rows: _write_all(it, fh)
                    )
                else:  # rendered once to a local temporary file, then copied to each destination
                    with tempfile.TemporaryFile(prefix="bua-csv-") as rendered:
                        _write_all(file_rows, rendered)
                        for d in dests:
                            rendered.seek(0)
                            storage.write_atomic(
                                join_url(d, name),
                                settings,
                                lambda fh, src=rendered: shutil.copyfileobj(src, fh),
                            )
                written += [join_url(d, name) for d in dests]
    return sorted(written, key=lambda u: (not u.startswith(dest_url), u))


class _Pieces:
    """A table's rows as consecutive frames, taken a number of rows at a time (:func:`_take`)."""

    def __init__(self, frames: Iterator[pl.DataFrame], empty: pl.DataFrame) -> None:
        self.frames, self.empty, self.head = frames, empty, None

    def next(self) -> pl.DataFrame | None:
        if self.head is not None and self.head.height:
            head, self.head = self.head, None
            return head
        for df in self.frames:
            if df.height:
                return df
        return None


def _pieces(rows: pl.DataFrame | SlicedRows, folder: str) -> tuple[int, _Pieces]:
    """The table's row count and its rows as :class:`_Pieces` (a SlicedRows spilled under ``folder``)."""
    if isinstance(rows, pl.DataFrame):
        return rows.height, _Pieces(iter([rows]), rows.clear())
    spilled = spill(rows.rows, folder)
    empty = rows.finish(pl.read_ipc(spilled["schema"]))
    return spilled["rows"], _Pieces((rows.finish(df) for df in read_slices(spilled)), empty)


def _take(pieces: _Pieces, limit: int) -> Iterator[pl.DataFrame]:
    """The next ``limit`` rows of ``pieces`` (fewer at the end), as frames; the first one always,
    empty if no row is left (its columns give a file's header)."""
    left, first = limit, True
    while left > 0:
        df = pieces.next()
        if df is None:
            if first:
                yield pieces.empty
            return
        if df.height > left:
            df, pieces.head = df.slice(0, left), df.slice(left)
        left -= df.height
        first = False
        yield df


def _write_all(frames: Iterator[pl.DataFrame], fh: BinaryIO) -> None:
    for i, df in enumerate(frames):
        write_csv(df, fh, header=i == 0)


def _integration_dest(dest_url: str, settings: Settings) -> str | None:
    """The integration copy keeps the path relative to the output URL (e.g. export/csv/{date})."""
    if not settings.integration_url:
        return None
    base = settings.output_url.rstrip("/")
    rel = (
        dest_url[len(base) + 1 :]
        if dest_url.startswith(base + "/")
        else dest_url.rstrip("/").rsplit("/", 1)[-1]
    )
    return join_url(settings.integration_url, rel)


def accrual_export_url(settings: Settings, run_date: object, scenario: str = "") -> str:
    """``{output_url}/export/csv/{run_date}``; a what-if scenario's under ``scenario={name}/`` in it."""
    base = join_url(settings.output_url, "export", "csv", str(run_date))
    return join_url(base, f"scenario={scenario}") if scenario else base
