"""``bua_monthly``: the month-end bottom-up accrual (SPEC §5), the only thing that runs its phases.

The flow takes run parameters only; the worker resolves Settings (environment, secrets) itself, so
nothing secret is stored by the Prefect server. A run holds the run lock of its run date in the
billing database (tasks/adapters/run_lock.py), records itself in ``bua_run`` and
``bua_run_attempt``, runs the phase graph as its own Prefect task runs (flows/phase_tasks.py), posts Slack
started/finished/failed and publishes artifacts.
"""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import artifacts, runs
from flows.fingerprints import data_fingerprints, prechecks_fingerprint
from flows.phase_tasks import PhaseFailedError, run_graph
from flows.runtime import current_settings, task_runner, use_settings
from tasks.adapters import storage
from tasks.adapters.run_lock import LockLost, run_lock
from tasks.domain.prechecks import blocking
from tasks.pipeline import notify, prechecks
from tasks.pipeline.datasets import PhaseContext
from tasks.pipeline.spec import RunSpec, resolve_run


class PrecheckFailed(RuntimeError):
    """A pre-run check stopped the run before it wrote anything (SPEC §4.0)."""


@task(name="prechecks", cache_policy=NO_CACHE, persist_result=False)
def precheck_task(run: dict[str, Any]) -> list[dict[str, str]]:
    """The pre-run checks of SPEC §4.0, recorded in bua_precheck (never cached: they look at now)."""
    spec = RunSpec.from_json(run)
    settings = current_settings()
    checks = prechecks.run_prechecks(spec, settings)
    prechecks.record(spec, settings, checks)
    return checks.to_dicts()


@task(name="store-compact", cache_policy=NO_CACHE, persist_result=False)
def compact_task(run: dict[str, Any]) -> dict[str, Any]:
    """Fold the meter store's deltas (daily deliveries) into their partitions before anything reads
    it (tasks/adapters/meter_deltas.py): the run reads whole partitions with pushdown, and the
    source fingerprints are taken over the compacted files. A no-op when there are none."""
    from tasks.adapters.meter_deltas import compact_store

    done = compact_store(current_settings())
    return {"partitions": done.partitions, "deltas": done.deltas, "bytes_written": done.bytes_written}


@task(name="rds-restore", cache_policy=NO_CACHE, persist_result=False)
def restore_task(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Restore the billing database from the shared snapshot for this run date (idempotent; issue 16)."""
    from tasks.pipeline.legacy_phases import rds_restore

    return rds_restore(RunSpec.from_json(run).run_date, current_settings()).to_dicts()


@task(name="db-warmup", cache_policy=NO_CACHE, persist_result=False)
def warmup_task(run: dict[str, Any]) -> int:
    from tasks.pipeline.legacy_phases import db_warmup

    return db_warmup(current_settings()).height


@task(name="rds-teardown", cache_policy=NO_CACHE, persist_result=False)
def teardown_task(run: dict[str, Any]) -> list[dict[str, Any]]:
    from tasks.pipeline.legacy_phases import rds_teardown

    return rds_teardown(RunSpec.from_json(run).run_date, current_settings()).to_dicts()


def run_phases(
    spec: RunSpec, settings: Any, sources: dict[str, Any], refresh: bool = False
) -> dict[str, Any]:
    """The phase graph of one run as task runs of ``bua_monthly``'s own flow run, on the task
    runner the settings name (threads, or Dask), entered here, when the graph starts; ``sources``:
    the sources' fingerprints (flows/fingerprints.py), taken after the pre-run checks were recorded.

    Until issue 11 this was a subflow (``accrual-phases``) only so the runner could come from the
    worker's settings: a second flow run to create, start and finish on the server, and its return
    value (every task's result) walked by Prefect on completion, for nothing the run needs."""
    from prefect.runtime import flow_run

    with task_runner(settings) as runner:
        graph = run_graph(spec, settings, sources, refresh, runner=runner)
    return {
        "flow_run_id": str(flow_run.get_id()),
        "states": graph.states,
        "results": {p: graph.phase_results(p) for p in {t[0] for t in graph.results}},
    }


@flow(name="bua_monthly")
def bua_monthly(
    run_date: dt.date | None = None,
    period_start: dt.date | None = None,
    period_end: dt.date | None = None,
    basic_method: Literal["scalar", "seasonal"] | None = None,
    shards: int | None = None,
    scenario: str | None = None,
    refresh: bool = False,
    backtest_months: int | None = None,
    accept_warnings: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Month-end bottom-up accrual of unbilled energy as at ``run_date``.

    Args:
        run_date: The accrual is "as at" this day: invoices issued, interval days and basic reads dated before it. Default: today in BUA_TIMEZONE (the scheduled run on the 1st accrues the month just ended).
        period_start: First day accrued (the look-back cap). Default: the 1st of the month twelve months before run_date.
        period_end: Last day accrued. Default: the day before run_date.
        basic_method: Estimation method for basic (accumulation) meters, "scalar" (legacy micro-scalar) or "seasonal" (base + weather-sensitive fit). Default: BUA_BASIC_METHOD.
        shards: Number of NMI-hash shards the per-register work is split into. Default: BUA_SHARDS; must match the meter store's partitioning.
        scenario: A what-if run's name (another method or period): its outputs never replace the booked run's. Empty: the booked run.
        refresh: Recompute every phase even where a cached result exists (after an in-place database fix the input fingerprint cannot see).
        backtest_months: The validation phase's back-test estimates as at run_date minus this many months (1 to 11). Default: BUA_BACKTEST_MONTHS (1).
        accept_warnings: Go on when a pre-run check WARNs (it is reported and recorded). False: a WARN stops the run like a FAIL.
        force: Go on even when a pre-run check FAILs (recorded in bua_run): for an operator who has checked the figures.
    """
    settings = current_settings()
    spec = resolve_run(
        settings, run_date, period_start, period_end, basic_method, shards, scenario, backtest_months
    )
    if (
        settings.rds_restore
    ):  # legacy sources (issue 16): the run reads a restored copy of the billing database
        from tasks.pipeline.legacy_phases import run_settings

        restore_task(spec.to_json())
        settings = run_settings(settings, spec.run_date)
        with use_settings(settings):
            return _run(spec, settings, refresh, accept_warnings, force)
    return _run(spec, settings, refresh, accept_warnings, force)


def _run(spec: RunSpec, settings: Any, refresh: bool, accept_warnings: bool, force: bool) -> dict[str, Any]:
    ctx = PhaseContext(spec, settings)
    attempt = str(uuid.uuid4())
    url = settings.db_url
    runs.require_schema(url)
    with run_lock(
        url,
        f"run-{spec.run_date.isoformat()}",
        attempt,
        settings.run_lock_lease_seconds,
        settings.run_lock_wait_seconds,
    ) as (taken, beat):
        if taken.took_over_attempt:
            runs.mark_dead(url, taken.took_over_attempt, attempt)
        started = runs.now_utc()
        runs.start(url, spec, attempt, started, {"accept_warnings": accept_warnings, "force": force})
        notify.notify_started(ctx)
        try:
            # a killed run's local scratch (spilled slices: gigabytes at 1M accounts); a live run's stays
            storage.sweep_scratch()
            compact_task(spec.to_json())
            # the inputs' fingerprints are read beside the checks (neither changes what the other
            # reads); the checks' own, once they are recorded
            with ThreadPoolExecutor(1, thread_name_prefix="bua-fingerprints") as pool:
                data = pool.submit(data_fingerprints, spec, settings)
                checks = pl.DataFrame(precheck_task(spec.to_json()))
                artifacts.prechecks(spec, checks)
                stop = blocking(checks, accept_warnings)
                if stop.height and not force:
                    raise PrecheckFailed(precheck_message(stop))
                sources = {**data.result(), **prechecks_fingerprint(spec, settings)}
            if settings.db_warmup:
                warmup_task(spec.to_json())
            result = run_phases(spec, settings, sources, refresh)
            if beat.lost.is_set():
                raise LockLost(
                    "the run lock was taken over while this run was writing; its outputs are not trusted"
                )
        except BaseException as exc:
            failing = (
                exc.failed
                if isinstance(exc, PhaseFailedError)
                else ["prechecks"]
                if isinstance(exc, PrecheckFailed)
                else []
            )
            notify.notify_failed(
                ctx, [f.split(" (", 1)[0] for f in failing], getattr(exc, "cause", None) or exc
            )
            runs.finish(url, spec, attempt, started, "FAILED", f"{type(exc).__name__}")
            raise
        runs.finish(url, spec, attempt, started, "COMPLETED")
    if settings.rds_teardown:  # only after a run that completed: a failed run's retry reuses the instance
        teardown_task(spec.to_json())
    report = runs.run_report(spec, result)
    notify.notify_finished(ctx, report["finished_message"])
    artifacts.publish(spec, settings, report)
    return report


def precheck_message(stop: pl.DataFrame) -> str:
    """One line naming each check that stopped the run, its figures, and what to do."""
    parts = [
        f"{r['check']} {r['status']} {r['figure']} ({r['threshold']}): {r['detail']}" for r in stop.to_dicts()
    ]
    return (
        "pre-run checks stopped the run before anything was written: "
        + "; ".join(parts)
        + ". Fix the inputs and re-run, or re-run with force to book anyway (recorded)."
    )
