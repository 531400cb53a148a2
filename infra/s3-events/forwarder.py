"""AWS Lambda: forward S3 "Object Created" notifications (via EventBridge) to Prefect's events API.

Prefect webhooks are a Prefect Cloud feature; an open-source Prefect server accepts events at
``POST {PREFECT_API_URL}/events``. This function turns each EventBridge S3 event into the Prefect
event ``aws.s3.object.created`` with the same resource and payload that ``billing_csv_poll`` emits
(flows/billing_ingest.py), so one deployment trigger serves both sources. Standard library only,
so the deployment package is this one file.

Environment: ``PREFECT_API_URL`` (e.g. ``http://prefect.internal:4200/api``), optional
``PREFECT_API_AUTH_STRING`` (``user:password`` of the server's basic auth; put it in the Lambda's
environment from Secrets Manager, never in code) and optional ``KEY_PREFIX`` (ignore other keys).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
import urllib.request
import uuid
from typing import Any

EVENT_NAME = "aws.s3.object.created"


def prefect_event(notification: dict[str, Any]) -> dict[str, Any] | None:
    """The Prefect event for one EventBridge S3 notification (None if it is not an object creation)."""
    if notification.get("source") != "aws.s3" or notification.get("detail-type") != "Object Created":
        return None
    detail = notification["detail"]
    bucket = detail["bucket"]["name"]
    key = urllib.parse.unquote_plus(detail["object"]["key"])
    url = f"s3://{bucket}/{key}"
    return {
        "id": str(uuid.uuid4()),
        "occurred": notification.get("time"),
        "event": EVENT_NAME,
        "resource": {
            "prefect.resource.id": url,
            "prefect.resource.name": key,
            "aws.s3.bucket": bucket,
            "aws.s3.key": key,
        },
        "payload": {
            "bucket": bucket,
            "key": key,
            "etag": str(detail["object"].get("etag", "")).strip('"'),
            "size": detail["object"].get("size"),
        },
    }


def post_events(
    events: list[dict[str, Any]], api_url: str, auth: str | None = None, timeout: float = 10.0
) -> int:
    """POST the events to the Prefect server; returns the HTTP status (204 when accepted)."""
    request = urllib.request.Request(
        api_url.rstrip("/") + "/events",
        data=json.dumps(events).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the configured server
        return response.status


def handler(notification: dict[str, Any], context: object = None) -> dict[str, Any]:
    """Lambda entry point. Raises on a failed POST so that EventBridge retries (and dead-letters)."""
    prefix = os.environ.get("KEY_PREFIX", "")
    event = prefect_event(notification)
    if event is None or not event["payload"]["key"].startswith(prefix):
        return {"forwarded": 0}
    status = post_events([event], os.environ["PREFECT_API_URL"], os.environ.get("PREFECT_API_AUTH_STRING"))
    if status >= 300:
        raise RuntimeError(f"Prefect events API answered HTTP {status}")
    return {"forwarded": 1, "resource": event["resource"]["prefect.resource.id"]}
