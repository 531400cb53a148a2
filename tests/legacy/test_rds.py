"""RDS restore and teardown against moto's server over HTTP (RDS, KMS, EC2, Secrets Manager, Route 53).

moto's instances and snapshots are "available" at once; the timeout test holds an instance in
"creating" by setting its status on moto's backend (the server runs in this process), which is the
one state a real restore spends most of its time in.
"""

from __future__ import annotations

import datetime as dt
import uuid

import boto3
import pytest

from tasks.adapters import rds
from tasks.adapters.aws import AwsConfig

RUN = dt.date(2026, 11, 1)
REGION = "ap-southeast-2"
PASSWORD = "s3cr3t/with:odd@chars"


@pytest.fixture
def env(aws_server, aws_env):  # noqa: ANN001
    """A source instance and its snapshot (the 'shared' one), a KMS key, groups, a secret and a zone."""
    prefix = f"bua-{uuid.uuid4().hex[:6]}"
    mk = lambda svc: boto3.client(svc, endpoint_url=aws_server, region_name=REGION)  # noqa: E731
    r, ec2 = mk("rds"), mk("ec2")
    key = mk("kms").create_key(Description="bua project key")["KeyMetadata"]["KeyId"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"][
            "SubnetId"
        ]
        for i, z in ((1, "a"), (2, "b"))
    ]
    r.create_db_subnet_group(
        DBSubnetGroupName=f"{prefix}-sn", DBSubnetGroupDescription="x", SubnetIds=subnets
    )
    r.create_db_parameter_group(
        DBParameterGroupName=f"{prefix}-pg", DBParameterGroupFamily="mariadb10.11", Description="x"
    )
    r.create_db_instance(
        DBInstanceIdentifier=f"{prefix}-prod", Engine="mariadb", EngineVersion="10.11.8", DBInstanceClass="db.m5.large",
        MasterUsername="bua", MasterUserPassword="production-password", AllocatedStorage=20,
    )  # fmt: skip
    r.create_db_snapshot(DBInstanceIdentifier=f"{prefix}-prod", DBSnapshotIdentifier=f"{prefix}-shared")
    secret = mk("secretsmanager").create_secret(
        Name=f"{prefix}-db", SecretString=f'{{"password": "{PASSWORD}"}}'
    )["ARN"]
    zone = mk("route53").create_hosted_zone(Name="internal.example.", CallerReference=prefix)["HostedZone"][
        "Id"
    ]
    cfg = rds.RdsConfig(
        source_snapshot=f"{prefix}-shared", kms_key_id=key, instance_prefix=prefix, instance_class="db.r6g.large",
        parameter_group=f"{prefix}-pg", subnet_group=f"{prefix}-sn", app_user="bua", password_secret=secret,
        database_name="billing", route53_zone_id=zone, route53_name=f"{prefix}.internal.example.",
        final_snapshot=True, wait_timeout_seconds=2.0, poll_seconds=0.05, aws=AwsConfig(REGION, aws_server),
    )  # fmt: skip
    return cfg, rds.Clients.for_config(cfg), r


def _alias(clients: rds.Clients, cfg: rds.RdsConfig) -> str | None:
    return rds._alias_target(clients, cfg)


def test_restore_happy_path_then_teardown(env) -> None:  # noqa: ANN001
    cfg, c, r = env
    said: list[str] = []
    db = rds.restore(c, cfg, RUN, said.append)
    name = f"{cfg.instance_prefix}-20261101"
    assert (db.instance, db.snapshot, db.reused) == (name, f"{name}-copy", False)
    snap = r.describe_db_snapshots(DBSnapshotIdentifier=f"{name}-copy")["DBSnapshots"][0]
    assert snap["KmsKeyId"].endswith(cfg.kms_key_id) and snap["Encrypted"] is True
    inst = r.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
    assert inst["DBInstanceClass"] == "db.r6g.large"
    assert inst["DBSubnetGroup"]["DBSubnetGroupName"] == cfg.subnet_group
    assert inst["DBParameterGroups"][0]["DBParameterGroupName"] == cfg.parameter_group
    assert {"Key": "bua:run-date", "Value": "2026-11-01"} in inst["TagList"]
    assert _alias(c, cfg) == db.host
    # the URL is built in the worker only: alias host, user, quoted password, database
    assert rds.database_url(c, cfg, RUN) == (
        f"mysql+pymysql://bua:s3cr3t%2Fwith%3Aodd%40chars@{cfg.instance_prefix}.internal.example:{db.port}/billing"
    )
    # progress says what happened, never the password
    assert any("copying snapshot" in s for s in said) and not any(PASSWORD in s for s in said)
    assert PASSWORD not in repr(db)

    down = rds.teardown(c, cfg, RUN, said.append)
    assert down == rds.Teardown(True, f"{name}-final", True, True)
    assert rds.instance(r, name) is None and rds.snapshot_status(r, f"{name}-copy") is None
    assert rds.snapshot_status(r, f"{name}-final") == "available" and _alias(c, cfg) is None
    # teardown again: nothing left to do, no error
    assert rds.teardown(c, cfg, RUN, said.append) == rds.Teardown(False, f"{name}-final", False, False)


def test_rerun_reuses_an_earlier_attempts_instance(env) -> None:  # noqa: ANN001
    cfg, c, r = env
    first = rds.restore(c, cfg, RUN, lambda s: None)
    said: list[str] = []
    again = rds.restore(c, cfg, RUN, said.append)
    assert again.reused and again.instance == first.instance and again.host == first.host
    assert any("reusing" in s for s in said) and not any("restoring" in s for s in said)
    # one instance and one copy of this run date, not two
    mine = [
        i
        for i in r.describe_db_instances()["DBInstances"]
        if i["DBInstanceIdentifier"].startswith(cfg.instance_prefix + "-2")
    ]
    assert len(mine) == 1


def test_wait_times_out_with_a_clear_error(env) -> None:  # noqa: ANN001
    cfg, c, r = env
    from moto.backends import get_backend

    rds.copy_snapshot(c, cfg, RUN, lambda s: None)
    name = rds.names(cfg, RUN).instance
    r.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier=name, DBSnapshotIdentifier=f"{name}-copy", Tags=rds._tags(cfg, RUN)
    )
    get_backend("rds")["123456789012"][REGION].databases[name].status = "creating"
    with pytest.raises(rds.RdsTimeout, match=rf"instance {name} still 'creating' after \d+ s"):
        rds.restore_instance(c, cfg, RUN, lambda s: None)


def test_failure_midway_then_rerun_succeeds_and_cleans_up(env) -> None:  # noqa: ANN001
    cfg, c, r = env
    # an earlier run date's attempt died before its teardown: its instance and copy are orphans
    old = dt.date(2026, 10, 1)
    rds.copy_snapshot(c, cfg, old, lambda s: None)
    rds.restore_instance(c, cfg, old, lambda s: None)
    # this run date: the copy and restore succeed, then the password reset fails (secret unreadable)
    broken = rds.RdsConfig(**{**cfg.__dict__, "password_secret": "no-such-secret"})
    with pytest.raises(Exception, match="cannot read secret 'no-such-secret': ResourceNotFoundException"):
        rds.restore(c, broken, RUN, lambda s: None)
    assert rds.instance_status(r, rds.names(cfg, RUN).instance) == "available"
    assert rds.instance(r, rds.names(cfg, old).instance) is None  # the orphan went at the start of this run
    # the instance failed meanwhile: the re-run removes it and restores anew; the copy is reused
    from moto.backends import get_backend

    get_backend("rds")["123456789012"][REGION].databases[rds.names(cfg, RUN).instance].status = "failed"
    said: list[str] = []
    db = rds.restore(c, cfg, RUN, said.append)
    assert not db.reused
    assert any("is failed: removing it" in s for s in said) and any(
        "exists (available): reusing it" in s for s in said
    )
    assert rds.snapshot_status(r, rds.names(cfg, old).snapshot) is None
    assert rds.database_url(c, cfg, RUN).startswith("mysql+pymysql://bua:")
