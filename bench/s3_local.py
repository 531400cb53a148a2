"""S3 on this machine for the cluster test and bench: moto's server over HTTP, a counter of the
requests it serves (by method and by what the key is: meter store, work file, Prefect result,
published output), and helpers to upload a folder and digest what is under a prefix."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REGION = "ap-southeast-2"


class RequestCounter:
    """WSGI middleware counting requests and bytes by (method, kind of key)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.requests: Counter[tuple[str, str]] = Counter()
        self.bytes_in: Counter[str] = Counter()
        self.bytes_out: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        kind = kind_of(environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
        method = environ.get("REQUEST_METHOD", "?")
        sent = int(environ.get("CONTENT_LENGTH") or 0)

        def counted(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            size = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
            with self._lock:
                self.requests[(method, kind)] += 1
                self.bytes_in[kind] += sent
                if method == "GET":
                    self.bytes_out[kind] += size
            return start_response(status, headers, *rest)

        return self.app(environ, counted)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {f"{m} {k}": n for (m, k), n in sorted(self.requests.items())},
                "bytes_written": dict(sorted(self.bytes_in.items())),
                "bytes_read": dict(sorted(self.bytes_out.items())),
            }

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_in.clear()
            self.bytes_out.clear()


def kind_of(path: str, query: str) -> str:
    """What an S3 request touches: meter store interval/basic data, a work file (by folder),
    a Prefect result or manifest, a published output, or a listing."""
    key = path.lstrip("/").partition("/")[2]
    if not key:
        return "list" if "list-type" in query or query.startswith("prefix") else "bucket"
    if "/interval/" in f"/{key}":
        return "store-interval"
    if m := re.search(r"/work/[^/]+/[^/]+/([^/]+)/", key):
        return f"work-{m.group(1)}"
    for part in ("prefect-results", "manifest", "export", "nem12", "report", "store"):
        if f"/{part}" in f"/{key}" or key.startswith(part):
            return part
    return "other"


@contextmanager
def moto_server(port: int) -> Iterator[tuple[str, RequestCounter]]:
    """moto's threaded S3 server on ``port``; yields its endpoint URL and its request counter."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    counter = RequestCounter(server._server.app)  # type: ignore[union-attr]
    server._server.app = counter  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", counter
    finally:
        server.stop()


def client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_bucket(endpoint: str, name: str) -> str:
    client(endpoint).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return f"s3://{name}"


def upload_dir(endpoint: str, folder: Path, url: str) -> int:
    """Put every file under ``folder`` at ``url`` + its relative path; the number of files."""
    s3 = client(endpoint)
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for p in files:
        s3.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(folder).as_posix()}".lstrip("/"))
    return len(files)


def digests(
    endpoint: str, url: str, folders: tuple[str, ...] = ("export", "nem12", "report")
) -> dict[str, str]:
    """sha256 of every object under ``url`` in one of ``folders``, by key relative to ``url``."""
    s3 = client(endpoint)
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/") + "/"
    out: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix) :]
            if rel.split("/", 1)[0] in folders:
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                out[rel] = hashlib.sha256(body).hexdigest()
    return dict(sorted(out.items()))
