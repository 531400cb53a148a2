"""Slack messages of the month-end run (SPEC §6): started, finished (totals, by state and fuel), failed.

The webhook comes from ``BUA_SLACK_WEBHOOK_URL`` (a ``SecretStr``), else the Prefect Secret block
named by ``BUA_SLACK_WEBHOOK_BLOCK``, else the AWS Secrets Manager secret named by
``BUA_SLACK_WEBHOOK_SECRET_NAME``; none configured → a log line and nothing posted. Messages carry
run parameters and aggregates only: no secrets, no customer identifiers (account ids or numbers,
NMIs, serial numbers) — a failure message names the failing phase and the exception *type* with a
hint, never the exception's text (which may quote a NMI or an account). Posting is best effort:
a Slack outage is logged as a warning and never fails or masks the accrual itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from tasks.settings import Settings

if TYPE_CHECKING:
    import polars as pl

    from tasks.pipeline.datasets import PhaseContext as Ctx

log = logging.getLogger("bua.notify")


def webhook(settings: Settings) -> SecretStr | None:
    """The Slack webhook from the setting, a Prefect Secret block or AWS Secrets Manager (by name)."""
    if settings.slack_webhook_url is not None:
        return settings.slack_webhook_url
    if settings.slack_webhook_block:
        from prefect.blocks.system import Secret

        return SecretStr(str(Secret.load(settings.slack_webhook_block).get()))
    if settings.slack_webhook_secret_name:
        import boto3

        client = boto3.client("secretsmanager", region_name=settings.aws_region)
        secret = client.get_secret_value(SecretId=settings.slack_webhook_secret_name)["SecretString"]
        return SecretStr(secret.strip())
    return None


def post(settings: Settings, text: str) -> bool:
    """Post ``text`` if a webhook is configured; never raises (logs a warning instead)."""
    from tasks.adapters.slack import SlackError, post_message

    try:
        url = webhook(settings)
    except Exception as exc:  # noqa: BLE001 - a missing secret must not fail the run
        log.warning("Slack webhook could not be resolved (%s): notification not posted", type(exc).__name__)
        return False
    if url is None:
        log.info("no Slack webhook configured (BUA_SLACK_WEBHOOK_URL): notification skipped")
        return False
    try:
        post_message(url, text)
    except SlackError as exc:
        log.warning("Slack notification not posted: %s", exc)
        return False
    return True


def _header(ctx: Ctx) -> str:
    what_if = "" if not ctx.scenario else f", WHAT-IF scenario {ctx.scenario} (not booked)"
    return (
        f"run_date {ctx.run_date.isoformat()} (period {ctx.period_start.isoformat()} to "
        f"{ctx.period_end.isoformat()}, basic method {ctx.basic_method}{what_if}, run {ctx.run_id[:8]})"
    )


def started_message(ctx: Ctx) -> str:
    return f":arrow_forward: bua month-end accrual started: {_header(ctx)}"


def _money(x: float) -> str:
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


UNITS = {"ELECTRICITY": "kWh", "GAS": "MJ"}


def finished_message(ctx: Ctx, totals: dict[str, Any]) -> str:
    """Totals and a breakdown by state and fuel (aggregates from :func:`run_totals`)."""
    lines = [
        f":white_check_mark: bua month-end accrual finished: {_header(ctx)}",
        f"Accrual {_money(totals['net_amount_less_discount'])} (net {_money(totals['net_amount'])}, "
        f"discount {_money(totals['discount_net_propensity'])}), {totals['accounts']:,} accounts, "
        f"{totals['exceptions']:,} exceptions",
        "By state and fuel:",
    ]
    for r in totals["by_state_fuel"]:
        unit = UNITS.get(r["fuel"] or "", "")
        lines.append(
            f"• {r['state'] or '-'} {r['fuel'] or '-'}: {_money(r['net_amount_less_discount'])}, "
            f"{r['accounts']:,} accounts, usage {r['volume']:,.0f} {unit}".rstrip()
        )
    if totals["exceptions_by_code"]:
        lines.append(
            "Exceptions: " + ", ".join(f"{k} {v:,}" for k, v in totals["exceptions_by_code"].items())
        )
    return "\n".join(lines)


HINTS = {
    "DatabaseError": "check that the billing database (BUA_DATABASE_URL) is reachable and migrated (bua db init)",
    "OperationalError": "check that the billing database (BUA_DATABASE_URL) is reachable",
    "MeterStoreError": "check the meter store (BUA_METER_STORE): shards and files as ingested",
    "RunLocked": "another run of this run date holds the lock: wait for it to finish",
    "LockLost": "another run took this run's lock over (it stalled past its lease): re-run when that one ends",
    "InjectedFault": "a failure injected by BUA_TEST_FAULT (tests): unset it",
    "PrecheckFailed": "a pre-run check failed (see the bua_precheck table, the run's artifact or `bua check`): "
    "nothing was written; fix the inputs, or re-run with force to book anyway",
}
RESUME = "Fix the cause and re-run the same run date (or Retry the flow run): finished phases are cached."


def failed_message(ctx: Ctx, phases: list[str], error: BaseException | None) -> str:
    """The failing phase(s), the exception type and a hint; never the exception's own text."""
    kind = type(error).__name__ if error is not None else "unknown error"
    hint = HINTS.get(kind, "see the flow run's logs in the Prefect UI (or the CLI output) for the cause")
    where = (
        ", ".join(phases[:10]) + (" …" if len(phases) > 10 else "") if phases else "before the first phase"
    )
    return (
        f":x: bua month-end accrual FAILED: {_header(ctx)}\n"
        f"Failing phase: {where} ({kind})\nHint: {hint}. {RESUME}"
    )


def run_totals(frames: dict[str, pl.DataFrame]) -> dict[str, Any]:
    """Totals of a run from its aggregates (:func:`tasks.pipeline.report.totals_frames`: no row
    leaves the database): by state and fuel, accounts, exceptions by code."""
    from tasks.pipeline.report import MONEY

    accounts = {(s, f): n for s, f, n in frames["accounts_by_state_fuel"].iter_rows()}
    by_code = dict(frames["exceptions_by_code"].iter_rows())
    breakdown = [
        {
            "state": r["state"],
            "fuel": r["fuel"],
            "accounts": int(accounts.get((r["state"], r["fuel"]), 0)),
            **{m: float(r[m] or 0) for m in (*MONEY, "volume")},
        }
        for r in frames["by_state_fuel"].iter_rows(named=True)  # one row per state and fuel
    ]
    return {
        **{m: round(sum(b[m] for b in breakdown), 2) for m in MONEY},
        "accounts": int(sum(accounts.values())),
        "exceptions": int(sum(by_code.values())),
        "exceptions_by_code": {str(k): int(v) for k, v in by_code.items()},
        "by_state_fuel": breakdown,
    }


def notify_started(ctx: Ctx) -> bool:
    return post(ctx.settings, started_message(ctx))


def notify_failed(ctx: Ctx, phases: list[str], error: BaseException | None) -> bool:
    return post(ctx.settings, failed_message(ctx, phases, error))


def configured(settings: Settings) -> bool:
    """Whether any webhook source is set (without resolving it)."""
    return bool(
        settings.slack_webhook_url or settings.slack_webhook_block or settings.slack_webhook_secret_name
    )


def notify_finished(ctx: Ctx, message: str | None) -> bool:
    """Post the "finished" message the ``notify`` phase composed."""
    return post(ctx.settings, message) if message else False
