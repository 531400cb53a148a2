"""`bua demo` on a fresh folder, twice: it succeeds both times and prints the same accrual."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.mark.slow
def test_demo_runs_twice_with_the_same_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.cli_run
    from flows.cli import app
    from tasks.pipeline.accrual import run_accrual

    # the Prefect flow path of `bua run` is tested by the orchestration tests; here the demo's own steps
    monkeypatch.setattr(
        flows.cli_run, "run_month_end", lambda settings, day, *a: run_accrual(settings, day, *a)
    )
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("BUA_")]:
        monkeypatch.delenv(var)
    runner = CliRunner()
    first = runner.invoke(app, ["--shards", "2", "demo", "--accounts", "60"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["--shards", "2", "demo", "--accounts", "60"], catch_exceptions=False)
    assert second.exit_code == 0, second.output

    def totals(out: str) -> str:
        line = next(x for x in out.splitlines() if "total" in x and "$" not in x and re.search(r"\d", x))
        return re.sub(r"\s+", " ", line)

    assert totals(first.output) == totals(second.output)
    assert "accounts" in first.output and "CSV: .bua/out/export/csv/2026-11-01/" in first.output
    assert (tmp_path / ".bua" / "out" / "export" / "csv" / "2026-11-01" / "accrual_summary.csv").exists()
