"""Walking the phase graph without Prefect, for benchmarks and tests only: the same tasks, the same
:func:`tasks.pipeline.graph.run_phase`, on ``workers`` threads, each task once the tasks it waits
for have finished (earliest phase first). Production runs go through the Prefect flow
(flows/monthly.py); this is what its overhead is measured against (bench/scale.py)."""

from __future__ import annotations

import heapq
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from tasks.pipeline.graph import PHASES, Phase, PhaseRun, Task, run_phase, tasks
from tasks.pipeline.report.charts import start_prewarm
from tasks.pipeline.spec import RunSpec
from tasks.settings import Settings


def walk_graph(
    spec: RunSpec, settings: Settings, workers: int | None = None, phases: list[Phase] | None = None
) -> dict[Task, PhaseRun]:
    """Run every task of the graph; raise the first failure after the running tasks finish."""
    phases = phases or PHASES
    graph = tasks(phases, spec.shards)
    if any(p.name == "report" for p in phases):
        start_prewarm()  # the report's renderer, started while the other phases run (as the flow does)
    by_name = {p.name: p for p in phases}
    order = {p.name: i for i, p in enumerate(phases)}
    waiting = {t: set(ups) for t, ups in graph.items()}
    dependents: dict[Task, list[Task]] = {t: [] for t in graph}
    for t, ups in graph.items():
        for u in ups:
            dependents[u].append(t)
    ready = [((order[t[0]], t[1] if t[1] is not None else -1), t) for t, ups in waiting.items() if not ups]
    heapq.heapify(ready)
    results: dict[Task, PhaseRun] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max(1, workers or settings.max_workers), thread_name_prefix="bua-walk") as pool:
        running: dict[Future[PhaseRun], Task] = {}
        while ready or running:
            while ready and failure is None and len(running) < (workers or settings.max_workers):
                _, t = heapq.heappop(ready)
                running[pool.submit(run_phase, by_name[t[0]], spec, settings, t[1])] = t
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                t = running.pop(f)
                if f.exception() is not None:
                    failure = failure or f.exception()
                    continue
                results[t] = f.result()
                for d in dependents[t]:
                    waiting[d].discard(t)
                    if not waiting[d]:
                        heapq.heappush(ready, ((order[d[0]], d[1] if d[1] is not None else -1), d))
    if failure is not None:
        raise failure
    return results
