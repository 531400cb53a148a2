"""Revenue alert flow (SPEC §7.3): every 6 hours, the revenue of the window just ended, to Slack.

The body reads like the job: find the window, read its payments, summarise, post. A failure of
any step posts an error message to Slack through the flow's ``on_failure`` hook; the error text
is stripped of URLs' credentials and of the webhook itself before it leaves.
"""

from __future__ import annotations

import logging
from typing import Any

import polars as pl
from prefect import flow, get_run_logger
from pydantic import SecretStr

from flows.runtime import current_settings
from tasks.adapters.db import read_sql, redact_url, require_tables
from tasks.adapters.slack import SlackError, post_message
from tasks.companion.revenue_alert import (
    NETWORK_SCHEMA,
    PAYMENT_SCHEMA,
    Window,
    attach_network,
    failure_message,
    revenue_message,
    summarise,
    window_ending,
)
from tasks.redact import redact
from tasks.settings import Settings

SOURCE_TABLES = ("payment", "account_site", "site", "network")


def slack_webhook(settings: Settings) -> SecretStr | None:
    """The webhook from BUA_SLACK_WEBHOOK_URL, else from the Prefect Secret block named in settings."""
    if settings.slack_webhook_url is not None:
        return settings.slack_webhook_url
    if settings.slack_webhook_block:
        from prefect.blocks.system import Secret

        return SecretStr(str(Secret.load(settings.slack_webhook_block).get()))
    return None


def scrub(text: str, settings: Settings) -> str:
    """``text`` without the webhook URL and without any credential form (tasks.redact)."""
    webhook = settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else None
    if webhook:
        text = text.replace(webhook, "<slack webhook>")
    return redact(text)


def _alert_window(window_end: str | None, settings: Settings) -> Window:
    moment: Any = window_end
    if moment is None:
        from prefect.runtime import flow_run

        moment = flow_run.scheduled_start_time  # a late run still reports the window it was scheduled for
    return window_ending(moment, settings.alert_timezone or settings.timezone)


def _post_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure hook: tell the channel the alert did not run (never raises)."""
    settings = current_settings()
    try:
        window = _alert_window((flow_run.parameters or {}).get("window_end"), settings)
    except Exception:  # noqa: BLE001 - the window itself may be what failed
        window = None
    error = scrub(str(state.message or "unknown error"), settings)
    webhook = slack_webhook(settings)
    if webhook is None:
        return
    try:
        post_message(webhook, failure_message(window, error))
    except SlackError as exc:
        logging.getLogger("bua.alert").error("could not post the failure message to Slack: %s", exc)


@flow(name="revenue-alert", on_failure=[_post_failure])
def revenue_alert(window_end: str | None = None) -> dict[str, Any]:
    """Post the revenue of the 6-hour window ending at ``window_end`` (default: the scheduled time)."""
    settings = current_settings()
    logger = get_run_logger()
    window = _alert_window(window_end, settings)
    require_tables(settings.db_url, SOURCE_TABLES)
    payments = read_sql(
        settings.db_url,
        "companion_alert_payments",
        {"start_utc": window.start_utc, "end_utc": window.end_utc},
        schema={
            "id": pl.Int64,
            "account_id": pl.Int64,
            **{k: v for k, v in PAYMENT_SCHEMA.items() if k != "network"},
        },
    )
    networks = read_sql(settings.db_url, "companion_account_network", schema=NETWORK_SCHEMA)
    summary = summarise(
        attach_network(payments, networks),
        window,
        settings.successful_payment_statuses,
        settings.write_off_method,
    )
    text = revenue_message(summary)
    webhook = slack_webhook(settings)
    if webhook is None:
        logger.warning(
            "no Slack webhook configured (BUA_SLACK_WEBHOOK_URL / BUA_SLACK_WEBHOOK_BLOCK): not posted"
        )
    else:
        post_message(webhook, text)
        logger.info("revenue alert posted for %s (%s)", window.label(), redact_url(settings.db_url))
    return {
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "total": round(summary.total, 2),
        "count": summary.count,
        "by_network": summary.by_network,
        "bad_amounts": summary.bad_amounts,
        "message": text,
        "posted": webhook is not None,
    }
