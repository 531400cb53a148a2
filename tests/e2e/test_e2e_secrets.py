"""No secret reaches the Prefect server, a log, an output file or Slack (BRIEF; SPEC §1).

A real password-protected MariaDB user (password = a sentinel; a wrong password is refused, so the
password is real), a Slack webhook whose token is a sentinel (a local recording server), and AWS
keys that are sentinels (moto's S3 server holds the outputs and Prefect's persisted results). They
reach the flow runs only through the worker's environment. A run with a failed shard, then the UI's
Retry, then a scan of: the Prefect server's database (every table, every row, and the raw database
files), what its API shows (flow and task runs with parameters and states, logs, artifacts,
variables, block documents' non-secret fields, deployments, work pools), the server's, worker's
and CLI's every log line, every object in the output bucket and every Slack message.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import SHARDS, make_portfolio
from tests.e2e.faults import Fault
from tests.e2e.procs import Server, start_worker

pytestmark = pytest.mark.slow

RUN_DATE = "2026-11-01"


def mariadb_problem() -> str | None:
    from tests.dbservers import server_problem

    problem = server_problem("mariadb")
    return f"{problem} (the secrets test needs a password-protected MariaDB user)" if problem else None


@pytest.fixture(scope="module")
def sentinels() -> dict[str, str]:
    h = uuid.uuid4().hex
    return {
        "database password": f"DbPw{h[:20]}",
        "slack token": f"SlackTok{h[8:28]}",
        "aws access key id": f"AKIA{h[:16].upper()}",
        "aws secret access key": f"AwsSecret{h[4:28]}",
    }


@pytest.fixture(scope="module")
def mariadb_user(sentinels: dict[str, str]) -> Iterator[str]:
    """A fresh database and a user who can reach it only with the sentinel password; its URL."""
    import sqlalchemy as sa

    from tests.dbservers import MARIADB_ADMIN as admin_url

    problem = mariadb_problem()
    if problem:
        pytest.skip(problem)
    name = f"bua_e2e_{uuid.uuid4().hex[:10]}"
    password = sentinels["database password"]
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    hosts = ("localhost", "127.0.0.1", "%")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
        for host in hosts:
            c.execute(sa.text(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY :pw"), {"pw": password})
            c.execute(sa.text(f"GRANT ALL PRIVILEGES ON {name}.* TO '{name}'@'{host}'"))
    url = f"mysql+pymysql://{name}:{password}@127.0.0.1:3306/{name}"
    wrong = sa.create_engine(url.replace(password, "not-the-password"))
    with pytest.raises(sa.exc.OperationalError, match="Access denied"):
        wrong.connect().close()
    wrong.dispose()
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            for host in hosts:
                c.execute(sa.text(f"DROP USER IF EXISTS '{name}'@'{host}'"))
        admin.dispose()


@pytest.fixture(scope="module")
def slack(sentinels: dict[str, str]) -> Iterator[dict[str, Any]]:
    """A local HTTP server standing in for Slack's incoming webhook; records every call."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.e2e.procs import free_port

    port, calls = free_port(), []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            calls.append({"path": self.path, "body": body.decode(errors="replace")})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = sentinels["slack token"]
    try:
        yield {"url": f"http://127.0.0.1:{port}/services/T0E2E/B0E2E/{token}", "calls": calls}
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def runs(
    e2e_server: Server,
    s3_server: str,
    mariadb_user: str,
    slack: dict[str, Any],
    sentinels: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Portfolio into the password-protected database; outputs to S3; a failed run, then the UI's Retry."""
    import boto3

    base = tmp_path_factory.mktemp("e2e-secrets")
    bucket = f"bua-e2e-{uuid.uuid4().hex[:8]}"
    keys = {
        "aws_access_key_id": sentinels["aws access key id"],
        "aws_secret_access_key": sentinels["aws secret access key"],
    }
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="ap-southeast-2", **keys)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-2"})
    env = {
        "BUA_DATABASE_URL": mariadb_user,
        "BUA_METER_STORE": str(base / "ms"),
        "BUA_OUTPUT_URL": f"s3://{bucket}/out",
        "BUA_S3_ENDPOINT_URL": s3_server,
        "BUA_AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
        "BUA_AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
        "BUA_SLACK_WEBHOOK_URL": slack["url"],
        "BUA_SHARDS": str(SHARDS),
        "BUA_MAX_WORKERS": "2",
        "BUA_TASK_RETRIES": "0",
    }
    cli_output = make_portfolio(base, env)
    worker = start_worker(e2e_server, base, {**env, "PREFECT_WORKER_QUERY_SECONDS": "1"})
    try:
        fault = Fault("rating:1", base / "fault-sentinel")
        fault.arm()
        run_id = e2e_server.create_flow_run(
            "bua_monthly/bua-adhoc", {"run_date": RUN_DATE}, {"env": fault.env()}
        )
        failed = e2e_server.wait_final(run_id, timeout=900)
        fault.disarm()
        asked = dt.datetime.now(dt.UTC)
        e2e_server.retry_as_the_ui_does(run_id)
        retried = e2e_server.wait_final(run_id, timeout=900, after=asked)
        yield {
            "base": base,
            "run_id": run_id,
            "failed": failed,
            "retried": retried,
            "s3": s3,
            "bucket": bucket,
            "cli_output": cli_output,
            "worker": worker,
        }
    finally:
        worker.stop()


# ---------------------------------------------------------------- the scan


def find(texts: dict[str, str], sentinels: dict[str, str]) -> list[str]:
    """Where each sentinel occurs: 'what: where … context'."""
    found = []
    for where, text in texts.items():
        for what, value in sentinels.items():
            at = text.find(value)
            if at >= 0:
                found.append(f"{what}: {where}: …{text[max(0, at - 120) : at + 40]!r}…")
    return found


def prefect_database_texts(server: Server) -> dict[str, str]:
    """Every row of every table of the server's database, and the raw database files."""
    texts: dict[str, str] = {}
    with sqlite3.connect(f"file:{server.database}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for i, row in enumerate(conn.execute(f'SELECT * FROM "{table}"')):
                texts[f"prefect db {table} row {i}"] = " | ".join(
                    v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in row
                )
    for f in server.home.glob("prefect.db*"):
        texts[f"prefect db file {f.name}"] = f.read_bytes().decode("latin-1")
    return texts


def prefect_api_texts(server: Server) -> dict[str, str]:
    """What the UI shows: runs (parameters, states), logs, artifacts, variables, blocks (non-secret
    fields), deployments, work pools."""
    texts: dict[str, str] = {}
    for path in (
        "/flow_runs/filter",
        "/task_runs/filter",
        "/logs/filter",
        "/artifacts/filter",
        "/variables/filter",
        "/deployments/filter",
        "/work_pools/filter",
    ):
        for i, item in enumerate(server.paged(path, {})):
            texts[f"api {path} #{i}"] = json.dumps(item)
    docs = server.post("/block_documents/filter", {"include_secrets": False})
    for doc in docs:
        texts[f"api block document {doc.get('name')}"] = json.dumps(doc)
    return texts


def log_texts(server: Server, runs: dict[str, Any]) -> dict[str, str]:
    texts = {f"log {p.name}": p.read_text(errors="replace") for p in server.logs.glob("*.log")}
    texts["bua CLI output"] = runs["cli_output"]
    for p in runs["base"].rglob("*.log"):
        texts[f"log {p}"] = p.read_text(errors="replace")
    return texts


def bucket_texts(runs: dict[str, Any]) -> dict[str, str]:
    s3, bucket, texts = runs["s3"], runs["bucket"], {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            texts[f"s3://{bucket}/{obj['Key']}"] = body.decode("latin-1")
    return texts


def local_output_texts(runs: dict[str, Any]) -> dict[str, str]:
    """Files the runs wrote locally (quarantine, the worker's PREFECT_HOME), the meter store aside."""
    return {
        f"file {p}": p.read_bytes().decode("latin-1")
        for p in runs["base"].rglob("*")
        if p.is_file() and "ms" not in p.relative_to(runs["base"]).parts[:1]
    }


def everything(server: Server, runs: dict[str, Any], slack: dict[str, Any]) -> dict[str, str]:
    texts = prefect_database_texts(server)
    texts.update(prefect_api_texts(server))
    texts.update(log_texts(server, runs))
    texts.update(bucket_texts(runs))
    texts.update(local_output_texts(runs))
    for i, call in enumerate(slack["calls"]):
        texts[f"slack message {i}"] = call["body"]
    return texts


def test_the_runs_used_every_secret_and_the_scan_sees_every_place(
    e2e_server: Server, runs: dict[str, Any], slack: dict[str, Any], sentinels: dict[str, str]
):
    """The control for the scan below: the failed run failed in rating[1], the retry completed; the
    database (password), the bucket (keys) and Slack (token, in the webhook's path) were used; and a
    canary put in a Prefect variable is found in the server's database and in the API."""
    assert runs["failed"]["state"]["type"] == "FAILED", runs["worker"].tail()
    assert runs["retried"]["state"]["type"] == "COMPLETED", runs["worker"].tail()
    assert bucket_texts(runs), "no outputs in the bucket"
    assert any(k.endswith("report.html") for k in bucket_texts(runs))
    assert [c for c in slack["calls"] if sentinels["slack token"] in c["path"]], "Slack never called"
    assert len(slack["calls"]) >= 3  # started, failed, started, finished
    canary = f"canary{uuid.uuid4().hex}"
    e2e_server.post("/variables/", {"name": f"e2e_canary_{uuid.uuid4().hex[:6]}", "value": canary})
    where = find(prefect_database_texts(e2e_server), {"canary": canary})
    assert any("prefect db variable" in w for w in where), where
    assert find(prefect_api_texts(e2e_server), {"canary": canary})


def test_no_secret_reaches_the_prefect_server_logs_outputs_or_slack(
    e2e_server: Server, runs: dict[str, Any], slack: dict[str, Any], sentinels: dict[str, str]
):
    assert runs["retried"]["state"]["type"] == "COMPLETED"
    found = find(everything(e2e_server, runs, slack), sentinels)
    # kept beside the server's logs for whoever has to find a leak
    (e2e_server.logs / "secret-findings.txt").write_text("\n".join(found) + "\n")
    # Slack's own URL path carries the token by design (it is where the webhook posts); bodies may not
    assert found == [], "\n".join(found[:40]) + (f"\n… {len(found)} in all" if len(found) > 40 else "")
