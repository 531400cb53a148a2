"""The month-end run without Prefect: the phases of :mod:`tasks.pipeline.accrual` on ``settings.max_workers``
threads (default 2), each phase (a per-shard phase: each shard) as soon as the phases it reads have
finished — the dependencies of the Prefect flow (flows/monthly.py), :data:`DEPENDS` — as the flow's
task runner runs them; with one worker, one after the other in ``PHASES`` order.

``bua run`` without Prefect, the tests and the benchmarks use it; the Prefect flow calls the same
phase functions. It records the run in ``bua_run`` (RUNNING, then COMPLETED or FAILED) with the
parameters and the code version.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
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
    # per phase: the run's wall (and process CPU) seconds, each stretch split evenly among the
    # phase tasks running in it (they add up to the run's); with one worker, each phase's own
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    exceptions_by_code: dict[str, int] = field(default_factory=dict)
    accrual_summary: list[dict[str, Any]] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    nem12_files: list[str] = field(default_factory=list)
    notify_message: str | None = None  # the "finished" message the notify phase composed
    error: str | None = None
    cpu_seconds: dict[str, float] = field(default_factory=dict)


# What each phase reads: the upstream phases flows/monthly.py passes it (DESIGN.md "Pipeline phases",
# "Orchestration needs" 8; tests/tasks/test_sequential.py checks the two agree). A per-shard phase's
# shard s waits for shard s of a per-shard upstream phase, a run-once phase for every shard.
DEPENDS: dict[str, tuple[str, ...]] = {
    "extract": (),
    "windows": ("extract",),
    "profiles_partial": ("extract", "windows"),
    "profiles_combine": ("profiles_partial",),
    "segments": ("extract", "profiles_combine"),
    "read_pairs": ("extract",),
    "gas_shape": ("extract", "read_pairs", "segments"),
    "scalars": ("extract", "segments"),
    "basic_estimates": ("extract", "windows", "read_pairs", "segments", "gas_shape"),
    "interval_estimates": ("extract", "windows", "segments", "scalars"),
    "rating": ("extract", "windows", "basic_estimates", "interval_estimates"),
    "exceptions": (
        "extract",
        "windows",
        "read_pairs",
        "scalars",
        "basic_estimates",
        "interval_estimates",
        "rating",
    ),
    "prepare": ("windows", "rating", "basic_estimates", "interval_estimates", "exceptions"),
    "export": ("prepare",),
    "validation": (
        "extract",
        "profiles_combine",
        "segments",
        "read_pairs",
        "gas_shape",
        "prepare",
        "export",
    ),
    "report": ("prepare", "validation"),
    "notify": ("export", "report"),
}


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
    """Run every phase (on ``settings.max_workers`` threads, each when what it reads is written) and
    record the run in ``bua_run``. ``progress(phase, seconds)`` is called once per finished phase,
    in ``PHASES`` order (a phase that finished early waits for the ones before it)."""
    from tasks.adapters.db import check_connection
    from tasks.adapters.prepare import upsert_run
    from tasks.pipeline.accrual import PHASES, RunContext

    ctx = RunContext.create(settings, run_date, period_start, period_end, basic_method)
    result = RunResult(ctx.run_id, run_date, ctx.period_start, ctx.period_end, ctx.basic_method, "RUNNING")
    check_connection(settings.database_url)
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    params = {"basic_method": ctx.basic_method, "shards": settings.shards, "period_start": ctx.period_start,
              "period_end": ctx.period_end}  # fmt: skip
    run_row = {"period_start": ctx.period_start, "period_end": ctx.period_end, "started_at": started,
               "parameters": json.dumps(params, default=str, sort_keys=True), "code_version": code_version()}  # fmt: skip
    try:
        from tasks.adapters.db import require_tables

        require_tables(settings.database_url, ("bua_run",))
        upsert_run(
            settings.database_url, ctx.run_id, run_date, {**run_row, "status": "RUNNING", "finished_at": None}
        )
        outputs = run_phases(
            PHASES, ctx, settings.shards, settings.max_workers, progress, result.seconds, result.cpu_seconds
        )
        for name, _, _ in PHASES:
            for out in outputs[name]:
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


Task = tuple[int, int | None]  # (index in PHASES, shard or None): also the order tasks start in


def task_graph(phases: Sequence[tuple[str, Callable[..., Any], bool]], shards: int) -> dict[Task, list[Task]]:
    """Every task of the run and the tasks it waits for (:data:`DEPENDS`; a phase it does not list,
    or one naming a phase that is not before it in ``phases``, waits for every earlier phase)."""
    index = {name: i for i, (name, _, _) in enumerate(phases)}
    graph: dict[Task, list[Task]] = {}
    for i, (name, _, per_shard) in enumerate(phases):
        declared = DEPENDS.get(name)
        ups = [index[d] for d in declared or () if d in index]
        if declared is None or any(u >= i for u in ups):
            ups = list(range(i))
        for shard in range(shards) if per_shard else [None]:
            graph[(i, shard)] = [
                (u, s)
                for u in sorted(ups)
                for s in (range(shards) if phases[u][2] else [None])
                if shard is None or s is None or s == shard
            ]
    return graph


def run_phases(
    phases: Sequence[tuple[str, Callable[..., Any], bool]],
    ctx: Any,
    shards: int,
    workers: int,
    progress: Callable[[str, float], None] | None = None,
    seconds: dict[str, float] | None = None,
    cpu_seconds: dict[str, float] | None = None,
) -> dict[str, list[Any]]:
    """Run ``phases`` (``(name, fn, per_shard)``: ``fn(ctx)`` or ``fn(ctx, shard)``) on ``workers``
    threads, each task once the tasks it waits for (:func:`task_graph`) have finished, the earliest
    in ``PHASES`` order (then shard order) first; with one worker, in the calling thread in that order.
    Returns each phase's results in shard order and fills ``seconds``/``cpu_seconds`` per phase
    (:class:`_Clock`), calling ``progress`` per phase in ``phases`` order.

    A failure stops new tasks of its phase and later ones; tasks of earlier phases still run (the
    one-after-the-other run would have run them first), then the failure of the earliest phase
    (lowest shard) is raised once the running tasks have finished: the same exception, and the same
    phases reported finished, as one phase at a time.
    """
    graph = task_graph(phases, shards)
    waiting = {t: set(ups) for t, ups in graph.items()}
    dependents: dict[Task, list[Task]] = {t: [] for t in graph}
    for t, ups in graph.items():
        for u in ups:
            dependents[u].append(t)
    remaining = [sum(1 for t in graph if t[0] == i) for i in range(len(phases))]
    results: dict[Task, Any] = {}
    clock = _Clock()
    ready = [t for t, ups in waiting.items() if not ups]
    heapq.heapify(ready)
    failures: dict[Task, BaseException] = {}
    reported = 0

    def run(task: Task) -> Any:
        name, fn, _ = phases[task[0]]
        clock.begin(name)
        try:
            return fn(ctx) if task[1] is None else fn(ctx, task[1])
        finally:
            clock.end(name)

    def finished(task: Task, out: Any = None, exc: BaseException | None = None) -> None:
        nonlocal reported
        if exc is not None:
            failures[task] = exc
            return
        results[task] = out
        remaining[task[0]] -= 1
        for d in dependents[task]:
            waiting[d].discard(task)
            if not waiting[d]:
                heapq.heappush(ready, d)
        while (
            reported < len(phases)
            and not remaining[reported]
            and not (failures and reported >= min(failures)[0])
        ):
            name = phases[reported][0]
            if seconds is not None:
                seconds[name] = round(clock.wall[name], 3)
            if cpu_seconds is not None:
                cpu_seconds[name] = round(clock.cpu[name], 3)
            reported += 1
            if progress:
                progress(name, round(clock.wall[name], 3))

    def startable() -> Task | None:
        # after a failure, only tasks of phases before the earliest failed one
        if ready and (not failures or ready[0][0] < min(failures)[0]):
            return heapq.heappop(ready)
        return None

    if workers <= 1:
        while (task := startable()) is not None:
            try:
                out = run(task)
            except Exception as exc:
                finished(task, exc=exc)
            else:
                finished(task, out)
    else:
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        with ThreadPoolExecutor(workers, thread_name_prefix="bua-phase") as pool:
            running: dict[Any, Task] = {}
            try:
                while True:
                    while len(running) < workers and (task := startable()) is not None:
                        running[pool.submit(run, task)] = task
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for f in sorted(done, key=running.__getitem__):
                        task = running.pop(f)
                        exc = f.exception()
                        if isinstance(exc, Exception):
                            finished(task, exc=exc)
                        elif exc is not None:  # KeyboardInterrupt, SystemExit: as one phase at a time
                            raise exc
                        else:
                            finished(task, f.result())
            except BaseException:
                for f in running:
                    f.cancel()
                raise
    if failures:
        raise failures[min(failures)]
    missing = [phases[t[0]][0] for t in graph if t not in results]
    if missing:  # pragma: no cover - task_graph only points backwards
        raise RuntimeError(f"phases never ran: {sorted(set(missing))}")
    return {name: [results[t] for t in sorted(graph) if t[0] == i] for i, (name, _, _) in enumerate(phases)}


class _Clock:
    """Per phase, the wall and process CPU seconds of the run: each stretch between two task starts
    or ends is split evenly among the tasks running in it (two shards of one phase at once: each
    half, the phase all of it; a read_pairs shard beside a profiles shard: half each). With one
    worker, a phase's own time; at any number of workers they add up to the run's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: list[str] = []
        self.last = (time.perf_counter(), _process_cpu())
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    def _tick(self) -> None:
        now = (time.perf_counter(), _process_cpu())
        for name in self.running:
            self.wall[name] += (now[0] - self.last[0]) / len(self.running)
            self.cpu[name] += (now[1] - self.last[1]) / len(self.running)
        self.last = now

    def begin(self, name: str) -> None:
        with self.lock:
            self._tick()
            self.running.append(name)

    def end(self, name: str) -> None:
        with self.lock:
            self._tick()
            self.running.remove(name)


def _process_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _finish(settings: Settings, ctx: Any, run_row: dict[str, Any], status: str) -> None:
    from tasks.adapters.prepare import upsert_run

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
