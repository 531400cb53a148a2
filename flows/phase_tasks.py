"""The phase graph (tasks/pipeline/graph.py) as Prefect tasks: one typed task per phase, a per-shard
phase one task run per shard, each submitted when the task runs it waits for have finished.

Submitting on readiness (rather than handing Prefect futures to the runner) keeps every runner
thread busy with work that can start: a task never occupies a thread waiting for its inputs. At
most ``BUA_MAX_WORKERS`` task runs are in flight, earliest phase (then shard) first, as the graph
orders them. A failed task holds back only what depends on it; the run then fails naming it.

A task's cache key is computed here, from its inputs' fingerprints (the results of the tasks it
waited for, or the sources' fingerprints); Prefect persists each result under its key, so a re-run
or a Retry of the flow run finds every finished phase (state Cached). A task whose outputs are gone
or changed since (its manifest no longer matches) is re-run even when its key is cached.
"""

from __future__ import annotations

import heapq
import queue
from dataclasses import dataclass, field
from typing import Any

from flows import faults, progress
from flows.fingerprints import cache_key, fingerprint, outputs_intact, versions, write_manifest
from flows.runtime import current_settings, result_storage
from tasks.pipeline.graph import PHASES, REGISTRY, Phase, Task, run_phase, tasks, upstream
from tasks.pipeline.spec import RunSpec
from tasks.settings import Settings

PhaseResult = dict[str, Any]


def execute(run: dict[str, Any], phase: str, shard: int | None, key: str) -> PhaseResult:
    """The body of every phase task: run the phase (tasks/pipeline/graph.run_phase), record what it
    wrote. ``run`` is the RunSpec's JSON (run parameters only); settings come from the worker."""
    spec = RunSpec.from_json(run)
    settings = current_settings()
    ph = next(p for p in PHASES if p.name == phase)
    faults.delay(phase)
    done = run_phase(ph, spec, settings, shard)
    faults.check(phase, shard)
    written = versions([loc for locs in done.written.values() for loc in locs], spec, settings)
    write_manifest(spec, settings, phase, shard, written)
    return {
        "phase": phase,
        "shard": shard,
        "fingerprint": fingerprint(written, done.stats, settings),
        "written": {name: sorted(locs) for name, locs in done.written.items()},
        "stats": done.stats,
        "seconds": round(done.seconds, 3),
        "cpu_seconds": round(done.cpu_seconds, 3),
    }


def _key(context: Any, parameters: dict[str, Any]) -> str:
    return parameters["key"]


def phase_task(phase: Phase, settings: Settings, refresh: bool = False) -> Any:
    """The Prefect task of one phase: retried, its result persisted under the key it is given
    (``refresh``: recomputed and persisted even where that key holds a result)."""
    from prefect import task
    from prefect.tasks import exponential_backoff

    return task(
        execute,
        name=phase.name,
        task_run_name=phase.name + ("[{shard}]" if phase.per_shard else ""),
        cache_key_fn=_key,
        persist_result=True,
        result_storage=result_storage(settings),
        refresh_cache=refresh or None,
        retries=settings.task_retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=settings.task_retry_delay_seconds),
        log_prints=False,
    )


class PhaseFailedError(RuntimeError):
    """Some phase task runs failed; ``cause`` is the first one's exception."""

    def __init__(
        self, failed: list[str], not_run: list[str], cause: BaseException | None, states: dict[str, str]
    ) -> None:
        self.failed, self.not_run, self.cause, self.states = failed, not_run, cause, states
        held = ", ".join(not_run[:20]) + (" …" if len(not_run) > 20 else "")
        super().__init__(
            f"bua_monthly failed in {'; '.join(failed)}. Not run (upstream failed): {held or '-'}. "
            "Fix the cause and re-run the same run date (or retry the flow run): finished phases are cached."
        )


@dataclass
class GraphRun:
    """The state of one run of the graph: results by task, the task runs' final state names."""

    results: dict[Task, PhaseResult] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)

    def phase_results(self, phase: str) -> list[PhaseResult]:
        return [
            r
            for (p, _), r in sorted(self.results.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
            if p == phase
        ]


def _name(t: Task) -> str:
    return t[0] if t[1] is None else f"{t[0]}[{t[1]}]"


def inputs_of(
    phase: Phase,
    shard: int | None,
    results: dict[Task, PhaseResult],
    sources: dict[str, Any],
    deps: tuple[str, ...],
) -> dict[str, Any]:
    """What a task's key depends on: its upstream tasks' fingerprints and the sources it reads."""
    out: dict[str, Any] = {}
    for up in deps:
        out[up] = sorted(
            (str(s), r["fingerprint"])
            for (p, s), r in results.items()
            if p == up and (shard is None or s in (None, shard))
        )
    for name in phase.reads:
        if name in sources:
            value = sources[name]
            out[name] = (
                value[shard]
                if isinstance(value, list) and shard is not None and REGISTRY[name].per_shard
                else value
            )
    return out


def run_graph(
    spec: RunSpec, settings: Settings, sources: dict[str, Any], refresh: bool = False, runner: Any = None
) -> GraphRun:
    """Submit every task of the run as soon as it can start; wait for all; raise naming failures.

    ``runner``: a started Prefect task runner to submit to (else the flow run's own, as
    ``Task.submit`` does); either way the task runs belong to the flow run being run."""
    phases = PHASES
    graph = tasks(phases, spec.shards)
    if settings.task_runner != "dask":
        # the report task runs in this process: its renderer is started while the other phases run
        from tasks.pipeline.report.charts import start_prewarm

        start_prewarm()
    deps = upstream(phases)
    by_name = {p.name: p for p in phases}
    order = {p.name: i for i, p in enumerate(phases)}
    prefect_tasks: dict[tuple[str, bool], Any] = {}

    def task_of(phase: str, stale: bool) -> Any:
        """The phase's Prefect task, or its refresh_cache variant for a stale task: made once per
        run and phase, and only the variants used (making a Task reads its function's source)."""
        if (phase, stale) not in prefect_tasks:
            prefect_tasks[phase, stale] = phase_task(by_name[phase], settings, refresh=stale)
        return prefect_tasks[phase, stale]

    waiting = {t: set(ups) for t, ups in graph.items()}
    dependents: dict[Task, list[Task]] = {t: [] for t in graph}
    for t, ups in graph.items():
        for u in ups:
            dependents[u].append(t)
    for p in phases:
        progress.planned(p.name, spec.shards if p.per_shard else 1)

    def prio(t: Task) -> tuple[int, int]:
        return (order[t[0]], -1 if t[1] is None else t[1])

    ready = [(prio(t), t) for t, ups in waiting.items() if not ups]
    heapq.heapify(ready)
    done: queue.Queue[tuple[Task, Any]] = queue.Queue()
    run = GraphRun()
    in_flight: dict[Task, Any] = {}
    failed: list[str] = []
    cause: BaseException | None = None
    upstream_futures: dict[Task, Any] = {}
    limit = max(1, settings.max_workers)
    payload = spec.to_json()

    while ready or in_flight:
        while ready and len(in_flight) < limit:
            _, t = heapq.heappop(ready)
            phase, shard = t
            ph = by_name[phase]
            key = cache_key(
                spec,
                settings,
                phase,
                shard,
                inputs_of(ph, shard, run.results, sources, deps[phase]),
                ph.keyed_by,
            )
            stale = refresh or not outputs_intact(spec, settings, phase, shard)
            parameters = {"run": payload, "phase": phase, "shard": shard, "key": key}
            wait_for = [upstream_futures[u] for u in graph[t]]
            if runner is None:
                future = task_of(phase, stale).submit(**parameters, wait_for=wait_for)
            else:
                future = runner.submit(task_of(phase, stale), parameters=parameters, wait_for=wait_for)
            in_flight[t] = future
            upstream_futures[t] = future
            future.add_done_callback(lambda f, t=t: done.put((t, f)))
        t, future = done.get()
        in_flight.pop(t, None)
        future.wait()  # done: records the final state on the future (else .state asks the API)
        state = future.state
        run.states[_name(t)] = str(state.name)
        progress.finished(t[0], str(state.name))
        if state.is_completed():
            run.results[t] = future.result()
            for d in dependents[t]:
                waiting[d].discard(t)
                if not waiting[d]:
                    heapq.heappush(ready, (prio(d), d))
        else:
            msg = str(state.message or "").splitlines()[0][:300] if state.message else ""
            failed.append(f"{_name(t)} ({state.name}: {msg})")
            if cause is None:
                exc = state.result(raise_on_failure=False)
                cause = exc if isinstance(exc, BaseException) else None
    if failed:
        not_run = [_name(t) for t in graph if t not in run.results and _name(t) not in run.states]
        raise PhaseFailedError(failed, not_run, cause, run.states)
    return run
