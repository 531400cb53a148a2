"""Fixtures of the companion-flow tests: one Prefect harness for the session, a Slack stand-in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import free_port


@pytest.fixture(scope="session")
def prefect_harness(prefect_api_url: str) -> str:
    """The session's Prefect test harness (tests/conftest.py)."""
    return prefect_api_url


@dataclass
class SlackRecorder:
    """Records every webhook call; answers with the queued status codes, then 200."""

    url: str
    token: str
    calls: list[dict] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [c["body"].get("text", "") for c in self.calls if c["status"] == 200]


@pytest.fixture
def slack_webhook(monkeypatch) -> Iterator[SlackRecorder]:  # noqa: ANN001
    """A local HTTP server standing in for Slack's incoming webhook; BUA_SLACK_WEBHOOK_URL points at it."""
    port = free_port()
    token = "T0SECRET/B0SECRET/xoxb-super-secret-token-42"
    recorder = SlackRecorder(url=f"http://127.0.0.1:{port}/services/{token}", token=token)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = recorder.statuses.pop(0) if recorder.statuses else 200
            recorder.calls.append({"path": self.path, "status": status, "body": json.loads(body or b"{}")})
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"error")

        def log_message(self, *args: object) -> None:  # keep test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("BUA_SLACK_WEBHOOK_URL", recorder.url)
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
