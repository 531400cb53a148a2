"""CSV export of output tables (SPEC §6), shared by the accrual and the companion flows.

Each table goes to ``{dest_url}/{table}.csv``, or to ``{table}-0001.csv``, ``{table}-0002.csv`` …
when it has more than ``max_rows_per_file`` rows. Files have a header row, are comma-separated,
carry ISO dates (``YYYY-MM-DD``) and datetimes (``YYYY-MM-DDTHH:MM:SS``) and use ``.`` as the
decimal point (polars' CSV writer, never hand-written). Before anything is written every stale
file of the destination folder that belongs to one of the exported tables is removed, so a
re-run never leaves a ``-0003`` file from an earlier, larger run; each file is then written
atomically (temporary name + rename locally, a single PUT on S3). When ``settings.integration_url``
is set, the same files are copied there under the same relative path.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from typing import BinaryIO

import polars as pl

from tasks.adapters import storage
from tasks.settings import Settings, join_url

_SPLIT_NAME = re.compile(r"^(?P<table>.+?)(-\d{4})?\.csv$")


def csv_bytes(df: pl.DataFrame) -> bytes:
    """The CSV text of ``df``: header, comma, ISO dates, '.' decimals, empty string for null."""
    buf = io.BytesIO()
    write_csv(df, buf)
    return buf.getvalue()


CSV_ROWS_PER_WRITE = 100_000


def write_csv(df: pl.DataFrame, fh: BinaryIO, rows_per_write: int = CSV_ROWS_PER_WRITE) -> None:
    """:func:`csv_bytes`'s text written to ``fh`` ``rows_per_write`` rows at a time (the header
    once): the same bytes, without the whole text in memory (a 1M-account month end's line items
    are ~0.6 GB of CSV)."""
    for i in range(max(1, -(-df.height // rows_per_write))):
        df.slice(i * rows_per_write, rows_per_write).write_csv(
            fh,
            include_header=i == 0,
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
    frames: dict[str, pl.DataFrame],
    dest_url: str,
    settings: Settings,
    max_rows_per_file: int | None = None,
) -> list[str]:
    """Write every frame as CSV under ``dest_url``; return the written URLs (destination first).

    Stale files of the same tables in ``dest_url`` (and in the integration copy) are deleted
    first. An empty frame still gives one file with its header, so consumers see the table.
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
    for table, df in frames.items():
        names = file_names(table, df.height, limit)
        for i, name in enumerate(names):
            part = df.slice(i * limit, limit)
            if len(dests) == 1:
                storage.write_atomic(
                    join_url(dest_url, name), settings, lambda fh, part=part: write_csv(part, fh)
                )
            else:  # rendered once to a local temporary file, then copied to each destination
                with tempfile.TemporaryFile(prefix="bua-csv-") as rendered:
                    write_csv(part, rendered)
                    for d in dests:
                        rendered.seek(0)
                        storage.write_atomic(
                            join_url(d, name), settings, lambda fh, src=rendered: shutil.copyfileobj(src, fh)
                        )
            written += [join_url(d, name) for d in dests]
    return sorted(written, key=lambda u: (not u.startswith(dest_url), u))


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
