"""Build the ECS work pool's base job template from prefect-aws's default plus bua's defaults.

`python -m deployments.ecs_template` rewrites ``infra/ecs/base-job-template.json``; the test
``tests/flows/test_deployments.py`` validates the committed file against prefect-aws's ECS worker
(job configuration fields, variable schema, a rendered ``ECSJobConfiguration``). Starting from the
worker's own default keeps every placeholder the worker understands; we only change defaults.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "infra" / "ecs" / "base-job-template.json"

# Defaults for the variables of the pool (each overridable per deployment through job_variables).
# ARNs and the image are placeholders that `infra/terraform` outputs replace at pool creation.
BUA_DEFAULTS: dict[str, Any] = {
    "cluster": "bua",
    "family": "bua-flow",
    "launch_type": "FARGATE",
    "cpu": 2048,
    "memory": 8192,
    "container_name": "bua",
    "image": "ACCOUNT.dkr.ecr.ap-southeast-2.amazonaws.com/bua:latest",
    "configure_cloudwatch_logs": True,
    "cloudwatch_logs_options": {
        "awslogs-group": "/bua/flows",
        "awslogs-region": "ap-southeast-2",
        "awslogs-stream-prefix": "bua",
    },
    "cloudwatch_logs_prefix": "bua",
    "env": {
        "PREFECT_LOGGING_LEVEL": "INFO",
        "BUA_TASK_RUNNER": "thread",
        "BUA_MAX_WORKERS": "2",
    },
    "match_latest_revision_in_family": True,
}

# Fixed job configuration values (not variables).
BUA_JOB_CONFIGURATION: dict[str, Any] = {
    "stream_output": True,
    "task_start_timeout_seconds": 600,
    "task_watch_poll_interval": 5.0,
}


def build_template() -> dict[str, Any]:
    from prefect_aws.workers.ecs_worker import ECSWorker

    template = copy.deepcopy(ECSWorker.get_default_base_job_template())
    props = template["variables"]["properties"]
    for key, value in BUA_DEFAULTS.items():
        if key not in props:
            raise KeyError(f"prefect-aws's ECS worker has no variable {key!r}")
        props[key]["default"] = value
    template["job_configuration"].update(BUA_JOB_CONFIGURATION)
    # The billing database URL (it holds a password) reaches the container as an ECS secret from
    # Secrets Manager, never as a plain environment variable or a deployment parameter.
    props["database_url_secret_arn"] = {
        "title": "Database URL secret ARN",
        "description": "Secrets Manager ARN whose value is BUA_DATABASE_URL (injected as an ECS secret).",
        "type": "string",
    }
    # Required: without it the rendered secret has no valueFrom (prefect-aws drops empty keys) and the
    # flow container would start with no database URL at all.
    required = template["variables"].setdefault("required", [])
    if "database_url_secret_arn" not in required:
        required.append("database_url_secret_arn")
    container = template["job_configuration"]["task_definition"]["containerDefinitions"][0]
    container["secrets"] = [{"name": "BUA_DATABASE_URL", "valueFrom": "{{ database_url_secret_arn }}"}]
    return template


def main() -> None:
    TEMPLATE_PATH.parent.mkdir(parents=True, exist_ok=True)
    TEMPLATE_PATH.write_text(json.dumps(build_template(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {TEMPLATE_PATH}")


if __name__ == "__main__":
    main()
