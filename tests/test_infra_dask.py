"""infra/dask: the scheduler and worker task definitions agree with each other and with how bua
resolves settings on a worker (docs/SCALE.md, infra/dask/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

DASK = Path(__file__).resolve().parents[1] / "infra" / "dask"


def _container(name: str) -> dict:
    (container,) = json.loads((DASK / f"{name}-task-definition.json").read_text())["containerDefinitions"]
    return container


def test_workers_reach_the_scheduler_run_the_same_image_and_are_not_daemonic():
    scheduler, worker = _container("scheduler"), _container("worker")
    assert scheduler["image"] == worker["image"]  # tasks are pickled by reference to bua's code
    port = scheduler["command"][scheduler["command"].index("--port") + 1]
    assert (
        port == "8786"
        and {"containerPort": 8786, "name": "dask-scheduler", "protocol": "tcp"} in scheduler["portMappings"]
    )
    assert worker["command"][:3] == ["dask", "worker", f"tcp://dask-scheduler.bua.internal:{port}"]
    env = {e["name"]: e["value"] for e in worker["environment"]}
    # extract starts child processes: a daemonic worker process may not
    assert env["DASK_DISTRIBUTED__WORKER__DAEMON"] == "False"
    assert {"PREFECT_API_URL", "BUA_METER_STORE", "BUA_OUTPUT_URL", "BUA_SHARDS"} <= env.keys()


def test_the_database_url_reaches_a_worker_only_as_an_ecs_secret():
    worker = _container("worker")
    assert "BUA_DATABASE_URL" not in {e["name"] for e in worker["environment"]}
    assert [s["name"] for s in worker["secrets"]] == ["BUA_DATABASE_URL"]
    assert worker["secrets"][0]["valueFrom"].startswith("arn:aws:secretsmanager:")
