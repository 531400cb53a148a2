"""The run's bookkeeping: ``bua_run`` (one row per run_id, the latest attempt's status) and
``bua_run_attempt`` (every attempt, a killed one marked FAILED by the run that takes over its lock),
and the JSON-safe report a finished run returns."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from sql.schema import metadata
from tasks.adapters.db import engine_for, require_tables
from tasks.adapters.prepare import upsert_run
from tasks.adapters.run_lock import holder
from tasks.pipeline.spec import RunSpec

RUN_TABLES = ("bua_run", "bua_run_attempt", "bua_run_lock")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def require_schema(url: str) -> None:
    """The run's own tables exist (else: DatabaseError saying to run `bua db init`)."""
    require_tables(url, RUN_TABLES)


def _flow_run_id() -> str | None:
    try:
        from prefect.runtime import flow_run

        return str(flow_run.get_id()) if flow_run.get_id() else None
    except Exception:  # noqa: BLE001 - outside a flow run
        return None


def start(
    url: str, spec: RunSpec, attempt: str, started: dt.datetime, options: dict[str, Any] | None = None
) -> None:
    """The attempt RUNNING, and its run's bua_run row (with the operator's options: force …)."""
    tbl = metadata.tables["bua_run_attempt"]
    with engine_for(url).begin() as conn:
        conn.execute(
            tbl.insert(),
            [{"attempt_id": attempt, "run_id": spec.run_id, "run_date": spec.run_date, "scenario": spec.scenario,
              "flow_run_id": _flow_run_id(), "holder": holder(), "status": "RUNNING", "started_at": started}],
        )  # fmt: skip
    _run_row(url, spec, "RUNNING", started, None, options)


def finish(
    url: str, spec: RunSpec, attempt: str, started: dt.datetime, status: str, detail: str | None = None
) -> None:
    """Record the attempt's end (never masks the run's own error: the database may be the cause)."""
    try:
        tbl = metadata.tables["bua_run_attempt"]
        with engine_for(url).begin() as conn:
            conn.execute(
                tbl.update()
                .where(tbl.c.attempt_id == attempt)
                .values(status=status, finished_at=now_utc(), detail=detail)
            )
        _run_row(url, spec, status, started, now_utc())
    except Exception:
        if status == "COMPLETED":
            raise


def mark_dead(url: str, dead_attempt: str, by_attempt: str) -> None:
    """The attempt whose lease expired died (killed, lost): FAILED, and its run too if still RUNNING."""
    att, run = metadata.tables["bua_run_attempt"], metadata.tables["bua_run"]
    detail = f"lease expired (holder gone); taken over by attempt {by_attempt}"
    with engine_for(url).begin() as conn:
        row = conn.execute(sa.select(att.c.run_id).where(att.c.attempt_id == dead_attempt)).first()
        conn.execute(
            att.update()
            .where((att.c.attempt_id == dead_attempt) & (att.c.status == "RUNNING"))
            .values(status="FAILED", finished_at=now_utc(), detail=detail)
        )
        if row is not None:
            conn.execute(
                run.update()
                .where((run.c.run_id == row[0]) & (run.c.status == "RUNNING"))
                .values(status="FAILED", finished_at=now_utc())
            )


def _run_row(
    url: str,
    spec: RunSpec,
    status: str,
    started: dt.datetime,
    finished: dt.datetime | None,
    options: dict[str, Any] | None = None,
) -> None:
    tbl = metadata.tables["bua_run"]
    if options is None:  # keep the options the attempt started with
        with engine_for(url).connect() as conn:
            old = conn.execute(sa.select(tbl.c.parameters).where(tbl.c.run_id == spec.run_id)).scalar()
        options = {k: v for k, v in json.loads(old or "{}").items() if k in ("accept_warnings", "force")}
    row = {
        "period_start": spec.period_start,
        "period_end": spec.period_end,
        "status": status,
        "started_at": started,
        "finished_at": finished,
        "parameters": json.dumps({**spec.parameters(), **options}, sort_keys=True),
        "code_version": spec.code_version,
        "scenario": spec.scenario,
    }
    upsert_run(url, spec.run_id, spec.run_date, row)


def run_report(spec: RunSpec, result: dict[str, Any]) -> dict[str, Any]:
    """What a finished run returns (JSON-safe, no locations of secrets): ids, the task states, per
    phase time, the counts, the files written. Not the accrual summary's rows: they are in the
    table (``tasks.pipeline.sinks.summary_rows``; `bua run` prints them from there), and Prefect
    walks a flow's return value object by object when the flow finishes (thousands of rows at 100k
    accounts: ~0.5 s of the month end; docs/ORCHESTRATION.md "Task results")."""
    phases: dict[str, list[dict[str, Any]]] = result["results"]

    def stat(phase: str, name: str, default: Any) -> Any:
        rows = phases.get(phase) or [{}]
        return rows[0].get("stats", {}).get(name, default)

    def files(phase: str, dataset: str) -> list[str]:
        return sorted(loc for r in phases.get(phase, []) for loc in r.get("written", {}).get(dataset, []))

    report = {
        **spec.to_json(),
        "phases_flow_run_id": result["flow_run_id"],
        "task_run_states": result["states"],
        "seconds": {p: round(sum(r["seconds"] for r in rs), 3) for p, rs in phases.items()},
        "cpu_seconds": {p: round(sum(r["cpu_seconds"] for r in rs), 3) for p, rs in phases.items()},
        "fingerprints": {p: [r["fingerprint"] for r in rs] for p, rs in phases.items()},
        "counts": stat("prepare", "counts", {}),
        "exceptions_by_code": stat("prepare", "exceptions_by_code", {}),
        "backtest": stat("validation", "backtest", []),
        "validation_note": stat("validation", "note", None),
        "exports": files("export", "csv_exports")
        + [f for f in files("validation", "validation_tables") if not f.startswith("table:")],
        "report": (files("report", "report") or [None])[0],
        "nem12_files": files("interval_estimates", "nem12_estimates"),
        "finished_message": None,
    }
    message_rows = phases.get("notify") or []
    if message_rows:
        report["finished_message"] = message_rows[0].get("stats", {}).get("message")
    return json.loads(json.dumps(report, default=str))
