"""bua_monthly with its Prefect result storage on S3 (moto's server over HTTP): the persisted phase
results land in the bucket under their cache keys, and a re-run finds them all (cache hits) — what
a Retry on another ECS task relies on."""

from __future__ import annotations

import pytest

from tasks.pipeline.graph import PHASES, tasks
from tests.flows.conftest import run_monthly
from tests.portfolio import copy_of

pytestmark = pytest.mark.usefixtures("harness")


def test_results_persist_to_s3_and_a_rerun_is_all_cache_hits(
    s3_bucket, s3_server, loaded, tmp_path, monkeypatch
):
    import boto3

    # the result storage block holds no keys: the SDK's own chain finds them (a task role on ECS)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = copy_of(loaded, tmp_path / "run", result_url=f"{s3_bucket}/prefect-results")
    assert settings.s3_endpoint_url == s3_server  # the s3_bucket fixture's BUA_S3_ENDPOINT_URL
    first = run_monthly(settings)
    assert first.error is None, first.error
    assert set(first.states.values()) == {"Completed"}
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="ap-southeast-2")
    bucket = s3_bucket[len("s3://") :]
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="prefect-results/").get("Contents", [])
    ]
    names = [k[len("prefect-results/") :] for k in keys]
    # one persisted result per task run (13 run-once phases + 6 per shard × 4), named by its key
    assert len(names) == len(tasks(PHASES, settings.shards)) == 35  # 15 + 5 per-shard x 4
    assert all(n.startswith("bua-2026-11-01-") for n in names)
    assert {n.split("-")[4] for n in names} == {p.name for p in PHASES}

    second = run_monthly(settings)
    assert second.error is None, second.error
    assert set(second.states.values()) == {"Cached"}
    assert second.result["fingerprints"] == first.result["fingerprints"]
