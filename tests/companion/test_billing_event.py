"""Billing CSV ingest through moto's S3 server and the event path (SPEC §7.1).

A file lands in the bucket; the poller flow emits ``aws.s3.object.created``; the trigger of the
``billing-csv-ingest`` deployment in deployments/companion.yaml matches that event (Prefect's own
server-side trigger model decides) and renders the flow parameters from it (Prefect's own
hydration of trigger templates); the triggered flow then loads the file.
"""

from __future__ import annotations

import copy
from pathlib import Path

import boto3
import sqlalchemy as sa
import yaml

from flows.billing_ingest import billing_csv_ingest, billing_csv_poll
from tasks.adapters.db import engine_for, init_db
from tasks.companion.billing_ingest import load_fx_rates
from tests.companion.test_billing_ingest import EXPECTED_BASE, FX, HEADER, ROWS

REPO = Path(__file__).resolve().parents[2]
INBOX = "billing/incoming"


def ingest_trigger(bucket: str) -> dict:
    spec = yaml.safe_load((REPO / "deployments" / "companion.yaml").read_text())
    (dep,) = [d for d in spec["deployments"] if d["name"] == "billing-csv-ingest"]
    assert dep["entrypoint"] == "flows/billing_ingest.py:billing_csv_ingest"
    trigger = copy.deepcopy(dep["triggers"][0])
    trigger["match"]["prefect.resource.id"] = trigger["match"]["prefect.resource.id"].replace(
        "bua-billing-inbox", bucket
    )
    return trigger


def run_parameters_if_triggered(trigger: dict, event: dict) -> dict | None:
    """What the Prefect server would do with ``event``: None if the trigger ignores it, else the run's parameters."""
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
    from prefect.server.events.actions import RunDeployment
    from prefect.server.events.schemas.automations import EventTrigger
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.utilities.schema_tools.hydration import HydrationContext, hydrate

    client_side = DeploymentEventTrigger(**trigger)
    server_side = EventTrigger(**client_side.model_dump(include=set(EventTrigger.model_fields) - {"id"}))
    received = ReceivedEvent(**event)
    if not server_side.covers(received):
        return None
    params = copy.deepcopy(client_side.parameters or {})
    RunDeployment._upgrade_v1_templates(params)
    return hydrate(
        params, HydrationContext(raise_on_error=True, render_jinja=True, jinja_context={"event": received})
    )


def test_file_landing_in_the_bucket_is_ingested_through_the_event(
    prefect_harness, s3_bucket, s3_server, tmp_path, monkeypatch
):
    db = f"sqlite:///{tmp_path}/bua.db"
    monkeypatch.setenv("BUA_DATABASE_URL", db)  # the worker's setting: never a flow parameter
    init_db(db)
    load_fx_rates(db, FX)
    bucket = s3_bucket[len("s3://") :]
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="ap-southeast-2")
    s3.put_object(Bucket=bucket, Key=f"{INBOX}/billing-2025-03-02.csv", Body=(HEADER + ROWS).encode())
    s3.put_object(Bucket=bucket, Key="elsewhere/other.csv", Body=(HEADER + ROWS).encode())
    trigger = ingest_trigger(bucket)

    events = billing_csv_poll(prefix=f"{s3_bucket}/{INBOX}/")
    assert [e["resource"]["prefect.resource.id"] for e in events] == [
        f"{s3_bucket}/{INBOX}/billing-2025-03-02.csv"
    ]
    assert events[0]["event"] == "aws.s3.object.created"

    params = run_parameters_if_triggered(trigger, events[0])
    etag = s3.head_object(Bucket=bucket, Key=f"{INBOX}/billing-2025-03-02.csv")["ETag"].strip('"')
    assert params == {"bucket": bucket, "key": f"{INBOX}/billing-2025-03-02.csv", "etag": etag}
    # an object outside the inbox prefix does not trigger the deployment
    outside = dict(
        events[0],
        resource={**events[0]["resource"], "prefect.resource.id": f"{s3_bucket}/elsewhere/other.csv"},
    )
    assert run_parameters_if_triggered(trigger, outside) is None

    results = billing_csv_ingest(**params, rejects_url=f"{s3_bucket}/rejects")
    assert [(r["rows_loaded"], r["rows_rejected"]) for r in results] == [(4, 4)]
    with engine_for(db).connect() as c:
        loaded = dict(c.execute(sa.text("SELECT id, bill_amount_base FROM billing_record")).all())
    assert {k: float(v) for k, v in loaded.items()} == EXPECTED_BASE
    rejects = s3.list_objects_v2(Bucket=bucket, Prefix="rejects/")["Contents"]
    # the rejects file and a copy of the source (rows were rejected); the inbox object stays
    keys = sorted(o["Key"] for o in rejects)
    assert len(keys) == 2 and keys[1] == keys[0] + ".rejects.csv"
    assert s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read() == (HEADER + ROWS).encode()

    # nothing new: no event; a corrected upload under the same key: a new ETag, one event
    assert billing_csv_poll(prefix=f"{s3_bucket}/{INBOX}/") == []
    s3.put_object(
        Bucket=bucket,
        Key=f"{INBOX}/billing-2025-03-02.csv",
        Body=(HEADER + ROWS + "B-010,Acme,US,Austin,Solar,Panel,2025-03-02,AUD,2.00\n").encode(),
    )
    (again,) = billing_csv_poll(prefix=f"{s3_bucket}/{INBOX}/")
    results = billing_csv_ingest(
        **run_parameters_if_triggered(trigger, again), rejects_url=f"{s3_bucket}/rejects"
    )
    # the eight old rows: four already loaded, four rejected again; the new row loads
    assert [(r["rows_loaded"], r["rows_duplicate"], r["rows_rejected"]) for r in results] == [(1, 4, 4)]


def _forwarder():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "s3_forwarder", REPO / "infra" / "s3-events" / "forwarder.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EVENTBRIDGE = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "111122223333",
    "time": "2025-03-02T01:02:03Z",
    "region": "ap-southeast-2",
    "resources": ["arn:aws:s3:::bua-billing-inbox"],
    "detail": {
        "version": "0",
        "bucket": {"name": "bua-billing-inbox"},
        "object": {
            "key": "billing/incoming/March+bills.csv",
            "size": 1234,
            "etag": "b1946ac92492d2347c6235b4d2611184",
        },
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "reason": "PutObject",
    },
}


def test_eventbridge_forwarder_sends_the_event_the_trigger_expects(prefect_harness):
    from prefect.settings import PREFECT_API_URL

    forwarder = _forwarder()
    event = forwarder.prefect_event(EVENTBRIDGE)
    key = "billing/incoming/March bills.csv"  # keys arrive URL-encoded from EventBridge
    assert event["resource"]["prefect.resource.id"] == f"s3://bua-billing-inbox/{key}"
    trigger = ingest_trigger("bua-billing-inbox")
    assert run_parameters_if_triggered(trigger, event) == {
        "bucket": "bua-billing-inbox",
        "key": key,
        "etag": "b1946ac92492d2347c6235b4d2611184",
    }
    assert forwarder.prefect_event(dict(EVENTBRIDGE, **{"detail-type": "Object Deleted"})) is None
    # the open-source server's events API accepts it
    assert forwarder.post_events([event], PREFECT_API_URL.value()) == 204
