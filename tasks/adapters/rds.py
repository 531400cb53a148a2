"""Restore the billing database from a shared RDS snapshot for one run date, and tear it down after.

Steps (each idempotent, found again by deterministic names from the run date and the tag
``bua:managed``): copy the shared, encrypted snapshot re-encrypted with the project's KMS key
(``{prefix}-{YYYYMMDD}-copy``); restore it as ``{prefix}-{YYYYMMDD}`` with the configured
instance class, parameter group, subnet group and security groups; wait for each with a bounded
timeout, reporting progress; reset the application (master) user's password from a Secrets
Manager secret; optionally UPSERT a Route 53 CNAME to the instance. A re-run finds and reuses
what an earlier attempt created (a failed or half-deleted instance is removed and restored anew);
:func:`cleanup_orphans` removes what runs of other run dates left. Teardown deletes the instance
(optionally after a final snapshot ``{prefix}-{YYYYMMDD}-final``), the copied snapshot and the
DNS record. The database URL (with the password) is built only by :func:`database_url`, inside the
worker; nothing returned by the phase functions carries a secret.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tasks.adapters.aws import secret_value
from tasks.adapters.rds_config import (
    BROKEN,
    MANAGED_TAG,
    RUN_DATE_TAG,
    Clients,
    Names,
    Progress,
    RdsConfig,
    RdsError,
    RestoredDatabase,
    _code,
    _tags,
    instance,
    instance_status,
    names,
    snapshot_status,
    wait_for,
)
from tasks.adapters.rds_config import RdsTimeout as RdsTimeout

log = logging.getLogger(__name__)


def copy_snapshot(c: Clients, cfg: RdsConfig, run_date: dt.date, progress: Progress = log.info) -> str:
    """The shared snapshot copied with the project's KMS key (an earlier attempt's copy is reused)."""
    n = names(cfg, run_date)
    status = snapshot_status(c.rds, n.snapshot)
    if status in BROKEN:
        progress(f"snapshot {n.snapshot} is {status}: deleting it and copying again")
        c.rds.delete_db_snapshot(DBSnapshotIdentifier=n.snapshot)
        status = None
    if status is None:
        progress(f"copying snapshot {cfg.source_snapshot} to {n.snapshot} with KMS key {cfg.kms_key_id}")
        c.rds.copy_db_snapshot(
            SourceDBSnapshotIdentifier=cfg.source_snapshot,
            TargetDBSnapshotIdentifier=n.snapshot,
            KmsKeyId=cfg.kms_key_id,
            Tags=_tags(cfg, run_date),
        )
    else:
        progress(f"snapshot {n.snapshot} exists ({status}): reusing it")
    wait_for(
        f"snapshot {n.snapshot}",
        lambda: snapshot_status(c.rds, n.snapshot),
        lambda s: s == "available",
        cfg,
        progress,
    )
    return n.snapshot


def _delete_instance(c: Clients, cfg: RdsConfig, name: str, final: str | None, progress: Progress) -> None:
    kwargs: dict[str, Any] = {"DBInstanceIdentifier": name, "DeleteAutomatedBackups": True}
    if final and snapshot_status(c.rds, final) is None:
        kwargs["FinalDBSnapshotIdentifier"] = final
        progress(f"deleting instance {name} after a final snapshot {final}")
    else:
        kwargs["SkipFinalSnapshot"] = True
        progress(f"deleting instance {name}" + (f" (final snapshot {final} already taken)" if final else ""))
    try:
        c.rds.delete_db_instance(**kwargs)
    except Exception as exc:
        if _code(exc) not in ("DBInstanceNotFound", "InvalidDBInstanceState"):
            raise
    wait_for(
        f"instance {name} deletion", lambda: instance_status(c.rds, name), lambda s: s is None, cfg, progress
    )


def restore_instance(
    c: Clients, cfg: RdsConfig, run_date: dt.date, progress: Progress = log.info
) -> RestoredDatabase:
    """The instance restored from the copy, available (an earlier attempt's instance is reused)."""
    n = names(cfg, run_date)
    found = instance(c.rds, n.instance)
    status = None if found is None else found["DBInstanceStatus"]
    if status in BROKEN or status == "deleting":
        progress(f"instance {n.instance} is {status}: removing it and restoring again")
        _delete_instance(c, cfg, n.instance, None, progress)
        status = None
    reused = status is not None
    if status is None:
        progress(f"restoring {n.instance} ({cfg.instance_class}) from {n.snapshot}")
        kwargs: dict[str, Any] = {
            "DBInstanceIdentifier": n.instance,
            "DBSnapshotIdentifier": n.snapshot,
            "DBInstanceClass": cfg.instance_class,
            "PubliclyAccessible": False,
            "DeletionProtection": False,
            "Tags": _tags(cfg, run_date),
        }
        if cfg.parameter_group:
            kwargs["DBParameterGroupName"] = cfg.parameter_group
        if cfg.subnet_group:
            kwargs["DBSubnetGroupName"] = cfg.subnet_group
        if cfg.security_group_ids:
            kwargs["VpcSecurityGroupIds"] = list(cfg.security_group_ids)
        c.rds.restore_db_instance_from_db_snapshot(**kwargs)
    elif status in ("stopped", "stopping"):
        if status == "stopping":
            wait_for(
                f"instance {n.instance}",
                lambda: instance_status(c.rds, n.instance),
                lambda s: s == "stopped",
                cfg,
                progress,
            )
        progress(f"instance {n.instance} is stopped: starting it")
        c.rds.start_db_instance(DBInstanceIdentifier=n.instance)
    else:
        progress(f"instance {n.instance} exists ({status}): reusing it")
    wait_for(
        f"instance {n.instance}",
        lambda: instance_status(c.rds, n.instance),
        lambda s: s == "available",
        cfg,
        progress,
    )
    return _restored(c.rds, n, reused)


def _restored(rds: Any, n: Names, reused: bool) -> RestoredDatabase:
    inst = instance(rds, n.instance)
    if inst is None:
        raise RdsError(f"instance {n.instance} disappeared")
    ep = inst.get("Endpoint") or {}
    return RestoredDatabase(
        instance=n.instance, snapshot=n.snapshot, host=ep.get("Address", ""), port=int(ep.get("Port", 3306)),
        engine=inst.get("Engine", ""), reused=reused,
    )  # fmt: skip


def reset_password(c: Clients, cfg: RdsConfig, run_date: dt.date, progress: Progress = log.info) -> None:
    """Set the instance's master (= application) user's password to the secret's value (idempotent)."""
    if not cfg.password_secret or c.secrets is None:
        raise RdsError("BUA_RDS_PASSWORD_SECRET is not set: the restored instance's password cannot be reset")
    n = names(cfg, run_date)
    inst = instance(c.rds, n.instance)
    if inst is None:
        raise RdsError(f"instance {n.instance} does not exist: restore it first")
    if inst.get("MasterUsername") != cfg.app_user:
        raise RdsError(
            f"instance {n.instance}'s master user is {inst.get('MasterUsername')!r}, not BUA_RDS_APP_USER {cfg.app_user!r}"
        )
    password = secret_value(c.secrets, cfg.password_secret)
    progress(f"resetting the password of {cfg.app_user} on {n.instance} from secret {cfg.password_secret}")
    c.rds.modify_db_instance(
        DBInstanceIdentifier=n.instance, MasterUserPassword=password, ApplyImmediately=True
    )
    wait_for(
        f"instance {n.instance}",
        lambda: instance_status(c.rds, n.instance),
        lambda s: s == "available",
        cfg,
        progress,
    )


def point_alias(
    c: Clients, cfg: RdsConfig, db: RestoredDatabase, progress: Progress = log.info
) -> str | None:
    """UPSERT the Route 53 CNAME ``route53_name`` → the instance's endpoint; returns the name (None: not configured)."""
    if not cfg.route53_zone_id or not cfg.route53_name or c.route53 is None:
        return None
    progress(f"pointing {cfg.route53_name} at {db.host}")
    c.route53.change_resource_record_sets(
        HostedZoneId=cfg.route53_zone_id,
        ChangeBatch={
            "Comment": f"bua: {db.instance}",
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                "Name": cfg.route53_name, "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": db.host}],
            }}],
        },
    )  # fmt: skip
    return cfg.route53_name


def _alias_target(c: Clients, cfg: RdsConfig) -> str | None:
    if not cfg.route53_zone_id or not cfg.route53_name or c.route53 is None:
        return None
    want = cfg.route53_name.rstrip(".") + "."
    sets = c.route53.list_resource_record_sets(
        HostedZoneId=cfg.route53_zone_id, StartRecordName=want, StartRecordType="CNAME", MaxItems="1"
    )["ResourceRecordSets"]
    for rs in sets:
        if rs["Name"] == want and rs["Type"] == "CNAME":
            return rs["ResourceRecords"][0]["Value"]
    return None


def drop_alias(c: Clients, cfg: RdsConfig, host: str, progress: Progress = log.info) -> bool:
    """Delete the CNAME if it still points at ``host`` (another run's target is left alone)."""
    if _alias_target(c, cfg) != host:
        return False
    progress(f"removing {cfg.route53_name} (pointed at {host})")
    c.route53.change_resource_record_sets(
        HostedZoneId=cfg.route53_zone_id,
        ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": {
            "Name": cfg.route53_name, "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": host}],
        }}]},
    )  # fmt: skip
    return True


def database_url(c: Clients, cfg: RdsConfig, run_date: dt.date) -> str:
    """The run's SQLAlchemy URL (host: the alias when configured). Secret: build it in the worker, never return it from a task."""
    n = names(cfg, run_date)
    db = _restored(c.rds, n, True)
    if not cfg.password_secret or c.secrets is None:
        raise RdsError("BUA_RDS_PASSWORD_SECRET is not set")
    password = secret_value(c.secrets, cfg.password_secret)
    host = (cfg.route53_name or db.host).rstrip(".") if cfg.route53_zone_id else db.host
    return f"{cfg.url_driver}://{quote(cfg.app_user, safe='')}:{quote(password, safe='')}@{host}:{db.port}/{cfg.database_name}"


def restore(c: Clients, cfg: RdsConfig, run_date: dt.date, progress: Progress = log.info) -> RestoredDatabase:
    """The whole restore phase: orphans of other run dates removed, copy, restore, password, alias."""
    cleanup_orphans(c, cfg, run_date, progress)
    copy_snapshot(c, cfg, run_date, progress)
    db = restore_instance(c, cfg, run_date, progress)
    reset_password(c, cfg, run_date, progress)
    point_alias(c, cfg, db, progress)
    return db


@dataclass(frozen=True)
class Teardown:
    instance_deleted: bool
    final_snapshot: str | None
    snapshot_deleted: bool
    alias_removed: bool


def teardown(c: Clients, cfg: RdsConfig, run_date: dt.date, progress: Progress = log.info) -> Teardown:
    """Delete the run date's instance (final snapshot first when configured), its copied snapshot and alias."""
    n = names(cfg, run_date)
    inst = instance(c.rds, n.instance)
    alias_removed = False
    if inst is not None:
        host = (inst.get("Endpoint") or {}).get("Address", "")
        alias_removed = drop_alias(c, cfg, host, progress) if host else False
        _delete_instance(c, cfg, n.instance, n.final_snapshot if cfg.final_snapshot else None, progress)
    snap_deleted = False
    if snapshot_status(c.rds, n.snapshot) is not None:
        progress(f"deleting snapshot {n.snapshot}")
        c.rds.delete_db_snapshot(DBSnapshotIdentifier=n.snapshot)
        snap_deleted = True
    final = n.final_snapshot if cfg.final_snapshot and snapshot_status(c.rds, n.final_snapshot) else None
    return Teardown(inst is not None, final, snap_deleted, alias_removed)


def _managed_run_date(rds: Any, arn: str, cfg: RdsConfig) -> str | None:
    tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=arn)["TagList"]}
    return tags.get(RUN_DATE_TAG) if tags.get(MANAGED_TAG) == cfg.instance_prefix else None


def cleanup_orphans(
    c: Clients, cfg: RdsConfig, run_date: dt.date, progress: Progress = log.info
) -> list[str]:
    """Delete instances and copied snapshots that bua made (tag ``bua:managed`` = prefix) for other run dates.

    Final snapshots are not touched (they are kept on purpose)."""
    removed: list[str] = []
    me = run_date.isoformat()
    for inst in c.rds.describe_db_instances()["DBInstances"]:
        name = inst["DBInstanceIdentifier"]
        if not name.startswith(cfg.instance_prefix + "-"):
            continue
        other = _managed_run_date(c.rds, inst["DBInstanceArn"], cfg)
        if other is not None and other != me:
            progress(f"removing instance {name} left by run date {other}")
            host = (inst.get("Endpoint") or {}).get("Address", "")
            if host:
                drop_alias(c, cfg, host, progress)
            _delete_instance(c, cfg, name, None, progress)
            removed.append(name)
    for snap in c.rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]:
        name = snap["DBSnapshotIdentifier"]
        if not (name.startswith(cfg.instance_prefix + "-") and name.endswith("-copy")):
            continue
        other = _managed_run_date(c.rds, snap["DBSnapshotArn"], cfg)
        if other is not None and other != me:
            progress(f"removing snapshot {name} left by run date {other}")
            c.rds.delete_db_snapshot(DBSnapshotIdentifier=name)
            removed.append(name)
    return removed
