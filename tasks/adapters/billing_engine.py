"""An external billing engine on Kubernetes, for retailers who keep its invoice runs instead of bua's rating.

One call, :func:`engine_lines`, does the legacy's whole dance and always scales back down (try/except-reraise): the
EKS node group to ``engine_eks_nodes`` (boto3), the named deployments to their replicas (the
``kubernetes`` client patches each deployment's scale subresource), waits until every deployment
reports its replicas ready; triggers the engine's invoice run for the run date through a SQL
procedure (``sql/{engine_trigger_sql}.sql``) or an HTTP endpoint (``POST {url}/runs``); polls its
status (``sql/{engine_status_sql}.sql`` or ``GET {url}/runs/{id}``) until COMPLETED, bounded by
``engine_timeout_seconds``; reads the run's lines (``sql/{engine_lines_sql}.sql``) into the
``invoice_line_item_monthly`` shape (SPEC §4.5, :data:`tasks.domain.rating.LINE_COLUMNS`). After
it, also on failure: deployments to 0 replicas and the node group to 0 nodes, also when anything above
failed; a scale-down error is raised only when nothing else did (and is logged either way).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tasks.adapters.aws import AwsConfig
from tasks.domain.rating import LINE_COLUMNS
from tasks.settings import Settings

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

S, N, F = pl.String(), pl.Int64(), pl.Float64()
LINE_SCHEMA: dict[str, pl.DataType] = {
    "account_id": N, "account_number": S, "year_mnth": N, "ili_state": S, "discount_state": S,
    "plan_item_type_name": S, "feature_type_name": S, "time_class_name": S, "unit": S, "quantity": F,
    "quantity_actual": F, "quantity_estimated": F, "net_amount": F, "discount_net": F,
    "discount_net_propensity": F, "gst_amount": F,
}  # fmt: skip
assert list(LINE_SCHEMA) == LINE_COLUMNS
DONE, FAILED = frozenset({"COMPLETED", "SUCCEEDED", "DONE"}), frozenset({"FAILED", "ERROR", "CANCELLED"})


class EngineError(RuntimeError):
    """The engine's run cannot be used (failed, timed out, returned bad lines)."""


@dataclass(frozen=True)
class EngineConfig:
    namespace: str = "billing"
    deployments: tuple[tuple[str, int], ...] = ()
    kube_context: str | None = None
    kube_host: str | None = None
    eks_cluster: str | None = None
    eks_nodegroup: str | None = None
    eks_nodes: int = 0
    trigger: str = "sql"
    trigger_sql: str = "engine_trigger"
    status_sql: str = "engine_status"
    lines_sql: str = "engine_invoice_lines"
    http_url: str | None = None
    timeout_seconds: float = 7200.0
    poll_seconds: float = 15.0
    aws: AwsConfig = field(default_factory=lambda: AwsConfig("ap-southeast-2"))

    @classmethod
    def from_settings(cls, s: Settings) -> EngineConfig:
        return cls(
            namespace=s.engine_namespace, deployments=tuple(sorted(s.engine_deployments.items())),
            kube_context=s.engine_kube_context, kube_host=s.engine_kube_host, eks_cluster=s.engine_eks_cluster,
            eks_nodegroup=s.engine_eks_nodegroup, eks_nodes=s.engine_eks_nodes, trigger=s.engine_trigger,
            trigger_sql=s.engine_trigger_sql, status_sql=s.engine_status_sql, lines_sql=s.engine_lines_sql,
            http_url=s.engine_http_url, timeout_seconds=s.engine_timeout_seconds, poll_seconds=s.engine_poll_seconds,
            aws=AwsConfig.from_settings(s),
        )  # fmt: skip


def apps_api(cfg: EngineConfig) -> Any:
    """kubernetes AppsV1Api: an explicit host (tests), in-cluster config, or the kubeconfig's context."""
    import os

    from kubernetes import client, config

    if cfg.kube_host:
        conf = client.Configuration()
        conf.host = cfg.kube_host
        return client.AppsV1Api(client.ApiClient(conf))
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.AppsV1Api()
    return client.AppsV1Api(config.new_client_from_config(context=cfg.kube_context))


def _bounded(what: str, check: Callable[[], tuple[bool, str]], cfg: EngineConfig, progress: Progress) -> None:
    start, last = time.monotonic(), None
    while True:
        ok, state = check()
        elapsed = time.monotonic() - start
        if ok:
            progress(f"{what}: {state} after {elapsed:.0f} s")
            return
        if state != last:
            progress(f"{what}: {state} ({elapsed:.0f} s of at most {cfg.timeout_seconds:.0f} s)")
            last = state
        if elapsed + cfg.poll_seconds > cfg.timeout_seconds:
            raise EngineError(f"{what} still {state} after {elapsed:.0f} s (BUA_ENGINE_TIMEOUT_SECONDS)")
        time.sleep(cfg.poll_seconds)


def scale_deployments(apps: Any, cfg: EngineConfig, replicas: dict[str, int], progress: Progress) -> None:
    for name, n in replicas.items():
        progress(f"scaling deployment {cfg.namespace}/{name} to {n}")
        apps.patch_namespaced_deployment_scale(name, cfg.namespace, {"spec": {"replicas": n}})


def deployments_ready(apps: Any, cfg: EngineConfig, names: list[str]) -> tuple[bool, str]:
    states = []
    for name in names:
        d = apps.read_namespaced_deployment_status(name, cfg.namespace)
        want = d.spec.replicas or 0
        ready = d.status.ready_replicas or 0
        fresh = (d.status.observed_generation or 0) >= (d.metadata.generation or 0)
        states.append((name, fresh and ready >= want, f"{name} {ready}/{want}"))
    return all(ok for _, ok, _ in states), ", ".join(s for _, _, s in states)


def scale_nodegroup(eks: Any, cfg: EngineConfig, nodes: int, progress: Progress) -> None:
    if not cfg.eks_cluster or not cfg.eks_nodegroup:
        return
    current = eks.describe_nodegroup(clusterName=cfg.eks_cluster, nodegroupName=cfg.eks_nodegroup)[
        "nodegroup"
    ]
    top = max(int(current["scalingConfig"].get("maxSize", 1)), nodes, 1)
    progress(f"scaling node group {cfg.eks_cluster}/{cfg.eks_nodegroup} to {nodes}")
    eks.update_nodegroup_config(
        clusterName=cfg.eks_cluster, nodegroupName=cfg.eks_nodegroup,
        scalingConfig={"minSize": 0 if nodes == 0 else min(nodes, top), "maxSize": top, "desiredSize": nodes},
    )  # fmt: skip

    def active() -> tuple[bool, str]:
        ng = eks.describe_nodegroup(clusterName=cfg.eks_cluster, nodegroupName=cfg.eks_nodegroup)["nodegroup"]
        return ng["status"] == "ACTIVE", ng["status"]

    _bounded(f"node group {cfg.eks_nodegroup}", active, cfg, progress)


@dataclass
class Trigger:
    """Starts the engine's run and reports its status: through SQL files or an HTTP endpoint."""

    cfg: EngineConfig
    db_url: str
    http_token: str | None = None
    run_ref: str | None = None

    def start(self, run_date: dt.date) -> None:
        if self.cfg.trigger == "http":
            if not self.cfg.http_url:
                raise EngineError("BUA_ENGINE_TRIGGER=http needs BUA_ENGINE_HTTP_URL")
            r = self._http("POST", "/runs", json={"run_date": run_date.isoformat()})
            self.run_ref = str(r["id"])
            return
        import sqlalchemy as sa

        from tasks.adapters.db import engine_for, sql_text

        with engine_for(self.db_url).begin() as conn:
            conn.execute(sa.text(sql_text(self.cfg.trigger_sql)), {"run_date": run_date})

    def status(self, run_date: dt.date) -> str:
        if self.cfg.trigger == "http":
            return str(self._http("GET", f"/runs/{self.run_ref}")["status"]).upper()
        from tasks.adapters.db import read_sql

        df = read_sql(self.db_url, self.cfg.status_sql, {"run_date": run_date})
        if df.height == 0 or "status" not in df.columns:
            return "NOT STARTED"
        return str(df["status"][0]).upper()

    def _http(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import httpx

        headers = {"Authorization": f"Bearer {self.http_token}"} if self.http_token else {}
        url = self.cfg.http_url.rstrip("/") + path  # type: ignore[union-attr]
        resp = httpx.request(method, url, headers=headers, timeout=30, **kwargs)
        if resp.status_code >= 300:
            raise EngineError(f"engine {method} {url}: HTTP {resp.status_code}")
        return resp.json()


def read_lines(db_url: str, cfg: EngineConfig, run_date: dt.date, run_id: str) -> pl.DataFrame:
    """The run's lines in ``invoice_line_item_monthly`` shape; a missing column or a null key stops with the file's name."""
    from tasks.adapters.db import read_sql

    raw = read_sql(db_url, cfg.lines_sql, {"run_date": run_date})
    missing = [c for c in LINE_COLUMNS if c not in raw.columns]
    if missing:
        raise EngineError(f"sql/{cfg.lines_sql}.sql returns no column(s) {', '.join(missing)}")
    from tasks.adapters.db import cast_frame

    lines = cast_frame(raw, LINE_SCHEMA)
    nulls = [c for c in LINE_COLUMNS if lines[c].null_count()]
    if nulls:
        raise EngineError(f"sql/{cfg.lines_sql}.sql returns nulls in {', '.join(nulls)}")
    return lines.select(
        pl.lit(run_id).alias("run_id"), pl.lit(run_date).alias("run_date"), *LINE_COLUMNS
    ).sort("account_id", "year_mnth", "plan_item_type_name", "feature_type_name", "time_class_name", "unit")


def engine_lines(
    cfg: EngineConfig,
    db_url: str,
    run_date: dt.date,
    run_id: str,
    *,
    apps: Any = None,
    eks: Any = None,
    http_token: str | None = None,
    progress: Progress = log.info,
) -> pl.DataFrame:
    """Scale up, run the engine for ``run_date``, read its lines; scale down whatever happens."""
    from tasks.adapters.aws import client

    names = [n for n, _ in cfg.deployments]
    apps = apps if apps is not None or not names else apps_api(cfg)
    eks = eks if eks is not None or not cfg.eks_cluster else client("eks", cfg.aws)
    trigger = Trigger(cfg, db_url, http_token)
    try:
        if cfg.eks_nodes:
            scale_nodegroup(eks, cfg, cfg.eks_nodes, progress)
        if names:
            scale_deployments(apps, cfg, dict(cfg.deployments), progress)
            _bounded("engine deployments", lambda: deployments_ready(apps, cfg, names), cfg, progress)
        progress(f"starting the engine's invoice run for {run_date} ({cfg.trigger})")
        trigger.start(run_date)

        def finished() -> tuple[bool, str]:
            state = trigger.status(run_date)
            if state in FAILED:
                raise EngineError(f"the engine's invoice run for {run_date} ended {state}")
            return state in DONE, state

        _bounded(f"engine run {run_date}", finished, cfg, progress)
        lines = read_lines(db_url, cfg, run_date, run_id)
    except BaseException:
        _scale_down(apps, eks, cfg, names, progress, raise_errors=False)
        raise
    _scale_down(apps, eks, cfg, names, progress, raise_errors=True)
    return lines


def _scale_down(
    apps: Any, eks: Any, cfg: EngineConfig, names: list[str], progress: Progress, *, raise_errors: bool
) -> None:
    errors: list[str] = []
    for name in names:
        try:
            scale_deployments(apps, cfg, {name: 0}, progress)
        except Exception as exc:  # noqa: BLE001 — every deployment gets its chance to go down
            errors.append(f"deployment {cfg.namespace}/{name}: {type(exc).__name__}")
    if cfg.eks_nodes:
        try:
            scale_nodegroup(eks, cfg, 0, progress)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"node group {cfg.eks_nodegroup}: {type(exc).__name__}")
    if errors:
        message = "scale-down failed (scale by hand): " + "; ".join(errors)
        log.error(message)
        if raise_errors:
            raise EngineError(message)
