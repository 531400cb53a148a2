"""A local HTTP server implementing the Kubernetes API calls bua uses, plus a stand-in engine endpoint.

Kubernetes (apps/v1): ``PATCH …/deployments/{name}/scale`` sets spec.replicas (and bumps the
generation); ``GET …/deployments/{name}/status`` returns the deployment, whose ready replicas catch
up with spec after ``lag`` status reads (a deployment named in ``stuck`` never gets ready). Every
request is recorded. Engine: ``POST /engine/runs`` calls ``on_start(run_date)`` and returns an id;
``GET /engine/runs/{id}`` answers RUNNING for ``engine_polls`` reads, then ``engine_outcome``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEPLOY = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)/(scale|status)$")


@dataclass
class Deployment:
    replicas: int = 0
    ready: int = 0
    generation: int = 1
    reads_since_change: int = 0


@dataclass
class State:
    deployments: dict[str, Deployment]
    lag: int = 2
    stuck: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    on_start: Callable[[str], None] | None = None
    engine_polls: int = 2
    engine_outcome: str = "COMPLETED"
    engine_reads: int = 0
    auth: list[str | None] = field(default_factory=list)


def _deployment_json(ns: str, name: str, d: Deployment) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "generation": d.generation},
        "spec": {
            "replicas": d.replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "engine", "image": "engine:1"}]}},
        },
        "status": {"observedGeneration": d.generation, "replicas": d.replicas, "readyReplicas": d.ready or None},
    }  # fmt: skip


def _scale_json(ns: str, name: str, d: Deployment) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": d.replicas}, "status": {"replicas": d.replicas},
    }  # fmt: skip


def serve(state: State) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, doc: dict[str, Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> Any:
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n)) if n else None

        def do_GET(self) -> None:  # noqa: N802
            state.requests.append(("GET", self.path, None))
            m = DEPLOY.match(self.path)
            if m and m.group(2) in state.deployments:
                ns, name, what = m.groups()
                d = state.deployments[name]
                if what == "status" and d.ready != d.replicas and name not in state.stuck:
                    d.reads_since_change += 1
                    if d.reads_since_change >= state.lag:
                        d.ready = d.replicas
                return self._send(200, (_deployment_json if what == "status" else _scale_json)(ns, name, d))
            if self.path.startswith("/engine/runs/"):
                state.auth.append(self.headers.get("Authorization"))
                state.engine_reads += 1
                done = state.engine_reads > state.engine_polls
                return self._send(200, {"status": state.engine_outcome if done else "RUNNING"})
            self._send(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})

        def do_PATCH(self) -> None:  # noqa: N802
            body = self._body()
            state.requests.append(("PATCH", self.path, body))
            m = DEPLOY.match(self.path)
            if not m or m.group(3) != "scale" or m.group(2) not in state.deployments:
                return self._send(
                    404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
                )
            ns, name, _ = m.groups()
            d = state.deployments[name]
            d.replicas = int(body["spec"]["replicas"])
            d.generation += 1
            d.reads_since_change = 0
            if d.replicas < d.ready:
                d.ready = d.replicas
            self._send(200, _scale_json(ns, name, d))

        def do_POST(self) -> None:  # noqa: N802
            body = self._body()
            state.requests.append(("POST", self.path, body))
            if self.path == "/engine/runs":
                state.auth.append(self.headers.get("Authorization"))
                if state.on_start:
                    state.on_start(body["run_date"])
                return self._send(201, {"id": "run-1"})
            self._send(404, {})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
