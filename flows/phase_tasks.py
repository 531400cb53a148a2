"""The phase graph (tasks/pipeline/graph.py) as Prefect tasks: one typed task per phase, a per-shard
phase one task run per shard, each submitted when the task runs it waits for have finished.

Submitting on readiness (rather than handing Prefect futures to the runner) keeps every runner
thread busy with work that can start: a task never occupies a thread waiting for its inputs. At
most ``BUA_MAX_WORKERS`` task runs are in flight, earliest phase (then shard) first, as the graph
orders them. A failed task holds back only what depends on it; the run then fails naming it.

A per-shard phase's shards are grouped into at most ``Settings.shard_tasks`` task runs (contiguous
groups, each run one shard after another): every task run costs the Prefect server ~40–50 ms of CPU
and its client ~5 ms (bench/prefect_overhead.py), so 16 shards of five per-shard phases as 40 task
runs instead of 80 leave that CPU to the phases. Outputs, manifests, fingerprints and cache keys
stay per shard: a group's key is made of its shards' keys, and its result holds each shard's.

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
from flows.fingerprints import cache_key, fingerprint, group_key, outputs_intact, versions, write_manifest
from flows.runtime import current_settings, result_storage
from tasks.pipeline.graph import PHASES, REGISTRY, Phase, Task, run_phase, tasks, upstream
from tasks.pipeline.spec import RunSpec
from tasks.settings import Settings

PhaseResult = dict[str, Any]


def execute(run: dict[str, Any], phase: str, shard: int | list[int] | None, key: str) -> PhaseResult:
    """The body of every phase task: run the phase (tasks/pipeline/graph.run_phase), record what it
    wrote. ``run`` is the RunSpec's JSON (run parameters only); settings come from the worker.
    ``shard``: a list for a group of shards, run one after another; the result then holds each
    shard's result under ``parts``."""
    spec = RunSpec.from_json(run)
    settings = current_settings()
    ph = next(p for p in PHASES if p.name == phase)
    faults.delay(phase)
    if isinstance(shard, list):
        return {"phase": phase, "shard": shard, "parts": [_execute(ph, spec, settings, s) for s in shard]}
    return _execute(ph, spec, settings, shard)


def _execute(ph: Phase, spec: RunSpec, settings: Settings, shard: int | None) -> PhaseResult:
    phase = ph.name
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


def run_name(phase: str, shard: int | list[int] | None) -> str:
    """A task run's name: ``extract``, ``rating[3]``, a group of shards ``rating[2-3]`` (contiguous)."""
    if shard is None:
        return phase
    if isinstance(shard, list):
        return f"{phase}[{shard[0]}]" if len(shard) == 1 else f"{phase}[{shard[0]}-{shard[-1]}]"
    return f"{phase}[{shard}]"


def _run_name(phase: Phase) -> Any:
    if not phase.per_shard:
        return phase.name

    def name(parameters: dict[str, Any]) -> str:
        return run_name(phase.name, parameters.get("shard"))

    return name


def shard_groups(settings: Settings, shards: int) -> list[list[int]]:
    """The shards of a per-shard phase as its task runs take them: contiguous groups, as even as can
    be (sizes differ by at most one), ``settings.shard_tasks`` of them (module docstring)."""
    wanted = settings.shard_tasks
    if wanted is None:
        wanted = 0 if settings.task_runner == "dask" else 4 * settings.max_workers
    n = shards if wanted == 0 else max(1, min(shards, wanted))
    return [list(range(i * shards // n, (i + 1) * shards // n)) for i in range(n)]


def phase_task(phase: Phase, settings: Settings, refresh: bool = False) -> Any:
    """The Prefect task of one phase: retried, its result persisted under the key it is given
    (``refresh``: recomputed and persisted even where that key holds a result)."""
    from prefect import task
    from prefect.tasks import exponential_backoff

    return task(
        execute,
        name=phase.name,
        task_run_name=_run_name(phase),
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
    groups = shard_groups(settings, spec.shards)
    grouped = len(groups) < spec.shards
    graph = tasks(phases, len(groups))  # a per-shard task here is a group of shards (one, ungrouped)
    # the report task runs in this process (thread runner): its renderer is started while the other
    # phases run — once a task has been computed (a rerun that is all cache hits renders nothing)
    prewarm = settings.task_runner != "dask"
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
        progress.planned(p.name, len(groups) if p.per_shard else 1)

    def members(t: Task) -> int | list[int] | None:
        """The ``shard`` parameter of a task: None, the shard, or (grouped) the group's shards."""
        if t[1] is None:
            return None
        return groups[t[1]] if grouped else groups[t[1]][0]

    def name(t: Task) -> str:
        return run_name(t[0], members(t))

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

    finished: set[Task] = set()

    def key_of(ph: Phase, shard: int | None) -> str:
        inputs = inputs_of(ph, shard, run.results, sources, deps[ph.name])
        return cache_key(spec, settings, ph.name, shard, inputs, ph.keyed_by)

    while ready or in_flight:
        while ready and len(in_flight) < limit:
            _, t = heapq.heappop(ready)
            phase = t[0]
            ph = by_name[phase]
            shard = members(t)
            if isinstance(shard, list):
                key = group_key(spec, phase, shard, [key_of(ph, s) for s in shard])
                intact = all(outputs_intact(spec, settings, phase, s) for s in shard)
            else:
                key = key_of(ph, shard)
                intact = outputs_intact(spec, settings, phase, shard)
            stale = refresh or not intact
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
        run.states[name(t)] = str(state.name)
        progress.finished(t[0], str(state.name))
        if state.is_completed():
            if prewarm and state.name == "Completed":
                from tasks.pipeline.report.charts import start_prewarm

                start_prewarm()
                prewarm = False
            result = future.result()
            for part in result["parts"] if "parts" in result else [result]:
                run.results[(t[0], part["shard"])] = part
            finished.add(t)
            for d in dependents[t]:
                waiting[d].discard(t)
                if not waiting[d]:
                    heapq.heappush(ready, (prio(d), d))
        else:
            msg = str(state.message or "").splitlines()[0][:300] if state.message else ""
            failed.append(f"{name(t)} ({state.name}: {msg})")
            if cause is None:
                exc = state.result(raise_on_failure=False)
                cause = exc if isinstance(exc, BaseException) else None
    if failed:
        not_run = [name(t) for t in graph if t not in finished and name(t) not in run.states]
        raise PhaseFailedError(failed, not_run, cause, run.states)
    return run
