"""Every credential form is removed by tasks.redact.redact, and by the places text leaves bua: the
CLI's `error:` line, the database URL in messages, Slack posts (docs/DEPLOY.md "Secrets")."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from tasks.adapters.db import redact_url
from tasks.redact import RedactingFilter, redact
from tests.conftest import free_port
from tests.test_cli_errors import bua

# (text, what it must become): written out by hand from the rules in tasks/redact.py
FORMS = [
    ("mysql+pymysql://root:hunter2@db:3306/bua", "mysql+pymysql://root:***@db:3306/bua"),
    ("postgresql+psycopg://u:p@ss@db/bua", "postgresql+psycopg://u:***@db/bua"),  # '@' in the password
    (
        "mysql+pymysql://root@127.0.0.1:1/x?password=hunter2",
        "mysql+pymysql://root@127.0.0.1:1/x?password=***",
    ),
    (
        "postgresql://db/bua?sslmode=require&PASSWORD=hunter2",
        "postgresql://db/bua?sslmode=require&PASSWORD=***",
    ),
    (
        "cannot connect to db://h/x?password=hunter2: refused",
        "cannot connect to db://h/x?password=***: refused",
    ),
    ("http://h/x?pass=hunter2&a=1", "http://h/x?pass=***&a=1"),
    ("http://h/x?pwd=hunter2", "http://h/x?pwd=***"),
    ("http://h/x?token=hunter2", "http://h/x?token=***"),
    ("http://h/x?access_token=hunter2", "http://h/x?access_token=***"),
    ("http://h/x?secret=hunter2", "http://h/x?secret=***"),
    ("http://h/x?client_secret=hunter2", "http://h/x?client_secret=***"),
    ("http://h/x?key=hunter2", "http://h/x?key=***"),
    ("http://h/x?api_key=hunter2", "http://h/x?api_key=***"),
    ("http://h/x?apikey=hunter2", "http://h/x?apikey=***"),
    ("http://h/x?access_key=hunter2", "http://h/x?access_key=***"),
    (
        "https://b.s3.amazonaws.com/k.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAHUNTER2%2F20261206"
        "&X-Amz-Date=20261206T000000Z&X-Amz-Signature=hunter2abc",
        "https://b.s3.amazonaws.com/k.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
        "&X-Amz-Date=20261206T000000Z&X-Amz-Signature=***",
    ),
    (
        "posting to https://hooks.slack.com/services/T000/B000/hunter2XYZ failed",
        "posting to https://hooks.slack.com/services/*** failed",
    ),
    ("libpq: host=db user=bua password=hunter2 dbname=x", "libpq: host=db user=bua password=*** dbname=x"),
    ("connect(password='hunter2', host='db')", "connect(password='***', host='db')"),
    ('{"user": "bua", "password": "hunter2"}', '{"user": "bua", "password": "***"}'),
    ("Authorization: Bearer hunter2hunter2", "Authorization: Bearer ***"),
]


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[f"form{i}" for i in range(len(FORMS))])
def test_each_credential_form_is_redacted(text: str, expected: str):
    assert redact(text) == expected
    assert "hunter2" not in redact(text)
    assert redact(redact(text)) == expected  # redacting twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:///.bua/bua.db",
        "mysql+pymysql://root@127.0.0.1:3306/bua",  # a user without a password is kept
        "http://127.0.0.1:8080/path?q=1&day=2026-10-01",
        "duplicate key value violates unique constraint: Key (id)=(B-001) already exists",
        "B-001: 4 loaded, 0 already loaded, 4 rejected",
    ],
)
def test_text_without_credentials_is_unchanged(text: str):
    assert redact(text) == text


def test_redact_url_hides_the_query_password_too():
    assert redact_url("mysql+pymysql://root@127.0.0.1:1/x?password=hunter2") == (
        "mysql+pymysql://root@127.0.0.1:1/x?password=***"
    )
    assert redact_url("mysql+pymysql://root:hunter2@db/bua") == "mysql+pymysql://root:***@db/bua"


def test_logging_filter_redacts_message_and_traceback(caplog):
    logger = logging.getLogger("bua.test.redact")
    handler = caplog.handler
    handler.addFilter(RedactingFilter())
    try:
        try:
            raise RuntimeError("cannot connect to mysql://root:hunter2@db/x")
        except RuntimeError:
            logger.exception("failed with %s", "http://h/x?token=hunter2")
    finally:
        handler.removeFilter(handler.filters[-1])
    assert "hunter2" not in caplog.text
    assert "failed with http://h/x?token=***" in caplog.text
    assert "mysql://root:***@db/x" in caplog.text


def test_slack_post_body_is_redacted(slack_webhook):
    from tasks.adapters.slack import post_message

    post_message(SecretStr(slack_webhook.url), "db mysql://root@h/x?password=hunter2 failed")
    assert slack_webhook.texts == ["db mysql://root@h/x?password=*** failed"]


def test_cli_error_line_has_no_query_password(tmp_path):
    # unreachable MariaDB (port 1) with the password as a query parameter: one `error:` line, no secret
    url = "mysql+pymysql://root@127.0.0.1:1/x?password=hunter2"
    src = tmp_path / "b.csv"
    src.write_text("id\n")
    r = bua(["--database-url", url, "ingest", "billing-csv", str(src)], tmp_path)
    assert r.returncode == 1, r.stderr
    assert "hunter2" not in r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot connect to database mysql+pymysql://root@127.0.0.1:1/x?password=***: OperationalError"
    ), r.stderr
    assert "Starting temporary server" not in r.stdout + r.stderr  # checked before Prefect starts


def test_revenue_alert_failure_posted_to_slack_has_no_secret(prefect_harness, slack_webhook, monkeypatch):
    from flows.alert import revenue_alert

    url = f"mysql+pymysql://root@127.0.0.1:{free_port()}/x?password=hunter2"
    with pytest.raises(Exception, match="cannot connect"):
        monkeypatch.setenv("BUA_DATABASE_URL", url)
        revenue_alert(window_end="2025-03-02T12:00")
    assert len(slack_webhook.texts) == 1
    text = slack_webhook.texts[0]
    assert "Revenue alert failed" in text and "password=***" in text, text
    assert "hunter2" not in text and slack_webhook.token not in text


def test_billing_flow_failure_logs_and_raises_without_secret(prefect_harness, monkeypatch, tmp_path):
    import flows.billing_ingest as bi

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("cannot reach s3://k?X-Amz-Signature=hunter2 via mysql://root:hunter2@db/x")

    monkeypatch.setattr(bi, "load_billing_csv", boom)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    loggers = [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.task_runs")]
    for lg in loggers:
        lg.addHandler(keep)
    try:
        with pytest.raises(bi.BillingIngestError) as caught:
            monkeypatch.setenv("BUA_DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
            bi.billing_csv_ingest(paths=[str(tmp_path / "b.csv")])
    finally:
        for lg in loggers:
            lg.removeHandler(keep)
    assert "hunter2" not in str(caught.value) and "X-Amz-Signature=***" in str(caught.value)
    logged = "\n".join(keep.format(r) + (r.exc_text or "") for r in records)
    assert "RuntimeError: cannot reach" in logged  # the failure is logged, redacted
    assert "hunter2" not in logged


def test_no_deployed_flow_takes_a_credential_or_the_settings_as_a_parameter():
    # the Prefect server stores and shows every flow run's parameters: the database URL (and any
    # other secret) must come from the worker's environment, so no entrypoint may accept one
    import importlib
    import inspect
    from pathlib import Path

    import yaml

    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "prefect.yaml").read_text())
    entrypoints = sorted({d["entrypoint"] for d in doc["deployments"]})
    assert len(entrypoints) >= 5, entrypoints  # bua_monthly and the four companion flows at least
    for entry in entrypoints:
        path, name = entry.split(":")
        fn = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
        for p in inspect.signature(fn.fn).parameters.values():
            text = f"{p.name}: {p.annotation}".lower()
            assert not any(w in text for w in ("database", "password", "secret", "token", "settings")), (
                entry,
                text,
            )
