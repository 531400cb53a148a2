"""Shared fixtures: real databases, moto's S3 server, a recording Slack stand-in, Prefect's harness."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest

# Prefect must never touch the developer's own home or phone home; set before any prefect import.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bua-prefect-home-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from tests.dbservers import KINDS, fresh_database, server_problem  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BUA_SHARED_DATA") or REPO.parent / "shared" / "data")
MDFF = SHARED_DATA / "mdff-examples"
# tests that read the shared AEMO MDFF examples (a checkout without them skips these, with the reason)
needs_mdff = pytest.mark.skipif(
    not MDFF.is_dir(), reason=f"{MDFF} is absent (the shared AEMO MDFF examples; set BUA_SHARED_DATA)"
)

_problems: dict[str, str | None] = {}


def _problem(kind: str) -> str | None:
    if kind not in _problems:
        _problems[kind] = server_problem(kind)
    return _problems[kind]


@pytest.fixture(params=KINDS)
def db_url(request, tmp_path):  # noqa: ANN001
    """A fresh empty database on SQLite, MariaDB and PostgreSQL (skipped with a reason if down)."""
    problem = _problem(request.param)
    if problem:
        pytest.skip(problem)
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # noqa: ANN001
    return f"sqlite:///{tmp_path}/bua-test.db"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server over HTTP on a free local port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch):  # noqa: ANN001
    """A fresh bucket on the moto server; the BUA_ S3 settings point at it. Yields 's3://bucket'."""
    import uuid

    import boto3

    monkeypatch.setenv("BUA_S3_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("BUA_AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("BUA_AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    name = f"bua-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="ap-southeast-2").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-2"}
    )
    return f"s3://{name}"


@pytest.fixture(scope="session")
def prefect_api_url():
    """Prefect's own test harness (a real temporary API server and database), started once per
    session for every test that needs it (it takes ~25 s); yields its PREFECT_API_URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def harness(prefect_api_url: str) -> str:
    """The session's Prefect test harness; its PREFECT_API_URL (tests that run bua_monthly use it)."""
    return prefect_api_url
