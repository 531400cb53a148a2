"""Load billing CSV files into ``billing_record`` (SPEC §7.1): idempotent on ``id``, one transaction per file.

For each file: read the bytes (local or S3), parse and validate (``tasks.companion.billing_csv``), write the
rejects file and a copy of the source beside it first (so that nothing refused is lost even if
the load then fails; the source itself is never moved or deleted), then in one transaction insert the accepted rows whose ``id`` is not in the table yet and record the file in
``billing_csv_file``. The insert also tells the database to ignore an ``id`` that is already
there (``ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL, ``ON DUPLICATE KEY UPDATE id = id``
on MariaDB/MySQL), so two loads of the same file at once cannot insert a row twice either. A
re-uploaded row keeps its first version: the external system must use a new id for a correction.
A file that cannot be read at all is copied to the rejects location with a ``.reason.txt`` beside it.
Copies are named by the source's name, a hash of its full path and a hash of its bytes. Should the
database still refuse the load, nothing of the file is loaded and the error names the file and
the driver's first line, never the statement's row values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import asdict, dataclass

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sql.schema import metadata
from tasks.adapters import storage
from tasks.adapters.db import DatabaseError, insert_frame, read_sql, transaction
from tasks.adapters.export import csv_bytes
from tasks.companion.billing_csv import FX_SCHEMA, BillingCsvError, parse_billing_csv
from tasks.redact import redact
from tasks.settings import Settings, join_url

KNOWN_FILES_SCHEMA = {
    "source_url": pl.String,
    "etag": pl.String,
    "status": pl.String,
    "loaded_at": pl.Datetime,
}
_ID_CHUNK = 500
_SOURCE_CHARS = metadata.tables["billing_csv_file"].c.source_url.type.length


@dataclass(frozen=True)
class IngestResult:
    """What happened to one file; ``status`` is LOADED (rows may still be rejected) or REJECTED (whole file)."""

    source: str
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    rejects_url: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def rejects_location(settings: Settings) -> str:
    return settings.billing_rejects_url or join_url(settings.quarantine(), "billing-csv")


def _file_name(source: str) -> str:
    return source.rstrip("/").rsplit("/", 1)[-1]


def rejects_url_for(source: str, data: bytes, settings: Settings, suffix: str = ".rejects.csv") -> str:
    """``{rejects}/{name}.{hash of the full source}-{hash of the bytes}{suffix}``: same-named files
    from two prefixes, or two versions of one file, never overwrite each other's copy."""
    tag = hashlib.sha256(source.encode()).hexdigest()[:8] + "-" + hashlib.sha256(data).hexdigest()[:8]
    return join_url(rejects_location(settings), f"{_file_name(source)[:120]}.{tag}{suffix}")


def object_etag(source: str, data: bytes, settings: Settings) -> str:
    """The S3 ETag of an object (what a bucket listing shows), or the MD5 of a local file's bytes."""
    if storage.is_s3(source):
        info = storage._fs(settings).info(source[len("s3://") :])
        etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
        if etag:
            return etag
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def existing_ids(conn: Connection, ids: list[str]) -> set[str]:
    """The ids already loaded, lower-cased: ids are compared ignoring case on every database, as
    MariaDB's collation does (``lower(id)`` on SQLite and PostgreSQL)."""
    tbl = metadata.tables["billing_record"]
    folded = conn.dialect.name in ("mysql", "mariadb")
    column = tbl.c.id if folded else sa.func.lower(tbl.c.id)
    found: set[str] = set()
    wanted = sorted({i.lower() for i in ids})
    for start in range(0, len(wanted), _ID_CHUNK):
        chunk = wanted[start : start + _ID_CHUNK]
        found.update(i.lower() for i in conn.execute(sa.select(tbl.c.id).where(column.in_(chunk))).scalars())
    return found


def insert_new_records(conn: Connection, df: pl.DataFrame, chunk_rows: int = 2000) -> None:
    """INSERT that leaves an existing ``id`` alone, in the caller's transaction."""
    if df.height == 0:
        return
    tbl = metadata.tables["billing_record"]
    dialect = conn.dialect.name
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        stmt = mysql_insert(tbl)
        stmt = stmt.on_duplicate_key_update(id=stmt.inserted.id)
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(tbl).on_conflict_do_nothing(index_elements=["id"])
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(tbl).on_conflict_do_nothing(index_elements=["id"])
    else:  # pragma: no cover - the three supported databases are above
        raise RuntimeError(f"billing CSV ingest does not support the {dialect} dialect")
    cols = [c for c in df.columns if c in tbl.c]
    for start in range(0, df.height, chunk_rows):
        conn.execute(stmt, df.select(cols).slice(start, chunk_rows).to_dicts())


def _record_file(conn: Connection, result: IngestResult, etag: str, now: dt.datetime) -> None:
    tbl = metadata.tables["billing_csv_file"]
    conn.execute(tbl.delete().where(tbl.c.source_url == result.source))
    row = {k: v for k, v in result.as_dict().items() if k in tbl.c}
    row.update(source_url=result.source, etag=etag, loaded_at=now)
    conn.execute(tbl.insert(), [row])


def _reject_whole_file(
    source: str, data: bytes | None, reason: str, etag: str, database_url: str | None, settings: Settings
) -> IngestResult:
    reason_url = rejects_url_for(source, data or b"", settings, ".reason.txt")
    if data is not None:
        storage.write_bytes_atomic(data, rejects_url_for(source, data, settings, ""), settings)
    storage.write_bytes_atomic((reason + "\n").encode(), reason_url, settings)
    result = IngestResult(source=source, status="REJECTED", rejects_url=reason_url, reason=reason)
    if database_url is not None:  # None: the source name itself does not fit billing_csv_file
        with transaction(database_url) as conn:
            _record_file(conn, result, etag, _now())
    return result


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def load_billing_csv(
    source: str, database_url: str, settings: Settings, etag: str | None = None
) -> IngestResult:
    """Ingest one billing CSV (local path or s3:// URL); see the module docstring."""
    try:
        data = storage.read_bytes(source, settings)
    except (OSError, ValueError) as exc:
        # the object vanished or is unreadable: nothing to keep, say so
        return IngestResult(
            source=source, status="REJECTED", reason=f"{source}: cannot read: {type(exc).__name__}"
        )
    etag = etag or object_etag(source, data, settings)
    if len(source) > _SOURCE_CHARS:  # billing_csv_file.source_url and billing_record.source_file
        return _reject_whole_file(
            source, data, f"{source[:80]}…: path longer than {_SOURCE_CHARS} characters", etag, None, settings
        )
    fx = read_sql(database_url, "companion_fx_rate", schema=FX_SCHEMA)
    try:
        parsed = parse_billing_csv(data, source, fx, settings.reporting_currency)
    except BillingCsvError as exc:
        return _reject_whole_file(source, data, str(exc), etag, database_url, settings)

    rejects_url = None
    if parsed.rejects.height:  # the rejects file and a copy of the source, before the load
        rejects_url = rejects_url_for(source, data, settings)
        storage.write_bytes_atomic(csv_bytes(parsed.rejects), rejects_url, settings)
        storage.write_bytes_atomic(data, rejects_url_for(source, data, settings, ""), settings)

    now = _now()
    try:
        with transaction(database_url) as conn:
            present = existing_ids(conn, parsed.accepted["id"].to_list())
            new = parsed.accepted.filter(~pl.col("id").str.to_lowercase().is_in(list(present))).with_columns(
                pl.lit(source).alias("source_file"), pl.lit(now).alias("loaded_at")
            )
            insert_new_records(conn, new)
            result = IngestResult(
                source=source,
                status="LOADED",
                rows_read=parsed.rows_read,
                rows_loaded=new.height,
                rows_duplicate=parsed.accepted.height - new.height,
                rows_rejected=parsed.rejects.height,
                rejects_url=rejects_url,
            )
            _record_file(conn, result, etag, now)
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(database_refusal(source, exc)) from None
    return result


def database_refusal(source: str, exc: BaseException) -> str:
    """One line for a load the database refused: the driver's first line (no SQL, no row values)."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0]
    return redact(
        f"{source}: the database refused the load, nothing of this file was loaded "
        f"({type(orig).__name__}: {first[:200]})"
    )


def known_files(database_url: str) -> pl.DataFrame:
    """Files already ingested, with the ETag they had."""
    return read_sql(database_url, "companion_billing_csv_files", schema=KNOWN_FILES_SCHEMA)


def load_fx_rates(database_url: str, rates: pl.DataFrame) -> int:
    """Helper for set-up scripts and tests: add ``fx_rate`` rows in one transaction."""
    with transaction(database_url) as conn:
        return insert_frame(conn, "fx_rate", rates)
