"""Fixtures of the orchestration tests: one Prefect harness, a tiny source, a flow-run helper."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tasks.settings import Settings

FAKE = "tests.flows.fake_pipeline"


@pytest.fixture(scope="session")
def harness(prefect_api_url: str) -> str:
    """The session's Prefect test harness (tests/conftest.py); its PREFECT_API_URL."""
    return prefect_api_url


def make_settings(root: Path, **overrides: Any) -> Settings:
    from tasks.adapters.db import init_db

    url = f"sqlite:///{root}/bua.db"
    init_db(url)
    base: dict[str, Any] = {
        "database_url": url,
        "meter_store": str(root / "meter-store"),
        "output_url": str(root / "out"),
        "shards": 4,
        "max_workers": 4,
        "task_retries": 1,
        "task_retry_delay_seconds": 0.01,
        "pipeline": FAKE,
    }
    return Settings(**{**base, **overrides})


@pytest.fixture
def fake_settings(tmp_path: Path) -> Settings:
    from tests.flows.fake_pipeline import make_source

    settings = make_settings(tmp_path / "a")
    make_source(settings)
    return settings


def copy_source(settings: Settings, root: Path, **overrides: Any) -> Settings:
    """The same source (same meter-store bytes) under a second root, for byte comparisons."""
    import shutil

    other = make_settings(root, **{"pipeline": settings.pipeline, "shards": settings.shards, **overrides})
    shutil.copytree(settings.meter_store, other.meter_store)
    return other


@dataclass
class Outcome:
    result: dict[str, Any] | None
    error: BaseException | None
    states: dict[str, str]  # phase task run name -> final state name, as the task engine set it


def run_monthly(settings: Settings, **params: Any) -> Outcome:
    """Run ``bua_monthly`` in this process with ``settings``; collect the task run states."""
    from flows.glue import use_settings
    from flows.monthly import bua_monthly

    params.setdefault("run_date", __import__("datetime").date(2026, 11, 1))
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    with use_settings(settings):
        try:
            result = bua_monthly(**params)
        except Exception as exc:  # noqa: BLE001 - the tests assert on it
            error = exc
    states = result["task_run_states"] if result else getattr(error, "states", {})
    return Outcome(result, error, {k: v for k, v in states.items() if k not in FINGERPRINT_TASKS})


# Never cached by design (cheap input fingerprints); every other task run is a phase.
FINGERPRINT_TASKS = {"database-fingerprint", "meter-store-fingerprint"}


def latest_phase_states() -> dict[str, str]:
    """The states of the latest phases subflow's task runs as the API has them (it records them
    asynchronously: call after the run has finished and settled)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["accrual-phases"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
        if not runs:
            return {}
        flt = FlowRunFilter(id=FlowRunFilterId(any_=[runs[0].id]))
        tasks: list[Any] = []
        while True:
            page = client.read_task_runs(
                flow_run_filter=flt, sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200, offset=len(tasks)
            )
            tasks.extend(page)
            if len(page) < 200:
                break
    return {t.name: t.state.name for t in tasks if t.state is not None}


def settled_phase_states(expected: int, timeout: float = 60.0) -> dict[str, str]:
    """The API's states of the latest phases subflow once all ``expected`` task runs are final."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        states = latest_phase_states()
        final = all(s not in ("Pending", "Running", "Scheduled", "Retrying") for s in states.values())
        if (len(states) == expected and final) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def output_digests(settings: Settings) -> dict[str, str]:
    """sha256 of every output file (work files, tables, exports), by path relative to the output root."""
    root = Path(settings.output_url)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "prefect-results" not in p.parts
    }
