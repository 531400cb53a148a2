"""`bua run --backtest-months`, the flow's ``backtest_months`` parameter, and the phases' declared
extra cache-key inputs (flows/fingerprints.py EXTRA_KEY_INPUTS)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tasks.settings import Settings
from tests.flows.conftest import make_settings

R = dt.date(2026, 11, 1)


def key(spec: Any, phase: str) -> str:
    from flows.fingerprints import phase_cache_key

    return phase_cache_key(None, {"spec": spec, "phase": phase, "inputs": {}})


def test_backtest_months_reaches_the_spec_and_only_the_validation_key(tmp_path: Path) -> None:
    from flows.glue import resolve_run

    s = make_settings(tmp_path)  # an empty database: no previous run
    default = resolve_run(s, R, None, None, None, None)
    three = resolve_run(s, R, None, None, None, None, backtest_months=3)
    assert default.settings.backtest_months == 1 and three.settings.backtest_months == 3
    assert key(three, "validation") != key(default, "validation")
    # the accrual's phases and what only depends on validation's files keep their keys
    for phase in ("extract", "rating", "prepare", "export", "report", "notify"):
        assert key(three, phase) == key(default, phase), phase
    # the same through the settings (BUA_BACKTEST_MONTHS): the same key as the parameter
    via_settings = resolve_run(s.model_copy(update={"backtest_months": 3}), R, None, None, None, None)
    assert key(via_settings, "validation") == key(three, "validation")
    for bad in (0, 12):
        with pytest.raises(ValueError, match="backtest_months must be 1 to 11"):
            resolve_run(s, R, None, None, None, None, backtest_months=bad)


def test_extra_key_inputs_are_declared_per_phase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows import fingerprints
    from flows.glue import resolve_run

    # validation is the only phase with extra key inputs: the previous run and the back-test settings
    assert set(fingerprints.EXTRA_KEY_INPUTS) == {"validation"}
    spec = resolve_run(make_settings(tmp_path), R, None, None, None, None)
    # no run before R in the empty database -> []; the settings' defaults 1 month, 5,000 registers
    assert fingerprints.extra_key_parts("validation", spec) == {
        "previous_run": [],
        "backtest": {"backtest_months": 1, "backtest_registers": 5000},
    }
    assert fingerprints.extra_key_parts("rating", spec) == {}
    # a phase that declares a part: its key follows the part's value, the others' keys do not move
    before = {p: key(spec, p) for p in ("rating", "export", "validation")}
    value = {"v": 1}
    monkeypatch.setitem(fingerprints.EXTRA_KEY_INPUTS, "rating", {"tariffs": lambda spec: value["v"]})
    with_part = key(spec, "rating")
    assert with_part != before["rating"]
    assert key(spec, "export") == before["export"] and key(spec, "validation") == before["validation"]
    value["v"] = 2
    assert key(spec, "rating") not in (with_part, before["rating"])


@pytest.mark.usefixtures("harness")
def test_flow_parameter_changes_no_other_phase(fake_settings: Settings) -> None:
    """The fake pipeline has no validation phase: a run with another back-test is all cache hits."""
    from tests.flows.conftest import run_monthly

    first = run_monthly(fake_settings)
    assert first.error is None, first.error
    again = run_monthly(fake_settings, backtest_months=4)
    assert again.error is None, again.error
    assert set(again.states.values()) == {"Cached"}
    bad = run_monthly(fake_settings, backtest_months=12)
    assert isinstance(bad.error, ValueError) and "backtest_months" in str(bad.error)


def test_bua_run_backtest_months_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import flows.cli_run as cli_run
    from flows.cli import app

    seen: list[Settings] = []
    monkeypatch.setattr(cli_run, "run_month_end", lambda settings, *a: seen.append(settings))
    monkeypatch.setattr(cli_run, "print_summary", lambda result, settings: None)
    args = ["--database-url", f"sqlite:///{tmp_path}/bua.db", "run", "--run-date", R.isoformat()]
    env = {"BUA_BACKTEST_MONTHS": "2"}
    assert CliRunner().invoke(app, [*args, "--backtest-months", "3"], env=env).exit_code == 0
    assert CliRunner().invoke(app, args, env=env).exit_code == 0  # without the option: the environment's
    assert [s.backtest_months for s in seen] == [3, 2]
    out = CliRunner().invoke(app, [*args, "--backtest-months", "0"])
    assert out.exit_code == 2 and "--backtest-months" in out.output and seen[2:] == []
    assert "--backtest-months" in CliRunner().invoke(app, ["run", "--help"]).output
