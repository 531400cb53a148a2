"""bua_monthly and the run lock: a second run of the same run date refuses while the first holds it;
a dead attempt's lease is taken over and the dead attempt is recorded FAILED."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from tasks.adapters.run_lock import RunLocked, run_lock, try_acquire
from tests.flows.conftest import R, run_monthly

pytestmark = pytest.mark.usefixtures("harness")


def rows(settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.db_url.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql).fetchall()


def test_a_second_run_of_the_same_date_refuses_and_writes_nothing(settings):
    with run_lock(settings.db_url, f"run-{R}", "other-operator", lease_seconds=60):
        second = run_monthly(settings)
    assert isinstance(second.error, RunLocked)
    assert "refusing to interleave writes" in str(second.error)
    assert rows(settings, "SELECT COUNT(*) FROM invoice_line_item_monthly") == [(0,)]
    assert rows(settings, "SELECT COUNT(*) FROM bua_run_attempt") == [(0,)]
    # another run date is not held
    other = run_monthly(settings, run_date=dt.date(2026, 10, 1))
    assert other.error is None, other.error


def test_a_dead_attempts_lease_is_taken_over_and_it_is_recorded_failed(settings):
    url = settings.db_url
    assert try_acquire(url, f"run-{R}", "dead-attempt", 2) is not None  # a holder that never beats again
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "INSERT INTO bua_run_attempt (attempt_id, run_id, run_date, scenario, holder, status, started_at) "
            "VALUES ('dead-attempt', 'some-run', ?, '', 'elsewhere:1', 'RUNNING', '2026-11-01 02:00:00')",
            (R.isoformat(),),
        )
    import time

    time.sleep(3.1)
    outcome = run_monthly(settings)
    assert outcome.error is None, outcome.error
    attempts = dict(rows(settings, "SELECT attempt_id, status FROM bua_run_attempt"))
    assert attempts.pop("dead-attempt") == "FAILED"
    assert list(attempts.values()) == ["COMPLETED"]
    detail = rows(settings, "SELECT detail FROM bua_run_attempt WHERE attempt_id = 'dead-attempt'")[0][0]
    assert detail.startswith("lease expired (holder gone); taken over by attempt ")
    assert rows(settings, "SELECT status FROM bua_run") == [("COMPLETED",)]
