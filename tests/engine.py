"""How tests run a month end: the ``bua_monthly`` flow in this process (against the session's Prefect
test harness, the ``harness`` fixture), as ``bua run`` runs it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from tasks.settings import Settings

R = dt.date(2026, 11, 1)


@dataclass
class Outcome:
    result: dict[str, Any] | None
    error: BaseException | None
    states: dict[str, str]  # task run name -> final state name, as the task engine set it


def run_monthly(settings: Settings, **params: Any) -> Outcome:
    """Run ``bua_monthly`` with ``settings``; collect the task run states (and the error, if any)."""
    from flows.monthly import bua_monthly
    from flows.runtime import use_settings

    params.setdefault("run_date", R)
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    with use_settings(settings):
        try:
            result = bua_monthly(**params)
        except Exception as exc:  # noqa: BLE001 - the tests assert on it
            error = exc
    states = result["task_run_states"] if result else getattr(error, "states", {})
    return Outcome(result, error, states)


def accrue(settings: Settings, run_date: dt.date = R, **params: Any) -> dict[str, Any]:
    """A month end that must succeed: the run's report (raises the run's error, or its cause)."""
    outcome = run_monthly(settings, run_date=run_date, **params)
    if outcome.error is not None:
        raise getattr(outcome.error, "cause", None) or outcome.error
    assert outcome.result is not None
    return outcome.result
