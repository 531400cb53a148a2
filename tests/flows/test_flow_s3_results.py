"""bua_monthly with its Prefect result storage on S3 (moto's server over HTTP): the persisted phase
results land in the bucket under their cache keys, and a re-run finds them all (cache hits)."""

from __future__ import annotations

import pytest

from tests.flows.conftest import make_settings, output_digests, run_monthly
from tests.flows.fake_pipeline import PER_SHARD, PHASES

pytestmark = pytest.mark.usefixtures("harness")


def test_results_persist_to_s3_and_a_rerun_is_all_cache_hits(s3_bucket, s3_server, tmp_path):
    import boto3

    from tests.flows.fake_pipeline import make_source

    settings = make_settings(tmp_path, result_url=f"{s3_bucket}/prefect-results")
    assert settings.s3_endpoint_url == s3_server  # the s3_bucket fixture's BUA_S3_ENDPOINT_URL
    make_source(settings)

    first = run_monthly(settings)
    assert first.error is None, first.error
    assert set(first.states.values()) == {"Completed"}
    # one persisted result per phase task run, named by its cache key bua-{run_date}-{phase}-{shard|all}-…
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="ap-southeast-2")
    bucket = s3_bucket[len("s3://") :]
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="prefect-results/").get("Contents", [])
    ]
    names = [k[len("prefect-results/") :] for k in keys]
    # 14 phases, 6 of them once per shard: 8 + 6 × 4 = 32 task runs, one result each
    assert len(names) == len(PHASES) - len(PER_SHARD) + len(PER_SHARD) * settings.shards == 32
    assert all(n.startswith("bua-2026-11-01-") for n in names)
    assert {n.split("-")[4] for n in names} == set(PHASES)
    assert not any("prefect-results" in k for k in output_digests(settings))  # nothing stored locally

    second = run_monthly(settings)
    assert second.error is None, second.error
    assert second.states.keys() == first.states.keys()
    assert set(second.states.values()) == {"Cached"}
    assert second.result["fingerprints"] == first.result["fingerprints"]
