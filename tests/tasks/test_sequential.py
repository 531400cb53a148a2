"""run_accrual's scheduler (tasks/pipeline/sequential.py ``run_phases``): phases on ``max_workers`` threads,
each task once what it reads (``DEPENDS``, the flow's wiring) is written."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tasks.pipeline.sequential import DEPENDS, run_phases, task_graph

NAMES = [
    "extract", "windows", "profiles_partial", "profiles_combine", "segments", "read_pairs", "gas_shape",
    "scalars", "basic_estimates", "interval_estimates", "rating", "exceptions", "prepare", "export",
    "validation", "report", "notify",
]  # fmt: skip
PER_SHARD = {"profiles_partial", "read_pairs", "scalars", "basic_estimates", "interval_estimates", "rating"}


class Log:
    """What the fake phases did: (phase, shard, start, end, thread) per call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, int | None, float, float, str]] = []

    def phases(
        self, sleep: dict[str, float], fail: dict[tuple[str, int | None], float] | None = None
    ) -> list:
        def make(name: str, per_shard: bool) -> Any:
            def fn(ctx: object, shard: int | None = None) -> Any:
                t0 = time.perf_counter()
                delay = (fail or {}).get((name, shard))
                time.sleep(delay if delay is not None else sleep.get(name, 0.0))
                with self.lock:
                    self.calls.append((name, shard, t0, time.perf_counter(), threading.current_thread().name))
                if delay is not None:
                    raise ValueError(f"{name} shard {shard} is broken")
                return f"{name}:{shard}"

            return fn

        return [(n, make(n, n in PER_SHARD), n in PER_SHARD) for n in NAMES]

    def names(self) -> set[str]:
        return {c[0] for c in self.calls}


def test_dependencies_are_the_flows() -> None:
    # flows/monthly.py's accrual_phases body run against a recorder instead of Prefect: each phase's
    # upstream futures name the phases it reads; they must be DEPENDS (else the in-process run races
    # a read the flow orders, or waits for one it does not)
    import flows.monthly
    from flows import glue

    seen: dict[str, set[str]] = {}

    class Recorder:
        def __init__(self, spec: object, refresh: bool = False) -> None:
            pass

        def has(self, phase: str) -> bool:
            return True

        def sources(self) -> tuple[str, str]:
            return "database", "meter_store"

        def _record(self, phase: str, inputs: dict[str, Any]) -> None:
            ups = {v[0] if isinstance(v, list) else v for v in inputs.values()}
            seen[phase] = ups - {"database", "meter_store", None}

        def once(self, phase: str, **inputs: Any) -> str:
            self._record(phase, inputs)
            return phase

        def per_shard(self, phase: str, **inputs: Any) -> list[str]:
            self._record(phase, inputs)
            return [phase, phase]

        def future(self, phase: str) -> str:
            return phase

        def wait(self) -> dict[str, Any]:
            return {}

    real = glue.Phases
    glue.Phases = Recorder  # type: ignore[misc,assignment]
    try:
        flows.monthly.accrual_phases.fn(None)
    finally:
        glue.Phases = real  # type: ignore[misc]
    assert seen == {k: set(v) for k, v in DEPENDS.items()}
    assert list(seen) == NAMES


def test_task_graph_links_shard_to_shard_and_once_to_every_shard() -> None:
    phases = Log().phases({})
    g = task_graph(phases, 2)
    i = {n: k for k, n in enumerate(NAMES)}
    # interval_estimates[1] (index 9) waits for shard 1 of scalars (7) and the run-once extract (0),
    # windows (1), segments (4); not scalars[0]
    assert g[(i["interval_estimates"], 1)] == [(0, None), (1, None), (4, None), (7, 1)]
    # gas_shape (6) waits for both read_pairs shards (5)
    assert g[(i["gas_shape"], None)] == [(0, None), (4, None), (5, 0), (5, 1)]
    # a phase DEPENDS does not know waits for every earlier one (here all 17 before it)
    unknown = [*phases, ("extra", lambda ctx: None, False)]
    assert [u for u, _ in task_graph(unknown, 1)[(17, None)]] == list(range(17))


def test_two_workers_overlap_what_the_dependencies_allow_and_keep_every_order() -> None:
    log = Log()
    sleep = {"profiles_partial": 0.05, "read_pairs": 0.02, "scalars": 0.02, "gas_shape": 0.03}
    reported: list[str] = []
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    out = run_phases(log.phases(sleep), None, 3, 2, lambda n, s: reported.append(n), seconds)
    wall = time.perf_counter() - t0
    # results per phase in shard order, each the value the fake computed
    assert out["rating"] == ["rating:0", "rating:1", "rating:2"] and out["notify"] == ["notify:None"]
    assert reported == NAMES and list(seconds) == NAMES  # in PHASES order, each once
    by = {(c[0], c[1]): c for c in log.calls}
    graph = task_graph(log.phases({}), 3)
    for (i, shard), ups in graph.items():  # nothing started before what it reads had ended
        for u, s in ups:
            assert by[(NAMES[u], s)][3] <= by[(NAMES[i], shard)][2]
    assert {c[4] for c in log.calls} <= {"bua-phase_0", "bua-phase_1"}
    # 3 profiles shards on 2 threads: the third runs alone, and a read_pairs shard beside it
    # (read_pairs reads extract only); the one-after-the-other run never overlaps two phases
    last = max((c for c in log.calls if c[0] == "profiles_partial"), key=lambda c: c[2])
    assert any(c[0] == "read_pairs" and c[2] < last[3] and c[3] > last[2] for c in log.calls)
    # the seconds split the wall among the phases: they add up to it (less the scheduler's own)
    assert sum(seconds.values()) == pytest.approx(wall, abs=0.03)
    # profiles_partial: 3 x 50 ms on two threads, ~75-100 ms of the wall by its share
    assert 0.07 <= seconds["profiles_partial"] <= 0.12


def test_one_worker_runs_every_task_in_the_calling_thread_in_phases_order() -> None:
    log = Log()
    run_phases(log.phases({}), None, 2, 1)
    expected = [(n, s) for n in NAMES for s in ([0, 1] if n in PER_SHARD else [None])]
    assert [(c[0], c[1]) for c in log.calls] == expected
    assert {c[4] for c in log.calls} == {threading.current_thread().name}


@pytest.mark.parametrize("workers", [1, 2])
def test_the_earliest_phase_failure_is_raised_after_the_phases_before_it_finish(workers: int) -> None:
    # read_pairs[0] fails at once (10 ms); profiles_partial[1], earlier in PHASES, fails later (40 ms):
    # one phase at a time would have failed in profiles_partial, so that is raised; progress names
    # extract and windows only (flows/progress.run_sequential names the phase after the last reported)
    log = Log()
    reported: list[str] = []
    fail = {("read_pairs", 0): 0.01, ("profiles_partial", 1): 0.04}
    with pytest.raises(ValueError, match="profiles_partial shard 1 is broken"):
        run_phases(
            log.phases({"profiles_partial": 0.03}, fail), None, 3, workers, lambda n, s: reported.append(n)
        )
    assert reported == ["extract", "windows"]
    # nothing that reads a failed phase ran, nor any phase after profiles_partial but read_pairs
    assert log.names() <= {"extract", "windows", "profiles_partial", "read_pairs"}


def test_a_later_failure_lets_the_earlier_phases_finish_then_raises() -> None:
    # rating[0] fails while nothing earlier fails: every phase before rating is reported, none after
    log = Log()
    reported: list[str] = []
    with pytest.raises(ValueError, match="rating shard 0 is broken"):
        run_phases(log.phases({}, {("rating", 0): 0.0}), None, 2, 2, lambda n, s: reported.append(n))
    assert reported == NAMES[: NAMES.index("rating")]
    assert not log.names() & {"exceptions", "prepare", "export", "validation", "report", "notify"}
