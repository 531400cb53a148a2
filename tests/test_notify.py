"""Slack messages of the month-end run (SPEC §6): started / finished / failed, totals by state and
fuel, the failing phase with a hint, no secrets and no customer identifiers; skipped when no
webhook is configured. A local HTTP server records the webhook calls (tests/companion/conftest.py)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import polars as pl
import pytest

from tasks.settings import Settings
from tests.companion.conftest import SlackRecorder, slack_webhook  # noqa: F401 - the recording fixture
from tests.portfolio import copy_of, generated_and_loaded
from tests.test_report import customer_identifiers

R = dt.date(2026, 11, 1)
NMI = "4102001234"  # a made-up NMI quoted by a failing phase's error


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_and_loaded(tmp_path_factory.mktemp("notify"))


def assert_clean(texts: list[str], recorder: SlackRecorder, database_url: str) -> None:
    """No webhook token, no database location, no account number / NMI / serial number."""
    idents = customer_identifiers(database_url)
    for text in texts:
        assert recorder.token not in text and "services/" not in text
        assert database_url not in text and "sqlite" not in text
        for ident in idents:
            assert ident not in text, ident


def expected_breakdown(settings: Settings) -> tuple[str, int]:
    """The total accrual and the number of (state, fuel) pairs, from accrual_summary.csv."""
    csv = pl.read_csv(Path(settings.output_url) / "export" / "csv" / "2026-11-01" / "accrual_summary.csv")
    total = csv["net_amount_less_discount"].sum()
    return f"${total:,.2f}", csv.select("state", "fuel").unique().height


def report_links() -> list[str]:
    """Links of the ``bua-report`` artifacts in the API, newest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["bua-report"])),
            sort=ArtifactSort.CREATED_DESC,
        )
    return [a.data for a in arts]


def test_messages_by_hand():
    from tasks.pipeline.datasets import PhaseContext
    from tasks.pipeline.notify import failed_message, finished_message, started_message
    from tasks.pipeline.spec import resolve_run

    settings = Settings(shards=4)
    ctx = PhaseContext(resolve_run(settings, R), settings)
    assert started_message(ctx).startswith(
        ":arrow_forward: bua month-end accrual started: run_date 2026-11-01"
    )
    totals = {
        "net_amount": 150.0,
        "discount_net_propensity": 10.0,
        "net_amount_less_discount": 140.0,
        "accounts": 5,
        "exceptions": 2,
        "exceptions_by_code": {"NO_READS": 2},
        "by_state_fuel": [
            {
                "state": "NSW",
                "fuel": "ELECTRICITY",
                "accounts": 3,
                "net_amount_less_discount": 90.0,
                "volume": 1234.4,
            },
            {
                "state": "VIC",
                "fuel": "GAS",
                "accounts": 2,
                "net_amount_less_discount": 50.0,
                "volume": 2000.0,
            },
        ],
    }
    text = finished_message(ctx, totals)
    assert "Accrual $140.00 (net $150.00, discount $10.00), 5 accounts, 2 exceptions" in text
    assert "• NSW ELECTRICITY: $90.00, 3 accounts, usage 1,234 kWh" in text
    assert "• VIC GAS: $50.00, 2 accounts, usage 2,000 MJ" in text
    assert "Exceptions: NO_READS 2" in text

    failed = failed_message(ctx, ["rating[2]"], ValueError(f"implausible read of NMI {NMI}"))
    assert "Failing phase: rating[2] (ValueError)" in failed and "re-run the same run date" in failed
    assert NMI not in failed and "implausible" not in failed  # the error's text never leaves
    early = failed_message(ctx, [], ConnectionRefusedError("db.example:3306"))
    assert "Failing phase: before the first phase (ConnectionRefusedError)" in early
    assert "db.example" not in early


def test_no_webhook_configured_skips_with_a_log_line(caplog):
    from tasks.pipeline.notify import post

    with caplog.at_level(logging.INFO, logger="bua.notify"):
        assert post(Settings(slack_webhook_url=None), "hello") is False
    assert "no Slack webhook configured" in caplog.text


def test_webhook_from_aws_secrets_manager_by_name(slack_webhook, monkeypatch):  # noqa: F811
    import boto3
    from moto import mock_aws

    from tasks.pipeline.notify import post

    monkeypatch.delenv("BUA_SLACK_WEBHOOK_URL")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("secretsmanager", region_name="ap-southeast-2").create_secret(
            Name="bua/slack", SecretString=slack_webhook.url
        )
        settings = Settings(slack_webhook_secret_name="bua/slack")
        assert settings.slack_webhook_url is None
        assert post(settings, "from the secret") is True
    assert slack_webhook.texts == ["from the secret"]


def test_flow_posts_started_then_finished_and_failed_naming_the_phase(
    prefect_api_url,
    slack_webhook,  # noqa: F811
    portfolio,
    tmp_path,
    monkeypatch,
):
    from tests.engine import run_monthly

    s = copy_of(portfolio, tmp_path / "flow", task_retries=0)
    ok = run_monthly(s, run_date=R)
    assert ok.error is None, ok.error
    assert ok.states["notify"] == "Completed"
    texts = list(slack_webhook.texts)
    assert len(texts) == 2 and "started" in texts[0] and "finished" in texts[1]
    total, pairs = expected_breakdown(s)
    assert f"Accrual {total}" in texts[1] and texts[1].count("\n• ") == pairs
    # the flow also published a link artifact to this run's report (SPEC §5)
    report = Path(s.output_url) / "report" / "2026-11-01" / "report.html"
    assert report.exists() and ok.result["report"] == str(report)
    links = report_links()
    assert links and f"({report.resolve().as_uri()})" in links[0]  # [Accrual report 2026-11-01](file://…)

    # a re-run: every phase a cache hit, notify included (it composed the message from outputs that
    # did not change); the flow still posts started and the same finished message
    again = run_monthly(s, run_date=R)
    assert again.error is None and again.states["notify"] == "Cached"
    assert set(again.states.values()) == {"Cached"}
    assert slack_webhook.texts[2:] == texts

    import dataclasses

    import flows.phase_tasks

    def boom(ctx: object, **frames: object) -> None:
        raise ValueError(f"implausible read of NMI {NMI}")

    patched = [dataclasses.replace(p, fn=boom) if p.name == "rating" else p for p in flows.phase_tasks.PHASES]
    monkeypatch.setattr(flows.phase_tasks, "PHASES", patched)
    failed = run_monthly(s, run_date=R, refresh=True)
    assert failed.error is not None
    texts = slack_webhook.texts[4:]
    assert len(texts) == 2 and "started" in texts[0]
    assert "FAILED" in texts[1] and "rating[0]" in texts[1] and "(ValueError)" in texts[1]
    assert NMI not in texts[1]
    assert_clean(slack_webhook.texts, slack_webhook, s.db_url)
