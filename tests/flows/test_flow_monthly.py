"""bua_monthly on the real engine and a small generated portfolio (150 accounts, 4 shards): caching,
resume after a failed task with byte-identical outputs, outputs that disappear, --refresh."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from flows.phase_tasks import PhaseFailedError
from tasks.pipeline.graph import PHASES, tasks
from tests.flows.conftest import R, output_digests, output_rows, phase_of, run_monthly

pytestmark = pytest.mark.usefixtures("harness")

SHARDS = 4
TASK_RUNS = len(tasks(PHASES, SHARDS))  # 15 run-once phases + 5 per-shard phases x 4 = 35


@pytest.fixture(scope="module")
def clean(loaded: Path, tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted run (the byte reference) and its outcome."""
    from tests.portfolio import copy_of

    settings = copy_of(loaded, tmp_path_factory.mktemp("clean") / "run")
    outcome = run_monthly(settings)
    assert outcome.error is None, outcome.error
    return settings, outcome


def test_graph_has_the_expected_task_runs():
    # 20 phases (engine_lines runs, and returns no rows, when the external engine is off);
    # profiles_partial, scalars, basic_estimates, interval_estimates, rating per shard (read_pairs
    # is one task writing every shard's pairs: less work than a task run's orchestration)
    per_shard = [p.name for p in PHASES if p.per_shard]
    assert len(per_shard) == 5 and len(PHASES) == 20
    assert TASK_RUNS == 15 + 5 * SHARDS == 35


def test_first_run_computes_every_task_and_a_rerun_is_all_cache_hits(clean):
    settings, first = clean
    assert len(first.states) == TASK_RUNS
    assert set(first.states.values()) == {"Completed"}
    before, rows = output_digests(settings), output_rows(settings)
    assert any(k.startswith("export/csv/2026-11-01/invoice_line_item_monthly") for k in before)
    assert any(k.startswith("nem12/2026-11-01/") for k in before)
    assert rows["invoice_line_item_monthly"]

    second = run_monthly(settings)
    assert second.error is None, second.error
    assert second.states.keys() == first.states.keys()
    assert set(second.states.values()) == {"Cached"}
    assert output_digests(settings) == before and output_rows(settings) == rows
    assert second.result["fingerprints"] == first.result["fingerprints"]
    assert second.result["counts"] == first.result["counts"]


@pytest.mark.parametrize("fault", ["profiles_partial:1", "rating:2", "prepare", "validation"])
def test_a_failed_task_fails_the_run_and_the_rerun_resumes_to_the_same_bytes(
    fault, clean, settings, monkeypatch: pytest.MonkeyPatch
):
    ref_settings, ref = clean
    monkeypatch.setenv("BUA_TEST_FAULT", fault)
    failed = run_monthly(settings)
    assert isinstance(failed.error, PhaseFailedError)
    name = fault.replace(":", "[") + ("]" if ":" in fault else "")
    assert failed.error.failed and failed.error.failed[0].startswith(f"{name} (Failed")
    assert failed.states[name] == "Failed"
    with sqlite3.connect(settings.db_url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("SELECT status FROM bua_run").fetchall() == [("FAILED",)]

    monkeypatch.delenv("BUA_TEST_FAULT")
    resumed = run_monthly(settings)
    assert resumed.error is None, resumed.error
    # what completed before the failure is a cache hit; the failed task and what depends on it run
    for task_run, state in failed.states.items():
        if state == "Completed":
            assert resumed.states[task_run] == "Cached", task_run
    assert resumed.states[name] == "Completed"
    assert output_digests(settings) == output_digests(ref_settings)
    assert output_rows(settings) == output_rows(ref_settings)


def test_grouped_shards_are_fewer_task_runs_with_the_same_bytes_and_resume_per_group(
    clean, settings, monkeypatch: pytest.MonkeyPatch
):
    """BUA_SHARD_TASKS=2 over 4 shards: each per-shard phase is 2 task runs, shards 0-1 and 2-3
    (4 // 2 each, contiguous), so 15 + 5 x 2 = 25 task runs; the outputs are the ungrouped run's,
    byte for byte; a failure in shard 3 fails the group 2-3 only, and the rerun recomputes that
    group (its shards' manifests and keys are per shard) and takes every finished task from cache."""
    from flows.phase_tasks import shard_groups

    ref_settings, _ = clean
    grouped = settings.model_copy(update={"shard_tasks": 2})
    assert shard_groups(grouped, 4) == [[0, 1], [2, 3]]
    assert shard_groups(grouped, 5) == [[0, 1], [2, 3, 4]]  # 5 // 2 = 2, then 5 * 2 // 2 = 5
    assert shard_groups(settings, 4) == [[0], [1], [2], [3]]  # default 4 x 2 workers = 8 > 4 shards
    monkeypatch.setenv("BUA_TEST_FAULT", "rating:3")
    failed = run_monthly(grouped)
    assert isinstance(failed.error, PhaseFailedError)
    assert len(failed.states) <= 25 and failed.states["rating[2-3]"] == "Failed"
    assert failed.states["rating[0-1]"] == "Completed", failed.states
    assert {"exceptions", "prepare"}.isdisjoint(failed.states)
    assert "rating[2-3]" in failed.error.failed[0] and "shard 3" in str(failed.error.cause)
    monkeypatch.delenv("BUA_TEST_FAULT")
    resumed = run_monthly(grouped)
    assert resumed.error is None, resumed.error
    assert len(resumed.states) == 15 + 5 * 2 == 25
    assert {n for n in resumed.states if n.startswith("rating")} == {"rating[0-1]", "rating[2-3]"}
    for task_run, state in failed.states.items():
        if state == "Completed":
            assert resumed.states[task_run] == "Cached", task_run
    assert resumed.states["rating[2-3]"] == "Completed"
    assert output_digests(settings) == output_digests(ref_settings)
    assert output_rows(settings) == output_rows(ref_settings)
    # the same shards ungrouped: each shard's own key, so computed again (a group's key is not a shard's),
    # to the same bytes
    again = run_monthly(settings)
    assert again.error is None and again.states["rating[3]"] == "Completed", again.states
    assert output_digests(settings) == output_digests(ref_settings)


def test_the_report_renderer_is_started_once_a_task_is_computed_and_not_for_cache_hits(
    settings, monkeypatch: pytest.MonkeyPatch
):
    from tasks.pipeline.report import charts

    started: list[int] = []
    monkeypatch.setattr(charts, "start_prewarm", lambda: started.append(1))
    assert run_monthly(settings).error is None  # a fresh copy: every task computed
    assert started == [1]  # once, not once per computed task
    again = run_monthly(settings)
    assert again.error is None and set(again.states.values()) == {"Cached"}
    assert started == [1]  # nothing to render: not started


def test_outputs_that_are_gone_are_rewritten_by_the_rerun(clean, settings):
    ref_settings, _ = clean
    assert run_monthly(settings).error is None
    csv = Path(settings.output_url) / "export" / "csv" / R.isoformat() / "bua_exception.csv"
    csv.unlink()
    again = run_monthly(settings)
    assert again.error is None, again.error
    assert again.states["export"] == "Completed"  # its CSV was gone
    assert again.states["prepare"] == "Cached" and again.states["rating[0]"] == "Cached"
    assert csv.exists()
    # the run's rows deleted from a table: prepare rewrites them (and what reads them follows)
    with sqlite3.connect(settings.db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("DELETE FROM invoice_line_item_monthly WHERE run_date = ?", (R.isoformat(),))
    third = run_monthly(settings)
    assert third.error is None, third.error
    assert third.states["prepare"] == "Completed" and third.states["extract"] == "Cached"
    assert output_rows(settings) == output_rows(ref_settings)
    assert output_digests(settings) == output_digests(ref_settings)


def test_refresh_recomputes_every_task_to_the_same_bytes(clean, settings):
    ref_settings, _ = clean
    assert run_monthly(settings).error is None
    again = run_monthly(settings, refresh=True)
    assert again.error is None, again.error
    assert set(again.states.values()) == {"Completed"}
    assert output_digests(settings) == output_digests(ref_settings)


def test_a_new_meter_file_in_one_shard_reruns_that_shards_meter_phases(clean, settings):
    assert run_monthly(settings).error is None
    store = Path(settings.meter_store)
    part = sorted(store.rglob("shard=002/**/*.parquet"))[0]
    shutil.copy(part, part.with_name("copy.parquet"))  # a new file in shard 2's folder: its listing changed
    part.with_name("copy.parquet").unlink()
    part.touch()  # a newer mtime: as a re-ingest of that partition would leave it
    again = run_monthly(settings)
    assert again.error is None, again.error
    assert again.states["profiles_partial[2]"] == "Completed"
    assert again.states["profiles_partial[0]"] == "Cached"
    assert again.states["read_pairs"] == "Cached"  # reads no meter data
    assert {phase_of(n) for n, s in again.states.items() if s == "Completed"} >= {"profiles_combine"}


def test_no_result_carries_the_summary_rows_and_bua_run_prints_them_from_the_table(clean):
    """The prepare task's persisted result holds a sha256 of the accrual_summary rows, not the rows
    (thousands at 100k accounts, walked object by object by Prefect in every task waiting for
    prepare and when each flow finishes), and the flow's report none; `bua run` prints them from the
    table: the same console text as with the rows in the result, as before."""
    import base64
    import hashlib
    import io
    import json

    import cloudpickle
    from rich.console import Console

    from flows.summary import print_from_result
    from tasks.pipeline.sinks import summary_rows

    settings, first = clean
    results = Path(settings.output_url) / "prefect-results"
    (stored,) = results.glob(f"bua-{R.isoformat()}-prepare-all-*")
    result = cloudpickle.loads(base64.b64decode(json.loads(stored.read_text())["result"]))
    assert "accrual_summary" not in result["stats"] and "accrual_summary" not in first.result
    assert set(result["stats"]) >= {"counts", "exceptions_by_code", "accrual_summary_sha256"}

    rows = summary_rows(settings.db_url, R)
    with sqlite3.connect(settings.db_url.removeprefix("sqlite:///")) as conn:
        n, total = conn.execute(
            "SELECT count(*), sum(net_amount_less_discount) FROM accrual_summary WHERE run_date = ?",
            (R.isoformat(),),
        ).fetchone()
    assert n > 0 and len(rows) == n == first.result["counts"]["accrual_summary"]
    assert sum(r["net_amount_less_discount"] for r in rows) == pytest.approx(float(total), abs=0.005)
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    assert result["stats"]["accrual_summary_sha256"] == digest

    def printed(res: dict) -> str:
        console = Console(file=io.StringIO(), width=200, color_system=None)
        print_from_result(console, res, settings, 1.0)
        return console.file.getvalue()  # type: ignore[attr-defined]

    with_rows = {**first.result, "accrual_summary": json.loads(json.dumps(rows, default=str))}
    text = printed(first.result)
    assert text == printed(with_rows) and "Accrual as at 2026-11-01" in text and "by state" in text


def test_the_summary_digest_changes_with_any_figure():
    """A cent more on one row changes the digest, so prepare's fingerprint and every key after it."""
    from tasks.pipeline.sinks import summary_digest

    rows = [{"state": "NSW", "fuel": "E", "net_amount_less_discount": 100.0},
            {"state": "VIC", "fuel": "G", "net_amount_less_discount": 50.0}]  # fmt: skip
    changed = [rows[0], {**rows[1], "net_amount_less_discount": 50.01}]
    assert summary_digest(rows) == summary_digest([dict(r) for r in rows])
    assert summary_digest(rows) != summary_digest(changed)
