"""The ECS work pool as docs/DEPLOY.md §3 sets it up, run by prefect-aws's real ECS worker against
moto's server (AWS over HTTP on this machine): `prefect work-pool create bua --type ecs
--base-job-template infra/ecs/base-job-template.json`, the pool variables from the stack's outputs
(`prefect work-pool update`), `python -m deployments.deploy`, `prefect worker start --pool bua
--type ecs`, then an ad-hoc flow run. The worker registers the task definition rendered from the
shipped template and runs the task (moto runs nothing): what AWS received is read back from moto —
image, roles, the database URL as an ECS secret, logs, network, the flow run's command and env."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.procs import BIN, REPO, Server, create_pool, deploy, run, start_server, start_worker, wait_for

pytestmark = pytest.mark.slow

TEMPLATE = REPO / "infra" / "ecs" / "base-job-template.json"
REGION = "ap-southeast-2"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="module")
def fargate_moto() -> Iterator[None]:
    """moto's RunTask sums the containers' own memory to place a task, even on Fargate, and fails
    (500, None + int) when a container sets none — which real Fargate allows: the container then
    shares the task's memory. Count it so while this module runs; nothing the worker sends changes."""
    import copy

    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def fargate_aware(task_definition: Any) -> dict[str, Any]:
        keys = ("memory", "memoryReservation", "Memory", "MemoryReservation")
        task_memory = int(getattr(task_definition, "memory", None) or 0)
        proxy = copy.copy(task_definition)
        proxy.container_definitions = [
            d if any(d.get(k) for k in keys) else {**d, "memory": task_memory}
            for d in task_definition.container_definitions
        ]
        return original(proxy)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            EC2ContainerServiceBackend, "_calculate_task_resource_requirements", staticmethod(fargate_aware)
        )
        yield


@pytest.fixture(scope="module")
def aws(s3_server: str, fargate_moto: None) -> dict[str, Any]:
    """What infra/cloudformation/bua.yaml would have made, in moto: the cluster, the two flow roles,
    the database-URL secret, a VPC with two private subnets and a security group, the log group."""
    import boto3

    def client(name: str) -> Any:
        return boto3.client(
            name,
            endpoint_url=s3_server,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    ecs, iam, sm, ec2, logs = (client(n) for n in ("ecs", "iam", "secretsmanager", "ec2", "logs"))
    ecs.create_cluster(clusterName="bua")
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    execution = iam.create_role(RoleName="bua-flow-execution", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    task = iam.create_role(RoleName="bua-flow-task", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    secret = sm.create_secret(Name="bua-db", SecretString="mysql+pymysql://bua:pw@db.internal/bua")["ARN"]
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    # as private Fargate subnets have it (and moto's awsvpc task attachment needs the ENI's DNS name)
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName="bua-flows", Description="bua flow tasks", VpcId=vpc)["GroupId"]
    logs.create_log_group(logGroupName="/bua/flows")
    return {
        "endpoint": s3_server,
        "ecs": ecs,
        "execution_role_arn": execution,
        "task_role_arn": task,
        "database_url_secret_arn": secret,
        "vpc_id": vpc,
        "subnets": subnets,
        "security_group": sg,
    }


def pool_variables(aws: dict[str, Any]) -> dict[str, Any]:
    """DEPLOY.md §3.3: the pool variables set from the stack outputs."""
    return {
        "image": "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/bua-prod:abc1234",
        "execution_role_arn": aws["execution_role_arn"],
        "task_role_arn": aws["task_role_arn"],
        "database_url_secret_arn": aws["database_url_secret_arn"],
        "vpc_id": aws["vpc_id"],
        # the awsvpcConfiguration itself: the worker wraps it (given wrapped, run_task was refused)
        "network_configuration": {
            "subnets": aws["subnets"],
            "securityGroups": [aws["security_group"]],
            "assignPublicIp": "DISABLED",
        },
        "env": {
            "BUA_METER_STORE": "s3://bua-prod-meter-store/ms",
            "BUA_OUTPUT_URL": "s3://bua-prod-outputs/out",
            "BUA_TIMEZONE": "Australia/Sydney",
            "BUA_SHARDS": "16",
        },
    }


@pytest.fixture(scope="module")
def ecs_site(aws: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Its own Prefect server (the pool is named bua, as in production), the ECS pool from the
    shipped template with the variables set by `prefect work-pool update`, the deployments, the
    ECS worker with AWS's endpoint pointed at moto."""
    base = tmp_path_factory.mktemp("e2e-ecs")
    server = start_server(base)
    try:
        create_pool(server, "ecs", base_job_template=TEMPLATE)
        template = json.loads(TEMPLATE.read_text())
        props = template["variables"]["properties"]
        for name, value in pool_variables(aws).items():
            # env is added to, as DEPLOY.md says: the template's own entries stay
            props[name]["default"] = {**props[name]["default"], **value} if name == "env" else value
        updated = base / "pool-template.json"
        updated.write_text(json.dumps(template))
        env = server.env(base / "admin-home")
        cmd = [str(BIN / "prefect"), "work-pool", "update", "bua", "--base-job-template", str(updated)]
        run(cmd, env, server.logs / "deploy.log")
        deploy(server)
        # botocore's AWS_ENDPOINT_URL sends every client of the worker (ecs, ec2, logs) to moto
        worker_env = {**AWS, "AWS_ENDPOINT_URL": aws["endpoint"], "PREFECT_WORKER_QUERY_SECONDS": "1"}
        worker = start_worker(server, base, worker_env, pool_type="ecs")
        try:
            yield {"server": server, "worker": worker, "base": base}
        finally:
            worker.stop()
    finally:
        server.proc.stop()


@pytest.fixture(scope="module")
def submitted(ecs_site: dict[str, Any], aws: dict[str, Any]) -> dict[str, Any]:
    """An ad-hoc run handed to the ECS worker; what moto then holds."""
    server: Server = ecs_site["server"]
    run_id = server.create_flow_run("bua_monthly/bua-adhoc", {"run_date": "2026-11-01"})

    def handed_over() -> dict[str, Any] | None:
        fr = server.flow_run(run_id)
        if fr.get("infrastructure_pid"):
            return fr
        if (fr.get("state") or {}).get("type") in ("CRASHED", "FAILED"):
            raise AssertionError(f"the ECS worker failed the run: {fr['state']}\n{ecs_site['worker'].tail()}")
        return None

    fr = wait_for("the ECS worker to start the task", handed_over, 180)
    ecs = aws["ecs"]
    arns = ecs.list_tasks(cluster="bua")["taskArns"]
    tasks = ecs.describe_tasks(cluster="bua", tasks=arns)["tasks"]
    (task,) = [t for t in tasks if t["taskArn"] in fr["infrastructure_pid"]]
    taskdef = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    return {"flow_run": fr, "task": task, "taskdef": taskdef, "run_id": run_id}


def test_the_worker_registers_the_task_definition_from_the_shipped_template(submitted, aws):
    td = submitted["taskdef"]
    variables = pool_variables(aws)
    assert td["family"] == "bua-flow"
    assert td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc"
    assert (td["cpu"], td["memory"]) == ("2048", "8192")
    assert td["executionRoleArn"] == aws["execution_role_arn"]
    (container,) = td["containerDefinitions"]
    assert container["name"] == "bua" and container["image"] == variables["image"]
    # the database URL is an ECS secret from Secrets Manager, resolved by ECS with the execution role
    assert container["secrets"] == [{"name": "BUA_DATABASE_URL", "valueFrom": aws["database_url_secret_arn"]}]
    assert not [e for e in container.get("environment", []) if e["name"] == "BUA_DATABASE_URL"]
    log = container["logConfiguration"]
    assert log["logDriver"] == "awslogs"
    assert log["options"]["awslogs-group"] == "/bua/flows"
    assert log["options"]["awslogs-stream-prefix"] == "bua"


def test_the_worker_runs_the_task_with_the_task_role_network_and_the_flow_runs_env(submitted, aws):
    task = submitted["task"]
    assert task["clusterArn"].endswith(":cluster/bua")
    assert task.get("launchType") == "FARGATE"
    overrides = task["overrides"]
    assert overrides["taskRoleArn"] == aws["task_role_arn"]
    (container,) = overrides["containerOverrides"]
    assert container["name"] == "bua"
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["PREFECT__FLOW_RUN_ID"] == submitted["run_id"]
    for name, value in pool_variables(aws)["env"].items():
        assert env[name] == value
    assert env["BUA_TASK_RUNNER"] == "thread" and env["BUA_MAX_WORKERS"] == "2"  # the template's defaults
    assert "BUA_DATABASE_URL" not in env  # never a plain variable
    assert "PREFECT_API_URL" in env
    assert container["command"][:3] == ["prefect", "flow-run", "execute"] or "prefect" in " ".join(
        container["command"]
    )
    net = task.get("attachments") or []
    assert net == [] or any(a.get("type") == "ElasticNetworkInterface" for a in net)


def test_the_flow_run_is_handed_to_ecs_and_nothing_was_rejected(submitted, ecs_site):
    fr = submitted["flow_run"]
    assert fr["state"]["type"] in ("PENDING", "RUNNING", "SCHEDULED"), fr["state"]
    assert fr["infrastructure_pid"].startswith("bua::arn:aws:ecs:")
    text = ecs_site["worker"].text()
    assert "Traceback" not in text and "ClientError" not in text, ecs_site["worker"].tail()


def test_a_run_on_a_pool_without_the_database_secret_arn_is_refused(ecs_site: dict[str, Any]):
    """The template requires database_url_secret_arn: on a pool made from it without that variable,
    the server refuses to create a flow run (otherwise the rendered secret would have no valueFrom —
    prefect-aws drops empty keys — and the container would start without BUA_DATABASE_URL)."""
    import httpx

    server: Server = ecs_site["server"]
    template = json.loads(TEMPLATE.read_text())
    assert "database_url_secret_arn" in template["variables"]["required"]
    server.post("/work_pools/", {"name": "bua-unset", "type": "ecs", "base_job_template": template})
    flow_id = server.post("/flows/", {"name": "bua-unset-probe"})["id"]
    dep = server.post(
        "/deployments/",
        {
            "name": "probe",
            "flow_id": flow_id,
            "work_pool_name": "bua-unset",
            "entrypoint": "flows/monthly.py:bua_monthly",
        },
    )
    with pytest.raises(httpx.HTTPStatusError) as refused:
        server.post(f"/deployments/{dep['id']}/create_flow_run", {"parameters": {}})
    assert refused.value.response.status_code == 422
    assert "database_url_secret_arn" in refused.value.response.text
    # with the variable given (as the pool's default or the run's job variable) it is accepted
    arn = "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:bua-db"
    body = {"parameters": {}, "job_variables": {"database_url_secret_arn": arn}}
    assert server.post(f"/deployments/{dep['id']}/create_flow_run", body)["id"]
