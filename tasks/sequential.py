"""The month-end run without Prefect: every phase of :mod:`tasks.accrual` in order; a per-shard
phase's shards on ``settings.max_workers`` threads (default 2), as the flow's task runner maps them.

``bua run`` without Prefect, the tests and the benchmarks use it; the Prefect flow calls the same
phase functions. It records the run in ``bua_run`` (RUNNING, then COMPLETED or FAILED) with the
parameters and the code version.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tasks.settings import Settings


@dataclass
class RunResult:
    run_id: str
    run_date: dt.date
    period_start: dt.date
    period_end: dt.date
    basic_method: str
    status: str
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    exceptions_by_code: dict[str, int] = field(default_factory=dict)
    accrual_summary: list[dict[str, Any]] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    nem12_files: list[str] = field(default_factory=list)
    notify_message: str | None = None  # the "finished" message the notify phase composed
    error: str | None = None


def code_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("bua")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "0+unknown"


def run_accrual(
    settings: Settings,
    run_date: dt.date,
    period_start: dt.date | None = None,
    period_end: dt.date | None = None,
    basic_method: str | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> RunResult:
    """Run every phase in order (a per-shard phase's shards on ``settings.max_workers`` threads) and record the run in ``bua_run``."""
    from tasks.accrual import PHASES, RunContext
    from tasks.db import check_connection
    from tasks.prepare import upsert_run

    ctx = RunContext.create(settings, run_date, period_start, period_end, basic_method)
    result = RunResult(ctx.run_id, run_date, ctx.period_start, ctx.period_end, ctx.basic_method, "RUNNING")
    check_connection(settings.database_url)
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    params = {"basic_method": ctx.basic_method, "shards": settings.shards, "period_start": ctx.period_start,
              "period_end": ctx.period_end}  # fmt: skip
    run_row = {"period_start": ctx.period_start, "period_end": ctx.period_end, "started_at": started,
               "parameters": json.dumps(params, default=str, sort_keys=True), "code_version": code_version()}  # fmt: skip
    try:
        from tasks.db import require_tables

        require_tables(settings.database_url, ("bua_run",))
        upsert_run(
            settings.database_url, ctx.run_id, run_date, {**run_row, "status": "RUNNING", "finished_at": None}
        )
        for name, fn, per_shard in PHASES:
            t0 = time.perf_counter()
            outs = _per_shard(fn, ctx, settings) if per_shard else [fn(ctx)]
            result.seconds[name] = round(time.perf_counter() - t0, 3)
            if progress:
                progress(name, result.seconds[name])
            for out in outs:
                if isinstance(out, dict):
                    stats = out.get("stats", {})
                    result.counts = stats.get("counts", result.counts)
                    result.exceptions_by_code = stats.get("exceptions_by_code", result.exceptions_by_code)
                    result.accrual_summary = stats.get("accrual_summary", result.accrual_summary)
                    result.notify_message = stats.get("message", result.notify_message)
                elif name == "export":
                    result.exports += out
                elif name == "interval_estimates":
                    result.nem12_files += [u for u in out if u.endswith(".csv")]
        result.status = "COMPLETED"
    except Exception as exc:
        result.status = "FAILED"
        result.error = f"{type(exc).__name__}: {exc}"
        _finish(settings, ctx, run_row, "FAILED")
        raise
    _finish(settings, ctx, run_row, "COMPLETED")
    return result


def _per_shard(fn: Callable[..., Any], ctx: Any, settings: Settings) -> list[Any]:
    """``fn(ctx, shard)`` for every shard, in shard order, on ``settings.max_workers`` threads (the
    flow's ThreadPoolTaskRunner does the same): shards are independent (each writes its own work
    files) and polars and numpy release the GIL, so two shards at once keep both cores busy where
    one shard's work is partly single-threaded. The first failing shard's exception is raised, after
    the shards already running have finished."""
    shards = range(settings.shards)
    if settings.max_workers <= 1 or settings.shards <= 1:
        return [fn(ctx, s) for s in shards]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(
        min(settings.max_workers, settings.shards), thread_name_prefix="bua-shard"
    ) as pool:
        futures = [pool.submit(fn, ctx, s) for s in shards]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _finish(settings: Settings, ctx: Any, run_row: dict[str, Any], status: str) -> None:
    from tasks.prepare import upsert_run

    finished = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    try:
        upsert_run(
            settings.database_url,
            ctx.run_id,
            ctx.run_date,
            {**run_row, "status": status, "finished_at": finished},
        )
    except Exception:  # noqa: BLE001 — the database may be the reason the run failed
        if status == "COMPLETED":
            raise
