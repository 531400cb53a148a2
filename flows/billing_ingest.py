"""Billing CSV ingest flows (SPEC §7.1): the event-triggered loader and the bucket poller.

``billing_csv_ingest`` loads files given as paths (files, folders, s3:// prefixes) or as the
``bucket``/``key`` of an ``aws.s3.object.created`` event; its deployment trigger (see
deployments/companion.yaml) maps the event's payload to those parameters. ``billing_csv_poll``
is the event source for installations without EventBridge: it lists the inbox prefix and emits
one ``aws.s3.object.created`` event per object that is new or changed (by ETag) since it was
last ingested. Both shapes of event are the same, so one trigger serves both (infra/s3-events/).
"""

from __future__ import annotations

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from flows.runtime import current_settings, run_settings
from tasks.adapters import storage
from tasks.adapters.db import DatabaseError
from tasks.companion.billing_ingest import IngestResult, known_files, load_billing_csv
from tasks.redact import redact
from tasks.settings import Settings

EVENT_NAME = "aws.s3.object.created"


class BillingIngestError(RuntimeError):
    """At least one file was rejected whole; the others were loaded."""


def expand_sources(paths: list[str], settings: Settings) -> list[str]:
    """Every ``.csv`` file named by ``paths`` (a file, a folder or an s3:// prefix), in order, once."""
    out: list[str] = []
    for p in paths:
        found = (
            [p]
            if p.lower().endswith(".csv") and storage.exists(p, settings)
            else storage.list_files(p, settings, suffix=".csv")
        )
        if not found:
            found = [p]  # reported as unreadable by the loader, with its name
        out.extend(f for f in found if f not in out)
    return out


def s3_event(url: str, etag: str, size: int | None = None) -> dict[str, object]:
    """The event for one object, in the shape the EventBridge forwarder also sends."""
    bucket, _, key = url[len("s3://") :].partition("/")
    return {
        "event": EVENT_NAME,
        "resource": {
            "prefect.resource.id": url,
            "prefect.resource.name": key,
            "aws.s3.bucket": bucket,
            "aws.s3.key": key,
        },
        "payload": {"bucket": bucket, "key": key, "etag": etag, "size": size},
    }


@task(name="ingest-billing-csv", cache_policy=NO_CACHE)
def ingest_file(source: str, etag: str | None = None, rejects_url: str | None = None) -> IngestResult:
    """One file; an exception leaves as one redacted line without its chain (no SQL, no row values).
    Settings (and the database URL in them) are the worker's, never a task parameter."""
    settings = run_settings(billing_rejects_url=rejects_url)
    try:
        return load_billing_csv(source, settings.db_url, settings, etag=etag)
    except DatabaseError as exc:
        raise DatabaseError(redact(str(exc))) from None
    except Exception as exc:  # noqa: BLE001 - whatever it was, its message may hold a URL or values
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise BillingIngestError(redact(f"{source}: {type(exc).__name__}: {first}")) from None


@flow(name="billing-csv-ingest", log_prints=False)
def billing_csv_ingest(
    paths: list[str] | None = None,
    bucket: str | None = None,
    key: str | None = None,
    etag: str | None = None,
    rejects_url: str | None = None,
) -> list[dict[str, object]]:
    """Load billing CSVs into ``billing_record``; one transaction per file; rejects beside. The
    database comes from the worker's settings (BUA_DATABASE_URL), never from a parameter."""
    settings = run_settings(billing_rejects_url=rejects_url)
    logger = get_run_logger()
    sources = list(paths or [])
    if bucket and key:
        sources.append(f"s3://{bucket}/{key}")
    if not sources:
        raise ValueError("billing-csv-ingest needs paths or bucket and key")
    files = expand_sources(sources, settings)
    single_object = bool(bucket and key and not paths)
    results = [ingest_file(f, etag if single_object else None, rejects_url) for f in files]
    for r in results:
        logger.info(
            "%s: %s, %d read, %d loaded, %d already loaded, %d rejected%s",
            redact(r.source),
            r.status,
            r.rows_read,
            r.rows_loaded,
            r.rows_duplicate,
            r.rows_rejected,
            f" (rejects: {r.rejects_url})" if r.rejects_url else "",
        )
    failed = [r for r in results if r.status == "REJECTED"]
    if failed:
        raise BillingIngestError(redact("; ".join(r.reason or r.source for r in failed)))
    return [r.as_dict() for r in results]


def new_objects(listing: pl.DataFrame, known: pl.DataFrame) -> pl.DataFrame:
    """Objects (url, etag, size) never ingested or changed since (a different ETag)."""
    seen = known.select(pl.col("source_url").alias("url"), pl.col("etag"))
    return listing.join(seen, on=["url", "etag"], how="anti").sort("url")


def list_objects(prefix: str, settings: Settings) -> pl.DataFrame:
    """url, etag, size of every ``.csv`` object under an s3:// prefix."""
    if not storage.is_s3(prefix):
        raise ValueError(f"billing-csv-poll watches an s3:// prefix, not {prefix!r}")
    base = prefix[len("s3://") :].rstrip("/")
    fs = storage._fs(settings)
    found = fs.find(base, detail=True) if fs.exists(base) else {}
    rows = [
        {
            "url": f"s3://{path}",
            "etag": str(info.get("ETag", "")).strip('"'),
            "size": int(info.get("size") or 0),
        }
        for path, info in found.items()
        if path.lower().endswith(".csv")
    ]
    return pl.DataFrame(rows, schema={"url": pl.String, "etag": pl.String, "size": pl.Int64})


@flow(name="billing-csv-poll")
def billing_csv_poll(prefix: str | None = None) -> list[dict[str, object]]:
    """Emit ``aws.s3.object.created`` for each new or changed CSV under the inbox prefix."""
    settings = current_settings()
    prefix = prefix or settings.billing_inbox_url
    if not prefix:
        raise ValueError("billing-csv-poll needs a prefix (parameter or BUA_BILLING_INBOX_URL)")
    fresh = new_objects(list_objects(prefix, settings), known_files(settings.db_url))
    emitted = []
    for obj in fresh.iter_rows(named=True):
        spec = s3_event(obj["url"], obj["etag"], obj["size"])
        event = emit_event(**spec)  # type: ignore[arg-type]
        if event is not None:
            emitted.append(event.model_dump(mode="json"))
    get_run_logger().info("%s: %d new object(s), %d event(s) emitted", prefix, fresh.height, len(emitted))
    return emitted
