"""Fixtures of the orchestration tests: one Prefect harness, a small generated portfolio loaded
once, a helper that runs ``bua_monthly`` in this process and collects its task run states."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path

import pytest

from tasks.settings import Settings
from tests.engine import Outcome, run_monthly
from tests.portfolio import copy_of, generated_and_loaded

R = dt.date(2026, 11, 1)
OUTPUT_TABLES = (
    "invoice_line_item_monthly", "bua_account_summary", "accrual_summary", "bua_exception",
    "estimated_basic_read", "bua_backtest", "bua_trueup",
)  # fmt: skip


@pytest.fixture(scope="session")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 150-account portfolio generated, loaded into SQLite and ingested into a 4-shard store, once."""
    return generated_and_loaded(tmp_path_factory.mktemp("loaded"), accounts=150)


@pytest.fixture
def settings(loaded: Path, tmp_path: Path) -> Settings:
    """Settings on a private copy of the loaded portfolio (4 shards, 2 workers)."""
    return copy_of(loaded, tmp_path / "run")


def output_digests(settings: Settings) -> dict[str, str]:
    """sha256 of every published file (exports, NEM12 estimates, report) by path under the output root."""
    root = Path(settings.output_url)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.parts[len(root.parts)] in ("export", "nem12", "report")
    }


def output_rows(settings: Settings, run_date: dt.date = R, scenario: str = "") -> dict[str, list[tuple]]:
    """The rows of the run date's booked run (or a scenario) in every output table (run_id included), sorted."""
    path = settings.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t} WHERE run_date = ? AND scenario = ?",
                                       (run_date.isoformat(), scenario)).fetchall(), key=repr)
                for t in OUTPUT_TABLES}  # fmt: skip


def phase_of(task_run_name: str) -> str:
    return task_run_name.split("[", 1)[0]


__all__ = ["R", "Outcome", "copy_of", "output_digests", "output_rows", "phase_of", "run_monthly"]
