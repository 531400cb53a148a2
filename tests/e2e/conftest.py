"""Fixtures of the end-to-end tests: one real `prefect server` per test session with bua deployed
on a process pool exactly as docs/DEPLOY.md says, and generated portfolios made with the CLI."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.procs import (
    BIN,
    Server,
    clean_env,
    deploy_as_documented,
    pause_other_schedules,
    run,
    start_server,
)

ACCOUNTS = 200
SHARDS = 4


@pytest.fixture(scope="session")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`prefect server start` + `prefect work-pool create bua --type process` +
    `python -m deployments.deploy`; companion deployments paused (their schedules must not fire
    into the tests' workers). Logs under the session's temp dir."""
    base = tmp_path_factory.mktemp("prefect-e2e")
    server = start_server(base)
    try:
        deploy_as_documented(server, "process")
        pause_other_schedules(server, keep={"bua-monthly", "bua-adhoc"})
        yield server
    finally:
        server.proc.stop()


def bua_cli(args: list[str], env: dict[str, str], log: Path) -> str:
    """The `bua` command of this venv (the one users run), as a subprocess."""
    return run([str(BIN / "bua"), *args], clean_env(**env), log, timeout=900)


def make_portfolio(base: Path, env: dict[str, str], accounts: int = ACCOUNTS, seed: int = 11) -> str:
    """`bua generate --accounts N --load` into env's BUA_DATABASE_URL, then `bua ingest nem12` and
    `bua ingest nem13` into its BUA_METER_STORE; returns the commands' output (for secret scans)."""
    log = base / "cli.log"
    portfolio = base / "portfolio"
    out = bua_cli(
        ["generate", "--accounts", str(accounts), "--seed", str(seed), "--out", str(portfolio), "--load"],
        env,
        log,
    )
    out += bua_cli(["ingest", "nem12", str(portfolio / "nem12")], env, log)
    if any((portfolio / "nem13").iterdir()):
        out += bua_cli(["ingest", "nem13", str(portfolio / "nem13")], env, log)
    shutil.rmtree(portfolio)
    return out


def local_copy(loaded: Path, root: Path) -> dict[str, str]:
    """A copy of a loaded SQLite portfolio (``bua.db``, ``ms/``) at ``root``: its BUA_* paths."""
    shutil.copytree(loaded, root, ignore=shutil.ignore_patterns("cli.log", "out"))
    return {
        "BUA_DATABASE_URL": f"sqlite:///{root}/bua.db",
        "BUA_METER_STORE": str(root / "ms"),
        "BUA_OUTPUT_URL": str(root / "out"),
    }


def digests(root: Path) -> dict[str, str]:
    """sha256 of every published file (exports, NEM12 estimates, report) under ``root``, by relative
    path — as tests/flows/conftest.py's output_digests (work files and manifests carry run identity)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] in ("export", "nem12", "report")
    }
