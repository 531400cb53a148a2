"""RDS restore (:mod:`tasks.adapters.rds`): its configuration, the deterministic names of a run
date's snapshot and instance, the AWS clients, status look-ups and the bounded wait."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tasks.adapters.aws import AwsConfig, client
from tasks.settings import Settings

MANAGED_TAG = "bua:managed"
RUN_DATE_TAG = "bua:run-date"
# statuses from which waiting cannot reach "available": restore anew
BROKEN = frozenset({"failed", "incompatible-restore", "incompatible-parameters", "incompatible-network",
                    "inaccessible-encryption-credentials", "restore-error", "storage-full"})  # fmt: skip

Progress = Callable[[str], None]


class RdsError(RuntimeError):
    """The restore or teardown cannot go on (names the resource and the reason)."""


class RdsTimeout(RdsError):
    """A bounded wait ran out."""


@dataclass(frozen=True)
class RdsConfig:
    """What to restore and how (from ``BUA_RDS_*``); no secret here, only the secret's name."""

    source_snapshot: str
    kms_key_id: str
    instance_prefix: str = "bua-billing"
    instance_class: str = "db.r6g.large"
    parameter_group: str | None = None
    subnet_group: str | None = None
    security_group_ids: tuple[str, ...] = ()
    app_user: str = "bua"
    password_secret: str | None = None
    database_name: str = "billing"
    url_driver: str = "mysql+pymysql"
    route53_zone_id: str | None = None
    route53_name: str | None = None
    final_snapshot: bool = False
    wait_timeout_seconds: float = 3600.0
    poll_seconds: float = 30.0
    aws: AwsConfig = field(default_factory=lambda: AwsConfig("ap-southeast-2"))

    @classmethod
    def from_settings(cls, s: Settings) -> RdsConfig:
        if not s.rds_source_snapshot or not s.rds_kms_key_id:
            raise RdsError("BUA_RDS_RESTORE needs BUA_RDS_SOURCE_SNAPSHOT and BUA_RDS_KMS_KEY_ID")
        return cls(
            source_snapshot=s.rds_source_snapshot, kms_key_id=s.rds_kms_key_id,
            instance_prefix=s.rds_instance_prefix, instance_class=s.rds_instance_class,
            parameter_group=s.rds_parameter_group, subnet_group=s.rds_subnet_group,
            security_group_ids=tuple(s.rds_security_group_ids), app_user=s.rds_app_user,
            password_secret=s.rds_password_secret, database_name=s.rds_database_name,
            url_driver=s.rds_url_driver, route53_zone_id=s.rds_route53_zone_id,
            route53_name=s.rds_route53_name, final_snapshot=s.rds_final_snapshot,
            wait_timeout_seconds=s.rds_wait_timeout_seconds, poll_seconds=s.rds_poll_seconds,
            aws=AwsConfig.from_settings(s),
        )  # fmt: skip


@dataclass(frozen=True)
class Names:
    snapshot: str
    instance: str
    final_snapshot: str


def names(cfg: RdsConfig, run_date: dt.date) -> Names:
    base = f"{cfg.instance_prefix}-{run_date:%Y%m%d}"
    return Names(snapshot=f"{base}-copy", instance=base, final_snapshot=f"{base}-final")


@dataclass(frozen=True)
class RestoredDatabase:
    """What the restore phase returns: no password, no URL."""

    instance: str
    snapshot: str
    host: str
    port: int
    engine: str
    reused: bool


@dataclass
class Clients:
    rds: Any
    secrets: Any = None
    route53: Any = None

    @classmethod
    def for_config(cls, cfg: RdsConfig) -> Clients:
        return cls(
            rds=client("rds", cfg.aws),
            secrets=client("secretsmanager", cfg.aws) if cfg.password_secret else None,
            route53=client("route53", cfg.aws) if cfg.route53_zone_id else None,
        )


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _tags(cfg: RdsConfig, run_date: dt.date) -> list[dict[str, str]]:
    return [
        {"Key": MANAGED_TAG, "Value": cfg.instance_prefix},
        {"Key": RUN_DATE_TAG, "Value": run_date.isoformat()},
    ]


def wait_for(
    what: str,
    check: Callable[[], str | None],
    done: Callable[[str | None], bool],
    cfg: RdsConfig,
    progress: Progress,
) -> str | None:
    """Poll ``check`` until ``done(status)``; a broken status raises at once; past the bound, RdsTimeout."""
    start = time.monotonic()
    last = ""
    while True:
        status = check()
        elapsed = time.monotonic() - start
        if done(status):
            progress(f"{what}: {status or 'gone'} after {elapsed:.0f} s")
            return status
        if status in BROKEN:
            raise RdsError(f"{what} is {status!r}: it will not become available")
        if status != last:
            progress(f"{what}: {status} ({elapsed:.0f} s of at most {cfg.wait_timeout_seconds:.0f} s)")
            last = status or ""
        if elapsed + cfg.poll_seconds > cfg.wait_timeout_seconds:
            raise RdsTimeout(f"{what} still {status!r} after {elapsed:.0f} s (BUA_RDS_WAIT_TIMEOUT_SECONDS)")
        time.sleep(cfg.poll_seconds)


def snapshot_status(rds: Any, name: str) -> str | None:
    try:
        snaps = rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"]
    except Exception as exc:
        if _code(exc) == "DBSnapshotNotFound":
            return None
        raise
    return snaps[0]["Status"] if snaps else None


def instance(rds: Any, name: str) -> dict[str, Any] | None:
    try:
        found = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"]
    except Exception as exc:
        if _code(exc) == "DBInstanceNotFound":
            return None
        raise
    return found[0] if found else None


def instance_status(rds: Any, name: str) -> str | None:
    found = instance(rds, name)
    return None if found is None else found["DBInstanceStatus"]
