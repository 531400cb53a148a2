"""``bua_monthly`` on a real Dask distributed cluster — ``dask scheduler`` and two ``dask worker``
processes started here, as on ECS — with the meter store, the work and output files and Prefect's
task results on S3 (moto's server over HTTP): every published file and every output table row is
byte-identical to the same run with the default thread runner on local files.

The workers resolve bua's settings from their own environment (BUA_*, the S3 endpoint, the Prefect
API), never from the flow's parameters; the billing database is the same SQLite file for both (one
machine), as a shared RDS instance would be on ECS.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.dask_procs import alive, dask_cli, dask_cluster
from bench.s3_local import digests, upload_dir
from tasks.pipeline.graph import PHASES, tasks
from tasks.settings import load_settings
from tests.flows.conftest import output_digests, output_rows, run_monthly
from tests.portfolio import copy_of

pytestmark = [
    pytest.mark.usefixtures("harness"),
    pytest.mark.skipif(dask_cli() is None, reason="the dask CLI (distributed) is not installed"),
]


def cluster_env(root: Path, bucket: str) -> dict[str, str]:
    """The BUA_* settings of the cluster run (the flow's and the workers'): store and outputs on S3,
    the Dask task runner; the same 4 shards, 2 in flight, as the thread run (tests/portfolio.copy_of)."""
    return {
        "BUA_DATABASE_URL": f"sqlite:///{root}/bua.db",
        "BUA_METER_STORE": f"{bucket}/ms",
        "BUA_OUTPUT_URL": f"{bucket}/out",
        "BUA_SHARDS": "4",
        "BUA_MAX_WORKERS": "2",
        "BUA_TASK_RETRIES": "1",
        "BUA_TASK_RETRY_DELAY_SECONDS": "0.01",
        "BUA_TASK_RUNNER": "dask",
    }


@pytest.fixture(scope="module")
def reference(loaded: Path, tmp_path_factory: pytest.TempPathFactory, harness: str) -> tuple[dict, dict]:
    """The default thread runner on local files: its published files' digests and output rows."""
    local = copy_of(loaded, tmp_path_factory.mktemp("reference") / "local")
    ref = run_monthly(local)
    assert ref.error is None, ref.error
    want_files, want_rows = output_digests(local), output_rows(local)
    assert any(k.startswith("export/csv/2026-11-01/") for k in want_files)
    assert any(k.startswith("nem12/2026-11-01/") for k in want_files)
    assert want_rows["invoice_line_item_monthly"] and want_rows["estimated_basic_read"]
    return want_files, want_rows


def test_a_two_worker_dask_cluster_on_s3_writes_the_same_bytes_as_the_thread_runner(
    reference, loaded, tmp_path, s3_bucket, s3_server, harness, monkeypatch
):
    want_files, want_rows = reference

    # the same portfolio, its meter store uploaded to S3; nothing of the run is local but the database
    root = tmp_path / "cluster"
    copy_of(loaded, root)
    assert upload_dir(s3_server, root / "ms", f"{s3_bucket}/ms") > 0
    env = cluster_env(root, s3_bucket)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    # the workers' own environment: the settings, moto's endpoint and keys (s3_bucket), the Prefect API
    worker_env = {**os.environ, "PREFECT_API_URL": harness, "PREFECT_LOGGING_LEVEL": "WARNING"}
    with dask_cluster(2, worker_env, tmp_path / "dask") as cluster:
        monkeypatch.setenv("BUA_DASK_ADDRESS", cluster.address)  # the flow's runner connects to it
        pids = cluster.all_pids()
        # the scheduler; per worker a nanny, its worker process (and multiprocessing's helpers)
        assert len(pids) >= 1 + 2 * 2
        settings = load_settings()
        assert (settings.task_runner, settings.meter_store) == ("dask", f"{s3_bucket}/ms")
        run = run_monthly(settings)
    assert run.error is None, run.error
    # 15 run-once task runs + 5 per-shard phases x 4 shards, every one computed on the cluster
    assert len(run.states) == len(tasks(PHASES, 4)) == 35
    assert set(run.states.values()) == {"Completed"}
    assert alive(pids) == []  # scheduler, nannies and workers all stopped

    assert not (root / "out").exists()  # every output went to S3
    assert digests(s3_server, f"{s3_bucket}/out") == want_files
    assert output_rows(settings) == want_rows


def test_a_local_dask_cluster_writes_the_same_bytes_as_the_thread_runner(
    reference, loaded, tmp_path, harness, monkeypatch
):
    # BUA_TASK_RUNNER=dask without an address: a local cluster of BUA_MAX_WORKERS worker processes
    # (not daemonic: extract starts child processes), which read the settings from the environment
    want_files, want_rows = reference
    root = tmp_path / "local-dask"
    copy_of(loaded, root)
    env = {
        "BUA_DATABASE_URL": f"sqlite:///{root}/bua.db",
        "BUA_METER_STORE": str(root / "ms"),
        "BUA_OUTPUT_URL": str(root / "out"),
        "BUA_SHARDS": "4",
        "BUA_MAX_WORKERS": "2",
        "BUA_TASK_RUNNER": "dask",
        "PREFECT_API_URL": harness,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = load_settings()
    run = run_monthly(settings)
    assert run.error is None, run.error
    assert set(run.states.values()) == {"Completed"} and len(run.states) == 35
    assert output_digests(settings) == want_files
    assert output_rows(settings) == want_rows
