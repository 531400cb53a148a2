"""Inputs a month end cannot be booked on stop it with one clear line (issue 17, item 8): a plan
in use without any tariff rate (SPEC §9: "no tariff for a whole plan" stops the run), a run date
outside the supported range."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from tasks.pipeline.spec import resolve_run
from tasks.settings import Settings
from tests.flows.conftest import R, run_monthly

pytestmark = pytest.mark.usefixtures("harness")


def _db(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.db_url.removeprefix("sqlite:///"))


def _written(settings: Settings) -> int:
    with _db(settings) as conn:
        return conn.execute("SELECT COUNT(*) FROM invoice_line_item_monthly").fetchone()[0]


def test_a_plan_without_any_rate_stops_the_run_naming_the_plan(settings):
    with _db(settings) as conn:
        plan_id, code = conn.execute(
            "SELECT p.id, p.code FROM plan p JOIN account_plan ap ON ap.plan_id = p.id "
            "GROUP BY p.id, p.code ORDER BY COUNT(*) DESC, p.id LIMIT 1"
        ).fetchone()
        conn.execute("DELETE FROM plan_rate WHERE plan_id = ?", (plan_id,))
    outcome = run_monthly(settings)
    assert outcome.error is not None
    message = str(outcome.error)
    assert "\n" not in message and "tariffs FAIL" in message and f"plan(s) {code} have no rate" in message
    assert _written(settings) == 0  # stopped before anything was written


def test_a_plan_held_only_earlier_in_the_period_without_rates_fails_the_check(settings):
    # the plan's accounts closed before the day before the run date: the day-before check cannot see
    # it, the period check does (their unbilled days up to the close could not be rated)
    from tasks.pipeline.prechecks import gather

    closed = R - dt.timedelta(days=20)
    with _db(settings) as conn:
        plan_id, code = conn.execute(
            "SELECT p.id, p.code FROM plan p JOIN account_plan ap ON ap.plan_id = p.id "
            "GROUP BY p.id, p.code ORDER BY COUNT(*) DESC, p.id LIMIT 1"
        ).fetchone()
        conn.execute("DELETE FROM plan_rate WHERE plan_id = ?", (plan_id,))
        conn.execute(
            "UPDATE account SET close_date = ? WHERE id IN (SELECT account_id FROM account_plan WHERE plan_id = ?)",
            (closed.isoformat(), plan_id),
        )
    figures = gather(resolve_run(settings, run_date=R), settings)
    assert code in figures.plans_without_rates


def test_a_run_date_out_of_range_is_one_clear_line(settings):
    outcome = run_monthly(settings, run_date=dt.date(1900, 1, 1))
    assert outcome.error is not None
    message = str(getattr(outcome.error, "cause", None) or outcome.error)
    assert message == "run date 1900-01-01 is outside 2000-01-01 … 2100-12-31"
