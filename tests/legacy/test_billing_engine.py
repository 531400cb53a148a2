"""The external billing engine: the real `kubernetes` client against a local API server (tests/legacy/fake_k8s.py),
the node group on moto's EKS over HTTP, the engine's run through HTTP (SQLite) or a MariaDB stored procedure.

Expected lines are the rows the stand-in engine writes (two lines for account 7 written by hand below),
read back through sql/engine_invoice_lines.sql with quantity_estimated = quantity - quantity_actual.
"""

from __future__ import annotations

import datetime as dt
import uuid

import boto3
import pytest
import sqlalchemy as sa

from tasks.adapters import billing_engine as be
from tasks.adapters.aws import AwsConfig
from tests.legacy import fake_k8s
from tests.legacy.conftest import REGION

RUN = dt.date(2026, 11, 1)
ENGINE_DDL = (
    "CREATE TABLE account (id INTEGER PRIMARY KEY, account_number VARCHAR(32) NOT NULL)",
    "CREATE TABLE billing_engine_run (run_date DATE NOT NULL, status VARCHAR(16) NOT NULL)",
    "CREATE TABLE billing_engine_line (run_date DATE NOT NULL, account_id INTEGER NOT NULL, year_mnth INTEGER NOT NULL,"
    " ili_state VARCHAR(20) NOT NULL, discount_state VARCHAR(16) NOT NULL, plan_item_type_name VARCHAR(32) NOT NULL,"
    " feature_type_name VARCHAR(32) NOT NULL, time_class_name VARCHAR(16) NOT NULL, unit VARCHAR(8) NOT NULL,"
    " quantity DECIMAL(18,3) NOT NULL, quantity_actual DECIMAL(18,3) NOT NULL, net_amount DECIMAL(14,2) NOT NULL,"
    " discount_net DECIMAL(14,2) NOT NULL, discount_net_propensity DECIMAL(14,2) NOT NULL, gst_amount DECIMAL(14,2) NOT NULL)",
)
LINES = (
    "INSERT INTO billing_engine_line VALUES ('{d}', 7, 202610, 'NOT_YET_DUE', 'NONE', 'USAGE_RETAIL', 'USAGE',"
    " 'ANYTIME', 'KWH', 312.500, 300.000, 93.75, 0.00, 0.00, 9.38)",
    "INSERT INTO billing_engine_line VALUES ('{d}', 7, 202610, 'NOT_YET_DUE', 'NONE', 'DAILY_RETAIL', 'SUPPLY',"
    " 'ANYTIME', 'DAY', 31.000, 31.000, 31.00, 0.00, 0.00, 3.10)",
)


def _db(url: str) -> sa.Engine:
    eng = sa.create_engine(url)
    with eng.begin() as c:
        for ddl in ENGINE_DDL:
            c.execute(sa.text(ddl))
        c.execute(sa.text("INSERT INTO account VALUES (7, '3000123456')"))
    return eng


@pytest.fixture
def eks(aws_server, aws_env):  # noqa: ANN001
    client = boto3.client("eks", endpoint_url=aws_server, region_name=REGION)
    name = f"billing-{uuid.uuid4().hex[:6]}"
    client.create_cluster(name=name, roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={})
    client.create_nodegroup(
        clusterName=name, nodegroupName="engine", nodeRole="arn:aws:iam::123456789012:role/node",
        subnets=["subnet-1"], scalingConfig={"minSize": 0, "maxSize": 2, "desiredSize": 0},
    )  # fmt: skip
    return client, name


def _nodes(eks_client, cluster: str) -> int:  # noqa: ANN001
    return eks_client.describe_nodegroup(clusterName=cluster, nodegroupName="engine")["nodegroup"][
        "scalingConfig"
    ]["desiredSize"]


def _cfg(host: str, cluster: str, aws_server: str, **kw) -> be.EngineConfig:  # noqa: ANN003
    base = dict(
        namespace="billing", deployments=(("engine-api", 2), ("engine-worker", 3)), kube_host=host,
        eks_cluster=cluster, eks_nodegroup="engine", eks_nodes=4, trigger="http", http_url=f"{host}/engine",
        timeout_seconds=5.0, poll_seconds=0.02, aws=AwsConfig(REGION, aws_server),
    )  # fmt: skip
    base.update(kw)
    return be.EngineConfig(**base)


def _scales(state: fake_k8s.State) -> list[tuple[str, int]]:
    return [(p.split("/")[-2], b["spec"]["replicas"]) for m, p, b in state.requests if m == "PATCH"]


def test_engine_run_scales_up_runs_reads_lines_and_scales_down(tmp_path, eks, aws_server) -> None:  # noqa: ANN001
    eks_client, cluster = eks
    url = f"sqlite:///{tmp_path}/billing.db"
    eng = _db(url)
    seen: dict[str, object] = {}

    def on_start(run_date: str) -> None:  # the engine, started over HTTP, writes its lines
        seen["nodes"] = _nodes(eks_client, cluster)
        seen["ready"] = {n: (d.replicas, d.ready) for n, d in state.deployments.items()}
        with eng.begin() as c:
            for sql in LINES:
                c.execute(sa.text(sql.format(d=run_date)))

    state = fake_k8s.State(
        {"engine-api": fake_k8s.Deployment(), "engine-worker": fake_k8s.Deployment()}, on_start=on_start
    )
    server, host = fake_k8s.serve(state)
    try:
        lines = be.engine_lines(
            _cfg(host, cluster, aws_server), url, RUN, "run-x", http_token="tok", progress=lambda s: None
        )
    finally:
        server.shutdown()
    # up before the engine started (4 nodes, every replica ready), down to 0 after
    assert seen == {"nodes": 4, "ready": {"engine-api": (2, 2), "engine-worker": (3, 3)}}
    assert _scales(state) == [
        ("engine-api", 2),
        ("engine-worker", 3),
        ("engine-api", 0),
        ("engine-worker", 0),
    ]
    assert _nodes(eks_client, cluster) == 0
    assert state.auth and set(state.auth) == {"Bearer tok"}
    assert lines.columns[:2] == ["run_id", "run_date"] and lines.height == 2
    supply, usage = lines.sort("plan_item_type_name").to_dicts()
    assert (
        supply["plan_item_type_name"],
        supply["quantity"],
        supply["quantity_estimated"],
        supply["gst_amount"],
    ) == ("DAILY_RETAIL", 31.0, 0.0, 3.10)
    assert (usage["account_number"], usage["quantity_estimated"], usage["net_amount"], usage["run_id"]) == (
        "3000123456",
        12.5,
        93.75,
        "run-x",
    )


def test_engine_failure_still_scales_down(tmp_path, eks, aws_server) -> None:  # noqa: ANN001
    eks_client, cluster = eks
    url = f"sqlite:///{tmp_path}/billing.db"
    _db(url)
    state = fake_k8s.State(
        {"engine-api": fake_k8s.Deployment(), "engine-worker": fake_k8s.Deployment()}, engine_outcome="FAILED"
    )
    server, host = fake_k8s.serve(state)
    try:
        with pytest.raises(be.EngineError, match="invoice run for 2026-11-01 ended FAILED"):
            be.engine_lines(_cfg(host, cluster, aws_server), url, RUN, "run-x", progress=lambda s: None)
    finally:
        server.shutdown()
    assert _scales(state)[-2:] == [("engine-api", 0), ("engine-worker", 0)]
    assert {n: d.replicas for n, d in state.deployments.items()} == {"engine-api": 0, "engine-worker": 0}
    assert _nodes(eks_client, cluster) == 0


def test_deployment_never_ready_times_out_and_scales_down(tmp_path, eks, aws_server) -> None:  # noqa: ANN001
    eks_client, cluster = eks
    url = f"sqlite:///{tmp_path}/billing.db"
    _db(url)
    state = fake_k8s.State(
        {"engine-api": fake_k8s.Deployment(), "engine-worker": fake_k8s.Deployment()}, stuck={"engine-worker"}
    )
    server, host = fake_k8s.serve(state)
    try:
        with pytest.raises(
            be.EngineError, match=r"engine deployments still engine-api 2/2, engine-worker 0/3 after"
        ):
            be.engine_lines(
                _cfg(host, cluster, aws_server, timeout_seconds=0.5), url, RUN, "r", progress=lambda s: None
            )
    finally:
        server.shutdown()
    assert not any(p.startswith("/engine") for _, p, _ in state.requests)  # never started the engine
    assert (
        _scales(state)[-2:] == [("engine-api", 0), ("engine-worker", 0)] and _nodes(eks_client, cluster) == 0
    )


def test_engine_lines_missing_column_names_the_sql_file(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path}/billing.db"
    eng = _db(url)
    with eng.begin() as c:
        c.execute(sa.text("INSERT INTO billing_engine_run VALUES ('2026-11-01', 'COMPLETED')"))
    import tasks.adapters.db as db

    monkeypatch.setattr(db, "sql_text", lambda name: "SELECT 7 AS account_id")
    with pytest.raises(
        be.EngineError, match=r"sql/engine_invoice_lines.sql returns no column\(s\) account_number, year_mnth"
    ):
        be.read_lines(url, be.EngineConfig(), RUN, "r")


def test_sql_trigger_calls_the_engines_procedure_on_mariadb(tmp_path, eks, aws_server) -> None:  # noqa: ANN001
    from tests.dbservers import fresh_database, server_problem

    if problem := server_problem("mariadb"):
        pytest.skip(problem)
    eks_client, cluster = eks
    with fresh_database("mariadb", tmp_path) as url:
        eng = _db(url)
        with eng.begin() as c:
            c.execute(sa.text(
                "CREATE PROCEDURE billing_engine_invoice_run(IN p_run_date DATE) BEGIN "
                "INSERT INTO billing_engine_run VALUES (p_run_date, 'COMPLETED'); "
                + " ".join(sql.format(d="{d}").replace("'{d}'", "p_run_date") + ";" for sql in LINES)
                + " END"
            ))  # fmt: skip
        state = fake_k8s.State({"engine-api": fake_k8s.Deployment(), "engine-worker": fake_k8s.Deployment()})
        server, host = fake_k8s.serve(state)
        try:
            lines = be.engine_lines(
                _cfg(host, cluster, aws_server, trigger="sql"), url, RUN, "run-m", progress=lambda s: None
            )
        finally:
            server.shutdown()
            eng.dispose()
        assert sorted(lines["net_amount"].to_list()) == [31.0, 93.75]
        assert lines["quantity_estimated"].to_list() == [0.0, 12.5]  # DAILY_RETAIL sorts before USAGE_RETAIL
        assert (
            _scales(state)[-2:] == [("engine-api", 0), ("engine-worker", 0)]
            and _nodes(eks_client, cluster) == 0
        )
