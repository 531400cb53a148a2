"""Where the report and the run's CSVs are, and the links between them (relative, or pre-signed on S3)."""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Sequence
from typing import Any

from tasks.settings import Settings, join_url


def _scenario_part(scenario: str) -> list[str]:
    return [f"scenario={scenario}"] if scenario else []


def report_url(settings: Settings, run_date: dt.date, scenario: str = "") -> str:
    """``{output_url}/report/{run_date}/report.html``; a what-if scenario's beside it, in
    ``report/{run_date}/scenario={name}/report.html``."""
    return join_url(
        settings.output_url, "report", run_date.isoformat(), *_scenario_part(scenario), "report.html"
    )


def csv_dir_url(settings: Settings, run_date: dt.date, scenario: str = "") -> str:
    """Where the run's CSVs are (SPEC §4.5, §6): ``export/csv/{run_date}/[scenario={name}/]``."""
    return join_url(settings.output_url, "export", "csv", run_date.isoformat(), *_scenario_part(scenario))


def relative_link(from_url: str, to_url: str) -> str:
    """The relative href from the page at ``from_url`` to ``to_url`` (same root: a local folder or
    one S3 bucket), e.g. ``../../export/csv/2026-11-01/accrual_summary.csv``."""
    return posixpath.relpath(to_url, posixpath.dirname(from_url))


def report_links(
    settings: Settings, page_url: str, files: Sequence[str], presign_seconds: int = 0
) -> list[tuple[str, str]]:
    """``(file name, href)`` for each exported file: a relative link (works for a local folder, a
    copy of the output tree, or a bucket served as a website); on S3 with ``presign_seconds`` > 0 a
    pre-signed GET URL valid that long (the page then differs on each write: the signature is
    dated)."""
    out = []
    client = None
    for url in sorted(files):
        name = url.rsplit("/", 1)[-1]
        if presign_seconds > 0 and url.startswith("s3://"):
            if client is None:
                client = _s3_client(settings)
            bucket, _, key = url[len("s3://") :].partition("/")
            href = client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(presign_seconds)
            )
        else:
            href = relative_link(page_url, url)
        out.append((name, href))
    return out


def absolute_links(
    settings: Settings, files: Sequence[str], presign_seconds: int = 0
) -> list[tuple[str, str]]:
    """``(file name, URL)`` for places without a page to be relative to (Prefect artifacts, Slack):
    a local file as a ``file://`` URI; an S3 object as a pre-signed GET URL when ``presign_seconds``
    > 0, else its ``https://{bucket}.s3.{region}.amazonaws.com/{key}`` address (needs access)."""
    from pathlib import Path

    out = []
    client = None
    for url in sorted(files):
        name = url.rsplit("/", 1)[-1]
        if url.startswith("s3://"):
            bucket, _, key = url[len("s3://") :].partition("/")
            if presign_seconds > 0:
                client = client or _s3_client(settings)
                href = client.generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(presign_seconds)
                )
            else:
                href = f"https://{bucket}.s3.{settings.aws_region}.amazonaws.com/{key}"
        else:
            href = Path(url).resolve().as_uri()
        out.append((name, href))
    return out


def _s3_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    key = settings.aws_access_key_id.get_secret_value() if settings.aws_access_key_id else None
    secret = settings.aws_secret_access_key.get_secret_value() if settings.aws_secret_access_key else None
    return boto3.client(
        "s3",
        region_name=settings.aws_region,
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4"),  # SigV4 pre-signed URLs (every region accepts them)
    )
