"""bua_monthly on the real engine and a tiny generated portfolio: the same bytes as the sequential
``run_accrual``, all cache hits on a re-run, resume after a failed shard, and Dask."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tasks.settings import Settings
from tests.flows.conftest import FINGERPRINT_TASKS, output_digests, run_monthly
from tests.portfolio import copy_of, generated_and_loaded

pytestmark = pytest.mark.usefixtures("harness")

R = dt.date(2026, 11, 1)


def phase_task_runs(shards: int) -> int:
    """Task runs of the phases: one per one-off phase, one per shard of the others (tasks.pipeline.accrual.PHASES)."""
    from tasks.pipeline.accrual import PHASES

    return sum(shards if per_shard else 1 for _, _, per_shard in PHASES)


def after(phase: str) -> set[str]:
    """The phases that come after ``phase`` in tasks.pipeline.accrual.PHASES (validation, report, notify …)."""
    from tasks.pipeline.accrual import PHASES

    names = [name for name, _, _ in PHASES]
    return set(names[names.index(phase) + 1 :])


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-account portfolio generated, loaded into SQLite and ingested into a meter store, once."""
    return generated_and_loaded(tmp_path_factory.mktemp("loaded"))


def assert_same_outputs(a: Settings, b: Settings) -> None:
    """Every output file byte-identical (work files, /profiles/ partials included), same rows."""
    da, db = output_digests(a), output_digests(b)
    assert da.keys() == db.keys()
    assert any(k.startswith("export/csv/2026-11-01/invoice_line_item_monthly") for k in da)
    assert any("/profiles/" in k for k in da)  # the profile partials are compared too
    for name in da:
        assert da[name] == db[name], name
    assert output_rows(a) == output_rows(b)


def output_rows(settings: Settings) -> dict[str, list[tuple]]:
    import sqlalchemy as sa

    from sql.schema import OUTPUT_TABLES
    from tasks.adapters.db import engine_for

    with engine_for(settings.database_url).connect() as conn:
        return {
            t: sorted(map(tuple, conn.execute(sa.text(f"SELECT * FROM {t}")).all()), key=repr)
            for t in OUTPUT_TABLES
            if t != "bua_run"
        }


def run_cli(s: Settings) -> dict[str, str]:
    """``bua … run --run-date`` in this process; returns the phase task-run states the API recorded."""
    from typer.testing import CliRunner

    from flows.cli import app
    from tests.flows.conftest import settled_phase_states

    args = ["--database-url", s.database_url, "--meter-store", s.meter_store, "--output-url", s.output_url]
    args += ["--shards", str(s.shards), "run", "--run-date", R.isoformat()]
    result = CliRunner().invoke(app, args, env={"BUA_MAX_WORKERS": "2", "BUA_TASK_RETRIES": "0"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "COMPLETED" in result.output and "took" in result.output
    assert f"report: {s.output_url}/report/2026-11-01/report.html" in result.output
    return settled_phase_states(expected=2 + phase_task_runs(s.shards))


@pytest.fixture(scope="module")
def reference(loaded: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One uninterrupted flow run through `bua run` (thread runner), the reference for the others."""
    s = copy_of(loaded, tmp_path_factory.mktemp("reference") / "run")
    states = run_cli(s)
    phases = {n: st for n, st in states.items() if n not in FINGERPRINT_TASKS}
    assert len(phases) == phase_task_runs(4) and set(phases.values()) == {"Completed"}, states
    return s


def test_flow_writes_the_same_bytes_as_run_accrual_and_a_rerun_is_all_cache_hits(reference, loaded, tmp_path):
    from tasks.pipeline.accrual import run_accrual

    sequential = copy_of(loaded, tmp_path / "seq")
    run_accrual(sequential, R)
    assert_same_outputs(reference, sequential)

    digests = output_digests(reference)
    again = run_monthly(reference, run_date=R)
    assert again.error is None, again.error
    assert len(again.states) == phase_task_runs(4)
    # every phase is a cache hit, notify included (it composes the message; the flow posts it)
    assert {n for n, st in again.states.items() if st != "Cached"} == set()
    assert output_digests(reference) == digests


def test_failed_shard_resumes_alone_and_ends_identical(reference, loaded, tmp_path):
    s = copy_of(loaded, tmp_path / "resume")
    failed = run_monthly(s.model_copy(update={"fail_phase": "rating:1"}), run_date=R)
    assert failed.error is not None and "rating[1]" in str(failed.error)
    assert failed.states["rating[1]"] == "Failed" and failed.states["rating[0]"] == "Completed"
    assert failed.states["prepare"] == "NotReady"

    resumed = run_monthly(s, run_date=R)
    assert resumed.error is None, resumed.error
    computed = {n for n, st in resumed.states.items() if st == "Completed"}
    assert computed == {"rating[1]", "exceptions", "prepare", "export"} | after("export")
    assert all(st == "Cached" for n, st in resumed.states.items() if n not in computed)
    assert_same_outputs(s, reference)


def test_dask_local_cluster_with_two_worker_processes_gives_identical_outputs(reference, loaded, tmp_path):
    dask = copy_of(loaded, tmp_path / "dask", task_runner="dask", max_workers=2)
    out = run_monthly(dask, run_date=R)
    assert out.error is None, out.error
    assert len(out.states) == phase_task_runs(4) and set(out.states.values()) == {"Completed"}
    assert_same_outputs(dask, reference)
