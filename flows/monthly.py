"""``bua_monthly``: the month-end bottom-up accrual as Prefect tasks (SPEC §5).

Every phase is a cached, retried task; per-register and per-account phases are mapped over the
NMI-hash shards; profiles are a map-reduce (partial sums per shard, one combine). A run holds a
Prefect concurrency lock named after its run_date, records itself in ``bua_run``, and publishes the
accrual summary, the exceptions by code and links to the exported files as artifacts. Caching,
fingerprints, runners and the lock live in :mod:`flows.glue`; the phase functions in
:mod:`flows.pipeline` (the engine's phases behind one uniform call).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from prefect import flow

from flows import glue
from tasks.pipeline import notify


@flow(name="accrual-phases", validate_parameters=False)
def accrual_phases(spec: glue.RunSpec, refresh: bool = False) -> dict[str, Any]:
    """The phases of one run, in SPEC §5's order."""
    from prefect.runtime import flow_run

    p = glue.Phases(spec, refresh=refresh)
    database, meter_store = p.sources()  # input fingerprints: source tables; meter store per shard
    extract = p.once("extract", database=database)
    windows = p.once("windows", extract=extract)
    # profiles_partial also keeps the store rows of the unbilled windows for interval_estimates
    partials = p.per_shard("profiles_partial", meter_store=meter_store, extract=extract, windows=windows)
    profiles = p.once("profiles_combine", partials=partials)
    segments = p.once("segments", extract=extract, profiles=profiles)
    pairs = p.per_shard("read_pairs", extract=extract)
    gas = p.once("gas_shape", extract=extract, pairs=pairs, segments=segments)
    scalars = p.per_shard("scalars", meter_store=meter_store, extract=extract, segments=segments)
    basic = p.per_shard(
        "basic_estimates", extract=extract, windows=windows, pairs=pairs, segments=segments, gas=gas
    )
    interval = p.per_shard(
        "interval_estimates",
        meter_store=meter_store,
        extract=extract,
        windows=windows,
        segments=segments,
        scalars=scalars,
    )
    rating = p.per_shard("rating", extract=extract, windows=windows, basic=basic, interval=interval)
    exceptions = p.once(
        "exceptions",
        extract=extract,
        windows=windows,
        pairs=pairs,
        scalars=scalars,
        basic=basic,
        interval=interval,
        rating=rating,
    )
    prepare = p.once(
        "prepare", windows=windows, rating=rating, basic=basic, interval=interval, exceptions=exceptions
    )
    export = p.once("export", prepare=prepare)
    if p.has("validation"):
        p.once(
            "validation",
            database=database,
            meter_store=meter_store,
            extract=extract,
            profiles=profiles,
            segments=segments,
            pairs=pairs,
            gas=gas,
            prepare=prepare,
            export=export,
        )
    report = p.once("report", prepare=prepare, validation=p.future("validation")) if p.has("report") else None
    if p.has("notify"):
        p.once("notify", export=export, report=report)
    results = p.wait()
    results["flow_run_id"] = str(flow_run.get_id())
    return results


@flow(name="bua_monthly")
def bua_monthly(
    run_date: dt.date | None = None,
    period_start: dt.date | None = None,
    period_end: dt.date | None = None,
    basic_method: Literal["scalar", "seasonal"] | None = None,
    shards: int | None = None,
    refresh: bool = False,
    backtest_months: int | None = None,
) -> dict[str, Any]:
    """Month-end bottom-up accrual of unbilled energy as at ``run_date``.

    Args:
        run_date: The accrual is "as at" this day: invoices issued, interval days and basic reads dated before it. Default: today in BUA_TIMEZONE (the scheduled run on the 1st accrues the month just ended).
        period_start: First day accrued (the look-back cap). Default: the 1st of the month twelve months before run_date.
        period_end: Last day accrued. Default: the day before run_date.
        basic_method: Estimation method for basic (accumulation) meters, "scalar" (legacy micro-scalar) or "seasonal" (base + weather-sensitive fit). Default: BUA_BASIC_METHOD.
        shards: Number of NMI-hash shards the per-register work is split into (tens to a few hundred). Default: BUA_SHARDS; must match the meter store's partitioning.
        refresh: Recompute every phase even where a cached result exists (for an in-place database fix the input fingerprint cannot see).
        backtest_months: The validation phase's back-test estimates as at run_date minus this many months (1 to 11). Default: BUA_BACKTEST_MONTHS (1).
    """
    settings = glue.current_settings()
    spec = glue.resolve_run(
        settings, run_date, period_start, period_end, basic_method, shards, backtest_months
    )
    with glue.run_date_lock(spec.run_date, settings.run_lock_timeout_seconds):
        started = glue.now_utc()
        notify.notify_started(spec)
        try:
            glue.record_run(spec, "RUNNING", started)
            phases = accrual_phases.with_options(task_runner=glue.task_runner(settings))
            results = phases(spec, refresh)
        except BaseException as exc:
            notify.notify_failed(spec, *glue.failure_of(exc))
            try:
                glue.record_run(spec, "FAILED", started, glue.now_utc())
            except Exception:  # noqa: BLE001 - the database may be why the run failed: raise that
                pass
            raise
        glue.record_run(spec, "COMPLETED", started, glue.now_utc())
    # the notify phase composed "finished" (cached with the outputs it describes); posting it here
    # means a re-run that recomputes nothing still tells Slack the run finished
    message = ((results.get("notify") or {}).get("stats") or {}).get("message")
    if message:
        notify.notify_finished(spec, message)
    publish_artifacts(spec, results)
    return run_report(spec, results)


def run_report(spec: glue.RunSpec, results: dict[str, Any]) -> dict[str, Any]:
    """What a finished run returns (JSON-safe): ids, per-phase time and fingerprint, the summary."""
    phases = {k: v for k, v in results.items() if k not in ("flow_run_id", "task_run_states")}
    stats = {k: v.get("stats", {}) for k, v in phases.items() if isinstance(v, dict)}
    files = {k: v.get("files", []) if isinstance(v, dict) else [f for r in v for f in r.get("files", [])]
             for k, v in phases.items()}  # fmt: skip
    report = {
        "run_id": spec.run_id,
        "run_date": spec.run_date.isoformat(),
        "period_start": spec.period_start.isoformat(),
        "period_end": spec.period_end.isoformat(),
        "basic_method": spec.basic_method,
        "shards": spec.shards,
        "code_version": spec.code_version,
        "phases_flow_run_id": results["flow_run_id"],
        "task_run_states": results["task_run_states"],
        "seconds": {
            k: sum(r["seconds"] for r in (v if isinstance(v, list) else [v])) for k, v in phases.items()
        },
        "cpu_seconds": {
            k: sum(r.get("cpu_seconds", 0.0) for r in (v if isinstance(v, list) else [v]))
            for k, v in phases.items()
        },
        "fingerprints": {k: v["fingerprint"] for k, v in phases.items() if isinstance(v, dict)},
        "counts": stats.get("prepare", {}).get("counts", {}),
        "exceptions_by_code": stats.get("prepare", {}).get("exceptions_by_code", {}),
        "accrual_summary": stats.get("prepare", {}).get("accrual_summary", []),
        "exports": files.get("export", []),
        "report": (files.get("report") or [None])[0],
        "nem12_files": [f for f in files.get("interval_estimates", []) if f.endswith(".csv")],
    }
    return json.loads(json.dumps(report, default=str))


def publish_artifacts(spec: glue.RunSpec, results: dict[str, Any]) -> None:
    """Accrual summary table, exceptions by code, links to the exported files and the report (Prefect UI)."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    day = spec.run_date.isoformat()
    # dates and decimals as text: artifacts are JSON
    stats = json.loads(
        json.dumps(
            {name: r.get("stats", {}) for name, r in results.items() if isinstance(r, dict)}, default=str
        )
    )
    summary = stats.get("prepare", {}).get("accrual_summary")
    if summary:
        create_table_artifact(summary, key="bua-accrual-summary", description=f"Accrual summary as at {day}")
    by_code = stats.get("prepare", {}).get("exceptions_by_code") or stats.get("exceptions", {}).get("by_code")
    if by_code is not None:
        rows = [{"code": k, "count": v} for k, v in sorted(by_code.items())]
        create_table_artifact(rows, key="bua-exceptions-by-code", description=f"Exceptions by code, {day}")
    for url in _files(results.get("report")):
        create_link_artifact(_link(url, spec), link_text=f"Accrual report {day}", key="bua-report")
    metrics = stats.get("validation", {}).get("backtest")
    if metrics:
        create_table_artifact(metrics, key="bua-backtest", description=f"Back-test metrics, {day}")
    # the run note and the links to the exported files in one artifact (one API call, not one per file)
    links = "".join(
        f"\n- [{url.rsplit('/', 1)[-1]}]({_link(url, spec)})" for url in sorted(_files(results.get("export")))
    )
    create_markdown_artifact(
        f"# bua_monthly {day}\n\nrun_id `{spec.run_id}`, code `{spec.code_version}`, "
        f"{spec.shards} shards, basic method `{spec.basic_method}`, "
        f"period {spec.period_start} … {spec.period_end}.\n\n## Exported files{links or ' (none)'}",
        key="bua-run",
    )


def _files(result: Any) -> list[str]:
    return list(result.get("files", [])) if isinstance(result, dict) else []


def _link(url: str, spec: glue.RunSpec) -> str:
    if url.startswith("s3://"):
        bucket, _, key = url[len("s3://") :].partition("/")
        return f"https://{bucket}.s3.{spec.settings.aws_region}.amazonaws.com/{key}"
    from pathlib import Path

    return Path(url).resolve().as_uri()
