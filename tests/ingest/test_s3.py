"""Ingest from and into S3 on moto's server over HTTP; scan the store there with pushdown."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from pathlib import Path

import boto3
import polars as pl

from tasks.adapters.ingest import ingest_nem12
from tasks.adapters.meter_store import explode_intervals, scan_interval
from tasks.adapters.nem12_write import nem12_text
from tasks.domain.shard import shard_of
from tasks.settings import Settings
from tests.conftest import MDFF, needs_mdff


def _nem12(nmi: str, value: float) -> bytes:
    df = pl.DataFrame(
        {
            "nmi": nmi,
            "suffix": "E1",
            "read_date": [dt.date(2024, 5, 30), dt.date(2024, 5, 31), dt.date(2024, 6, 1)],
            "interval_minutes": 30,
            "unit": "KWH",
            "values": [[value] * 48] * 3,
            "quality": "A" * 48,
        }
    )
    return nem12_text(df, created=dt.datetime(2024, 6, 2)).encode()


@needs_mdff
def test_s3_sources_store_and_quarantine(s3_bucket: str, tmp_path: Path) -> None:
    settings = Settings(meter_store=f"{s3_bucket}/store", output_url=f"{s3_bucket}/out", shards=4)
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="ap-southeast-2")
    bucket = s3_bucket.removeprefix("s3://")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # one zip, two members: one good, one malformed
        z.writestr("a.csv", _nem12("NMI0000001", 0.5))
        z.writestr("bad.csv", (MDFF / "invalid" / "Example_NEM12_missing_header.csv").read_bytes())
    s3.put_object(Bucket=bucket, Key="in/day1.zip", Body=buf.getvalue())
    s3.put_object(Bucket=bucket, Key="in/b.csv", Body=_nem12("NMI0000002", 0.25))

    summary = ingest_nem12([f"{s3_bucket}/in/"], settings)
    assert (summary.files, summary.accepted, summary.register_days) == (3, 2, 6)
    bad = (MDFF / "invalid" / "Example_NEM12_missing_header.csv").read_bytes()
    kept = f"{hashlib.sha256(bad).hexdigest()[:16]}-day1.zip!bad.csv"  # the member's bytes' hash
    assert summary.rejected[0].quarantined_as == f"{s3_bucket}/out/quarantine/{kept}"
    assert s3.get_object(Bucket=bucket, Key=f"out/quarantine/{kept}")["Body"].read() == bad
    reason = s3.get_object(Bucket=bucket, Key=f"out/quarantine/{kept}.reason.txt")["Body"].read().decode()
    assert reason.startswith("day1.zip!bad.csv:2: missing 100 header record")

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="store/")["Contents"])
    shard = shard_of("NMI0000002", 4)
    assert f"store/interval/shard={shard:03d}/month=2024-06/data.parquet" in keys
    lf = scan_interval(settings, shard, dt.date(2024, 5, 31), dt.date(2024, 6, 1), ["NMI0000002"])
    rows = explode_intervals(lf).collect()
    assert rows.height == 96 and rows["value"].unique().to_list() == [0.25]
    assert rows["interval_start"].min() == dt.datetime(2024, 5, 31)

    again = ingest_nem12([f"{s3_bucket}/in/b.csv"], settings)  # one object by its key
    assert (again.accepted, again.partitions_written) == (1, 0)
