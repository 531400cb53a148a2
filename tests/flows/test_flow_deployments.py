"""prefect.yaml: every entrypoint imports, every parameter fits its flow, schedules are valid; the
ECS base job template is valid for prefect-aws's ECS worker; the CloudFormation template lints."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PREFECT_YAML = REPO / "prefect.yaml"
COMPANION_YAML = REPO / "deployments" / "companion.yaml"
ECS_TEMPLATE = REPO / "infra" / "ecs" / "base-job-template.json"
CLOUDFORMATION = REPO / "infra" / "cloudformation" / "bua.yaml"


def deployments() -> list[dict[str, Any]]:
    return yaml.safe_load(PREFECT_YAML.read_text())["deployments"]


def by_name(name: str) -> dict[str, Any]:
    return next(d for d in deployments() if d["name"] == name)


def flow_schema(entrypoint: str) -> dict[str, Any]:
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    return parameter_schema(load_flow_from_entrypoint(str(REPO / entrypoint))).model_dump()


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["name"])
def test_every_entrypoint_imports_and_parameters_fit_the_flow_signature(deployment):
    from prefect.utilities.schema_tools import validate

    schema = flow_schema(deployment["entrypoint"])
    props = schema["properties"]
    given = dict(deployment.get("parameters") or {})
    for trigger in deployment.get("triggers") or []:
        unknown = set(trigger.get("parameters") or {}) - set(props)
        assert not unknown, f"trigger passes unknown parameters {unknown}"
        given.update({k: None for k in trigger.get("parameters") or {} if k not in given})
    assert set(given) <= set(props), f"unknown parameters {set(given) - set(props)}"
    concrete = {k: v for k, v in given.items() if v is not None}
    validate(concrete, schema, raise_on_error=True, ignore_required=True)
    missing = [p for p in schema.get("required", []) if p not in given]
    assert not missing, f"required parameters without a value: {missing}"
    assert deployment["work_pool"]["name"] == "bua"


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["name"])
def test_schedules_have_valid_cron_and_timezone(deployment):
    from prefect.client.schemas.schedules import CronSchedule

    for sched in deployment.get("schedules") or []:
        CronSchedule(cron=sched["cron"], timezone=sched["timezone"])  # raises on a bad cron or zone


def test_bua_monthly_runs_at_0200_on_the_first_in_the_configured_timezone():
    import datetime as dt
    from zoneinfo import ZoneInfo

    from prefect.server.schemas.schedules import CronSchedule

    from tasks.settings import Settings

    monthly = by_name("bua-monthly")
    assert monthly["entrypoint"] == "flows/monthly.py:bua_monthly"
    assert monthly["parameters"] == {}  # run_date defaults to the day it runs
    (sched,) = monthly["schedules"]
    assert sched["cron"] == "0 2 1 * *"
    assert sched["timezone"] == Settings.model_fields["timezone"].default == "Australia/Sydney"
    tz = ZoneInfo(sched["timezone"])
    schedule = CronSchedule(cron=sched["cron"], timezone=sched["timezone"])
    fires = [
        f.astimezone(tz)
        for f in asyncio.run(schedule.get_dates(n=3, start=dt.datetime(2026, 3, 15, tzinfo=tz)))
    ]
    assert [(f.month, f.day, f.hour, f.minute) for f in fires] == [(4, 1, 2, 0), (5, 1, 2, 0), (6, 1, 2, 0)]
    # 02:00 local on both sides of the end of daylight saving (first Sunday of April)
    assert [f.utcoffset() for f in fires[:2]] == [dt.timedelta(hours=11), dt.timedelta(hours=10)]


def test_bua_adhoc_has_no_schedule_and_every_parameter_is_typed_and_described():
    adhoc = by_name("bua-adhoc")
    assert not adhoc.get("schedules")
    props = flow_schema(adhoc["entrypoint"])["properties"]
    assert {"run_date", "period_start", "period_end", "basic_method", "shards"} <= set(props)
    for name, prop in props.items():
        assert prop.get("description"), f"{name} has no description"
        assert "type" in prop or "anyOf" in prop, f"{name} has no type"


def test_companion_deployments_are_merged_unchanged():
    if not COMPANION_YAML.exists():
        pytest.skip("no deployments/companion.yaml yet")
    ours = {d["name"]: d for d in deployments()}
    for entry in yaml.safe_load(COMPANION_YAML.read_text())["deployments"]:
        assert ours.get(entry["name"]) == entry, f"{entry['name']} differs from deployments/companion.yaml"


def test_ecs_base_job_template_is_valid_for_prefect_aws_ecs_worker(harness):
    import jsonschema
    from prefect.server.schemas.actions import validate_base_job_template
    from prefect_aws.workers.ecs_worker import ECSJobConfiguration, ECSVariables, ECSWorker

    template = json.loads(ECS_TEMPLATE.read_text())
    validate_base_job_template(template)  # every placeholder is a declared variable
    assert set(template["job_configuration"]) <= set(ECSJobConfiguration.model_fields)
    worker_vars = ECSVariables.model_json_schema()
    ours = template["variables"]["properties"]
    extra = set(ours) - set(worker_vars["properties"])
    assert extra == {"database_url_secret_arn"}
    for name, prop in ours.items():  # every default is valid for the worker's own variable schema
        if name in worker_vars["properties"] and "default" in prop and prop["default"] is not None:
            sub = {**worker_vars["properties"][name], "$defs": worker_vars.get("$defs", {})}
            jsonschema.validate(prop["default"], sub)
    assert (
        ECSWorker.get_default_base_job_template()["job_configuration"].keys()
        == template["job_configuration"].keys()
    )

    values = {
        "execution_role_arn": "arn:aws:iam::123456789012:role/bua-flow-execution",
        "task_role_arn": "arn:aws:iam::123456789012:role/bua-flow-task",
        "database_url_secret_arn": "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:bua-db",
        "image": "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/bua-prod:abc123",
    }
    config = asyncio.run(ECSJobConfiguration.from_template_and_values(template, values))
    assert config.cluster == "bua"
    assert config.configure_cloudwatch_logs is True
    container = config.task_definition["containerDefinitions"][0]
    assert container["image"] == values["image"]
    assert container["secrets"] == [
        {"name": "BUA_DATABASE_URL", "valueFrom": values["database_url_secret_arn"]}
    ]
    assert config.task_definition["cpu"] == "2048" or config.task_definition["cpu"] == 2048
    assert config.task_run_request["launchType"] == "FARGATE"


def test_ecs_template_is_what_the_generator_writes():
    from deployments.ecs_template import build_template

    assert json.loads(ECS_TEMPLATE.read_text()) == json.loads(json.dumps(build_template()))


def test_cloudformation_template_lints_clean():
    lint = shutil.which("cfn-lint")
    if lint is None:
        pytest.skip("cfn-lint is not installed on this machine")
    out = subprocess.run([lint, str(CLOUDFORMATION)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    text = CLOUDFORMATION.read_text()
    assert text.count("SSEAlgorithm: aws:kms") == 2  # both buckets encrypted
    assert "--pool, bua," in text  # the worker polls the pool prefect.yaml names


@pytest.mark.parametrize(
    "path", sorted((REPO / "deployments" / "params").glob("*.json")), ids=lambda p: p.name
)
def test_parameter_sets_fit_bua_monthly(path):
    from prefect.utilities.schema_tools import validate

    schema = flow_schema("flows/monthly.py:bua_monthly")
    params = json.loads(path.read_text())
    assert set(params) <= set(schema["properties"])
    validate(params, schema, raise_on_error=True, ignore_required=True)


def test_deploy_helper_applies_the_timezone_setting(monkeypatch):
    from deployments.deploy import render

    config = render("Australia/Perth", pool="bua-local")
    monthly = next(d for d in config["deployments"] if d["name"] == "bua-monthly")
    assert monthly["schedules"][0]["timezone"] == "Australia/Perth"
    assert all(d["work_pool"]["name"] == "bua-local" for d in config["deployments"])


def test_prefect_deploy_accepts_prefect_yaml_on_a_process_pool(harness, tmp_path):
    """`prefect deploy --all` against the harness's API, to a process pool named like the ECS one."""
    import os

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    from deployments.deploy import render

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name="bua", type="process"))
        except ObjectAlreadyExists:
            pass
    rendered = tmp_path / "prefect.yaml"
    rendered.write_text(yaml.safe_dump(render("Australia/Sydney"), sort_keys=False))
    out = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "prefect"),
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            str(rendered),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PREFECT_API_URL": harness},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    with get_client(sync_client=True) as client:
        monthly = client.read_deployment_by_name("bua_monthly/bua-monthly")
        adhoc = client.read_deployment_by_name("bua_monthly/bua-adhoc")
    (schedule,) = monthly.schedules
    assert schedule.schedule.cron == "0 2 1 * *" and schedule.schedule.timezone == "Australia/Sydney"
    assert monthly.work_pool_name == "bua" and not adhoc.schedules
    props = adhoc.parameter_openapi_schema["properties"]
    assert all(p.get("description") for p in props.values())
