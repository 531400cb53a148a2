"""`bua demo` as a user runs it (the README's first command): a subprocess in a fresh folder with no
Prefect server configured (a temporary one is started and stopped), then again against a running
server; both succeed and print the same accrual."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _bua(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("bua", path=str(Path(sys.executable).parent))
    assert exe, "the bua console script is installed with the package"
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_demo_runs_twice_with_the_same_summary(tmp_path: Path, harness: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUA_", "PREFECT_API"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false", COLUMNS="200"
    )
    first = _bua(tmp_path, env, "--shards", "2", "demo", "--accounts", "60")
    assert first.returncode == 0, first.stdout + first.stderr
    second = _bua(tmp_path, {**env, "PREFECT_API_URL": harness}, "--shards", "2", "demo", "--accounts", "60")
    assert second.returncode == 0, second.stdout + second.stderr

    def totals(out: str) -> str:
        line = next(x for x in out.splitlines() if "total" in x and "$" not in x and re.search(r"\d", x))
        return re.sub(r"\s+", " ", line)

    assert totals(first.stdout) == totals(second.stdout)
    assert "accounts" in first.stdout and "CSV: .bua/out/export/csv/2026-11-01/" in first.stdout
    assert (tmp_path / ".bua" / "out" / "export" / "csv" / "2026-11-01" / "accrual_summary.csv").exists()
    # the temporary server of the first run is gone with it
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path / "prefect-home") not in ps
