"""bua as a user deploys it: a real `prefect server start`, `prefect worker start --pool bua --type
process` from the checkout, deployments from prefect.yaml exactly as docs/DEPLOY.md says, settings
in the worker's environment (BUA_DATABASE_URL, BUA_METER_STORE, BUA_OUTPUT_URL), a portfolio made
with `bua generate --load` and `bua ingest`. Shows: the scheduler service creates bua-monthly's runs
at 02:00 on the 1st in Australia/Sydney; an ad-hoc run with parameters completes; a run with a
failed shard is resumed by the UI's Retry (and by `prefect flow-run retry`) with every finished
phase a cache hit and the outputs byte-identical to an uninterrupted run."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import SHARDS, digests, local_copy, make_portfolio
from tests.e2e.faults import Fault
from tests.e2e.procs import BIN, Proc, Server, run, start_worker, wait_for

pytestmark = pytest.mark.slow

RUN_DATE = "2026-11-01"
SYDNEY = ZoneInfo("Australia/Sydney")
FINGERPRINT_TASKS = {"database-fingerprint", "meter-store-fingerprint"}  # never cached, by design


def phase_names(shards: int = SHARDS) -> set[str]:
    """Every phase task run of one run: tasks.pipeline.graph.PHASES, per-shard ones as name[shard]."""
    from tasks.pipeline.graph import PHASES

    return {
        f"{p.name}[{i}]" if p.per_shard else p.name
        for p in PHASES
        for i in (range(shards) if p.per_shard else [0])
    }


@pytest.fixture(scope="module")
def site(e2e_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A 200-account portfolio loaded once (SQLite + local meter store), a copy of it as the
    worker's configuration, and the worker."""
    base = tmp_path_factory.mktemp("e2e-site")
    loaded = base / "loaded"
    loaded.mkdir()
    common = {"BUA_SHARDS": str(SHARDS), "BUA_MAX_WORKERS": "2"}
    make_portfolio(
        loaded,
        {
            **common,
            "BUA_DATABASE_URL": f"sqlite:///{loaded}/bua.db",
            "BUA_METER_STORE": str(loaded / "ms"),
            "BUA_OUTPUT_URL": str(loaded / "out"),
        },
    )
    reference = local_copy(loaded, base / "reference")
    env = {
        **common,
        **reference,
        "BUA_TASK_RETRIES": "0",  # an injected failure fails at once (retries would fail the same way)
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # pick up runs within a second (default 10 s)
    }
    worker = start_worker(e2e_server, base, env)
    try:
        yield {"base": base, "loaded": loaded, "reference": reference, "worker": worker}
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def adhoc_reference(e2e_server: Server, site: dict[str, Any]) -> dict[str, Any]:
    """One uninterrupted ad-hoc run of bua-adhoc with parameters, on the worker's own settings."""
    run_id = e2e_server.create_flow_run(
        "bua_monthly/bua-adhoc", {"run_date": RUN_DATE, "basic_method": "seasonal"}
    )
    fr = e2e_server.wait_final(run_id, timeout=900)
    return {"id": run_id, "flow_run": fr, "out": Path(site["reference"]["BUA_OUTPUT_URL"])}


def test_the_ui_is_told_where_the_api_is(e2e_server: Server):
    """Not on the default port, the UI finds the API only through PREFECT_UI_API_URL (DEPLOY.md)."""
    r = e2e_server.client.get(f"http://127.0.0.1:{e2e_server.port}/ui-settings")
    r.raise_for_status()
    assert r.json()["api_url"] == e2e_server.api_url


def test_deployments_carry_the_pull_step_that_finds_the_code(e2e_server: Server):
    for name in ("bua_monthly/bua-monthly", "bua_monthly/bua-adhoc"):
        dep = e2e_server.deployment(name)
        assert dep["pull_steps"] == [{"deployments.steps.enter_code_dir": {}}], dep["pull_steps"]
        assert dep["entrypoint"] == "flows/monthly.py:bua_monthly" and dep["work_pool_name"] == "bua"


def test_scheduler_creates_monthly_runs_at_0200_on_the_first_in_sydney(e2e_server: Server):
    """The server's scheduler service (not the deploy) creates bua-monthly's next runs: every one at
    02:00 Australia/Sydney on the 1st of consecutive months, the first the next 1st after now."""
    dep = e2e_server.deployment("bua_monthly/bua-monthly")
    body = {
        "deployments": {"id": {"any_": [dep["id"]]}},
        "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
        "sort": "EXPECTED_START_TIME_ASC",
    }
    # Prefect schedules at least 3 runs ahead (PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS)
    runs = wait_for(
        "3 scheduled bua-monthly runs",
        lambda: (r := e2e_server.post("/flow_runs/filter", body)) and len(r) >= 3 and r,
        120,
    )
    local = [dt.datetime.fromisoformat(r["expected_start_time"]).astimezone(SYDNEY) for r in runs]
    assert all((t.day, t.hour, t.minute, t.second) == (1, 2, 0, 0) for t in local), local
    months = [(t.year, t.month) for t in local]
    assert all(
        (b[0] * 12 + b[1]) - (a[0] * 12 + a[1]) == 1 for a, b in zip(months, months[1:], strict=False)
    ), months
    now = dt.datetime.now(SYDNEY)
    first = now.replace(day=1, hour=2, minute=0, second=0, microsecond=0)
    if first <= now:  # the next 1st at 02:00 after now
        first = (first + dt.timedelta(days=32)).replace(day=1)
    assert local[0] == first, (local[0], first)
    for r in runs:
        assert r["auto_scheduled"] is True and r["parameters"] == {}
        assert (r.get("created_by") or {}).get("type") in (None, "SCHEDULE")
        assert r["state"]["name"] == "Scheduled"


def test_adhoc_run_with_parameters_completes(adhoc_reference: dict[str, Any], e2e_server: Server, site):
    fr = adhoc_reference["flow_run"]
    assert fr["state"]["type"] == "COMPLETED", (fr["state"], site["worker"].tail())
    assert fr["parameters"] == {"run_date": RUN_DATE, "basic_method": "seasonal"}
    states = e2e_server.latest_states(adhoc_reference["id"], phase_names())
    assert states.keys() == phase_names() and set(states.values()) == {"Completed"}, states
    out = adhoc_reference["out"]  # the worker's BUA_OUTPUT_URL: settings reached the flow run
    assert (out / "report" / RUN_DATE / "report.html").is_file()
    assert any(p.name.startswith("accrual_summary") for p in (out / "export" / "csv" / RUN_DATE).iterdir())
    db = site["reference"]["BUA_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT run_date, status FROM bua_run").fetchall()
    assert [(str(d)[:10], s) for d, s in rows] == [(RUN_DATE, "COMPLETED")]


def output_rows(database_url: str) -> dict[str, list[tuple]]:
    """Every output table's rows, sorted — bua_run aside (its timestamps differ) and bua_precheck
    without checked_at (each attempt records when it checked; the checks' figures must match)."""
    from sql.schema import OUTPUT_TABLES, bua_precheck

    timeless = ", ".join(f'"{c.name}"' for c in bua_precheck.columns if c.name != "checked_at")
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
        return {
            t: sorted(
                conn.execute(f"SELECT {timeless if t == 'bua_precheck' else '*'} FROM {t}").fetchall(),
                key=repr,
            )
            for t in OUTPUT_TABLES
            if t != "bua_run"
        }


@pytest.mark.parametrize("how", ["ui", "cli"])
def test_failed_shard_then_retry_resumes_from_cache_with_identical_outputs(
    how: str, e2e_server: Server, site: dict[str, Any], adhoc_reference: dict[str, Any], tmp_path: Path
):
    """rating shard 1 fails (tests/e2e/faults.py); the fault is switched off; the run is retried the
    way the UI's Retry button does it (or `prefect flow-run retry`). In the retry every phase that
    had finished is a cache hit (Cached), rating[1] and what depends on it run (Completed), and every
    output file and row equals the uninterrupted run's."""
    assert adhoc_reference["flow_run"]["state"]["type"] == "COMPLETED"
    paths = local_copy(site["loaded"], tmp_path / "copy")  # the same source, its own output
    fault = Fault("rating:1", tmp_path / "fault-sentinel")
    fault.arm()
    run_id = e2e_server.create_flow_run(
        "bua_monthly/bua-adhoc",
        {"run_date": RUN_DATE, "basic_method": "seasonal"},
        job_variables={"env": {**paths, **fault.env()}},
    )
    failed = e2e_server.wait_final(run_id, timeout=900)
    assert failed["state"]["type"] == "FAILED", (failed["state"], site["worker"].tail())
    first = e2e_server.latest_states(run_id, phase_names())
    assert first["rating[1]"] == "Failed" and first["rating[0]"] == "Completed", first
    finished = {n for n, s in first.items() if s == "Completed"}
    # what reads rating's outputs cannot have finished; rating's other shards have
    assert {"rating[1]", "exceptions", "prepare"}.isdisjoint(finished) and "rating[0]" in finished, first

    fault.disarm()
    asked = dt.datetime.now(dt.UTC)
    if how == "ui":
        result = e2e_server.retry_as_the_ui_does(run_id)
        assert result["status"] == "ACCEPT", result
    else:
        env = e2e_server.env(tmp_path / "cli-home")
        said = run(
            [str(BIN / "prefect"), "flow-run", "retry", run_id], env, e2e_server.logs / "cli-retry.log"
        )
        assert "scheduled for retry" in said, said
    retried = e2e_server.wait_final(run_id, timeout=900, after=asked)
    assert retried["state"]["type"] == "COMPLETED", (retried["state"], site["worker"].tail())
    assert retried["run_count"] >= 2

    again = e2e_server.latest_states(run_id, phase_names())
    assert again.keys() == phase_names()
    cached = {n for n, s in again.items() if s == "Cached"}
    computed = {n for n, s in again.items() if s == "Completed"}
    assert cached == finished, (sorted(cached ^ finished), again)
    assert computed == phase_names() - finished, again

    out, ref = Path(paths["BUA_OUTPUT_URL"]), adhoc_reference["out"]
    got, want = digests(out), digests(ref)
    assert got.keys() == want.keys() and any(k.startswith(f"export/csv/{RUN_DATE}/") for k in got)
    assert [k for k in got if got[k] != want[k]] == []
    assert output_rows(paths["BUA_DATABASE_URL"]) == output_rows(site["reference"]["BUA_DATABASE_URL"])


def test_worker_log_names_the_pull_step_and_no_flow_run_crashed(site: dict[str, Any], adhoc_reference):
    worker: Proc = site["worker"]
    text = worker.text()
    assert "enter_code_dir" in text, worker.tail()
    assert "FileNotFoundError" not in text and "Crashed" not in text, worker.tail()
