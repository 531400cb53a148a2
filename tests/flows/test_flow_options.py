"""Run parameters: ``backtest_months`` reaches only the validation phase's key (a run with another
back-test recomputes validation and what reads it, nothing else); `bua run` checks its options
before any Prefect machinery starts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tasks.pipeline.spec import RunParameterError, resolve_run
from tasks.settings import Settings
from tests.flows.conftest import R, run_monthly


def test_backtest_months_is_a_run_parameter_checked_up_front() -> None:
    s = Settings()
    assert resolve_run(s, R).backtest_months == 1
    assert resolve_run(s, R, backtest_months=3).backtest_months == 3
    assert resolve_run(s.model_copy(update={"backtest_months": 4}), R).backtest_months == 4
    for bad in (0, 12):
        with pytest.raises(RunParameterError, match="backtest_months must be 1 to 11"):
            resolve_run(s, R, backtest_months=bad)
    # the run_id (on every output row) does not depend on the back-test: the same accrual
    assert resolve_run(s, R, backtest_months=3).run_id == resolve_run(s, R).run_id


@pytest.mark.usefixtures("harness")
def test_another_backtest_recomputes_only_validation_and_what_reads_it(settings: Settings) -> None:
    first = run_monthly(settings)
    assert first.error is None, first.error
    again = run_monthly(settings, backtest_months=2)
    assert again.error is None, again.error
    computed = {name for name, state in again.states.items() if state == "Completed"}
    assert computed == {"validation", "report"}, computed
    assert again.result["backtest"][0]["backtest_date"] == "2026-09-01"


def test_bua_run_checks_options_before_prefect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import flows.cli_run as cli_run
    from flows.cli import app

    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(cli_run, "run_month_end", lambda settings, **p: seen.append(p) or {})
    monkeypatch.setattr(cli_run, "print_summary", lambda *a: None)
    url = ["--database-url", f"sqlite:///{tmp_path}/bua.db"]
    args = [*url, "run", "--run-date", R.isoformat()]
    # before `bua db init` the run stops with a hint, before Prefect starts
    out = CliRunner().invoke(app, [*args, "--backtest-months", "3"])
    assert out.exit_code == 1 and "bua db init" in out.output and not seen, out.output
    assert CliRunner().invoke(app, [*url, "db", "init"]).exit_code == 0
    done = CliRunner().invoke(app, [*args, "--backtest-months", "3"])
    assert done.exit_code == 0, done.output
    assert seen[-1]["backtest_months"] == 3 and seen[-1]["run_date"] == dt.date(2026, 11, 1)
    out = CliRunner().invoke(app, [*args, "--backtest-months", "0"])
    assert out.exit_code == 2 and "--backtest-months" in out.output and len(seen) == 1
    out = CliRunner().invoke(app, [*args, "--period-start", "2026-11-05"])
    assert (
        out.exit_code == 2 and "error: period_start 2026-11-05 is after period_end 2026-10-31" in out.output
    )
    out = CliRunner().invoke(app, [*args, "--scenario", "Bad Name!"])
    assert out.exit_code == 2 and "scenario 'Bad Name!'" in out.output and len(seen) == 1
