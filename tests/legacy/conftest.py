"""Fixtures of the legacy-source tests: one moto server over HTTP for RDS, KMS, EC2, Secrets Manager,
Route 53 and EKS (module-scoped; each test makes its own uniquely named resources)."""

from __future__ import annotations

import pytest

from tests.conftest import free_port

REGION = "ap-southeast-2"


@pytest.fixture(scope="module")
def aws_server():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
