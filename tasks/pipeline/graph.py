"""The month end as one graph, declared as data (SPEC §5): each phase names its function, whether it
runs per shard, and the datasets it reads and writes. Dependencies are derived from those — never
kept by hand: a phase waits for the phases that write what it reads (a per-shard phase for the same
shard of a per-shard writer; anything else for every shard). The Prefect flow (flows/monthly.py)
is generated from this graph, and :func:`run_phase` is the one way a phase is executed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tasks.pipeline import sinks
from tasks.pipeline.datasets import Dataset, Datasets
from tasks.pipeline.phases import accounts, estimates, outputs, profiles, publish, rating, validation
from tasks.pipeline.spec import RunSpec
from tasks.settings import Settings


@dataclass(frozen=True)
class Phase:
    """One phase: its function, the datasets it reads and writes, and the run parameters and
    settings only it depends on (``keyed_by``: in its cache key, not in every phase's)."""

    name: str
    fn: Callable[..., dict[str, Any]]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    per_shard: bool = False
    keyed_by: tuple[str, ...] = ()


def _frames(folder: str, *names: str, per_shard: bool = False, kind: Any = "parquet") -> list[Dataset]:
    return [Dataset(n, folder, per_shard, kind) for n in names]


DATASETS: list[Dataset] = [
    # sources: outside the run
    Dataset("billing_source", kind="source", load=sinks.billing_source),
    Dataset("meter_data", per_shard=True, kind="source", load=sinks.meter_data),
    Dataset("previous_accrual", kind="source", load=sinks.previous_accrual),
    Dataset("prechecks", kind="source", load=sinks.prechecks),
    Dataset("booked_summary", kind="source", load=sinks.booked_summary),
    # work frames
    *_frames("extract", *accounts.EXTRACT_DATASETS, "extract_exceptions"),
    *_frames("windows", "windows", "windows_exceptions"),
    # profile_partial: folded one shard at a time by profiles_combine (its memory does not grow with shards)
    Dataset("profile_partial", "profiles", per_shard=True, stream=True),
    *_frames("profiles", "day_grid", "profile_exceptions", per_shard=True),
    Dataset("window_data", "profiles", per_shard=True, kind="ipc"),
    *_frames("profiles", "profiles"),
    *_frames(
        "segments",
        "segment_profiles",
        "segment_fills",
        "macro_profile",
        "gas_macro",
        "gas_fit",
        "gas_class_scalars",
    ),
    *_frames("basic", "read_pairs", "read_pair_exceptions", per_shard=True),
    *_frames("basic", "weather_balance_points"),
    *_frames("scalars", "scalars", "scalar_exceptions", per_shard=True),
    *_frames("estimates", "basic_usage", "basic_exceptions", per_shard=True),
    # read by prepare (and export) shard by shard: prepare writes the output tables in slices (issue 14)
    Dataset("estimated_basic_read", "estimates", per_shard=True, stream=True),
    Dataset("interval_usage", "estimates", per_shard=True, kind="ipc"),
    *_frames("estimates", "interval_exceptions", per_shard=True),
    *_frames("engine", "engine_lines"),
    Dataset("lines", "rating", per_shard=True, stream=True),
    Dataset("account_totals", "rating", per_shard=True, stream=True),
    *_frames("rating", "rating_exceptions", per_shard=True),
    *_frames("exceptions", "bua_exception"),
    Dataset("finished_message", "notify", kind="json"),
    Dataset("comparison", "comparison"),
    # sinks: what the run publishes (and views of it read back)
    Dataset("nem12_estimates", per_shard=True, kind="sink", save=sinks.nem12_estimates),
    Dataset("output_tables", kind="sink", save=sinks.output_tables),
    Dataset("accrual_summary", kind="sink", load=sinks.accrual_summary),
    Dataset("published_accrual", kind="sink", load=sinks.published_accrual),
    Dataset("published_totals", kind="sink", load=sinks.slack_totals),
    Dataset("csv_exports", kind="sink", save=sinks.csv_exports),
    Dataset("validation_tables", kind="sink", save=sinks.validation_tables),
    Dataset("validation_figures", kind="sink", load=sinks.published_validation),
    Dataset("comparison_export", kind="sink", save=sinks.comparison),
    Dataset("report", kind="sink", save=sinks.report),
]
REGISTRY: dict[str, Dataset] = {d.name: d for d in DATASETS}

PHASES: list[Phase] = [
    Phase("extract", accounts.extract, ("billing_source",),
          (*accounts.EXTRACT_DATASETS, "extract_exceptions")),
    Phase("windows", accounts.windows, ("accounts", "invoices", "registers"), ("windows", "windows_exceptions")),
    Phase("profiles_partial", profiles.profiles_partial, ("registers", "windows", "meter_data"),
          ("profile_partial", "day_grid", "window_data", "profile_exceptions"), per_shard=True),
    Phase("profiles_combine", profiles.profiles_combine, ("profile_partial",), ("profiles",)),
    Phase("segments", profiles.segments, ("registers", "profiles"),
          ("segment_profiles", "segment_fills", "macro_profile")),
    Phase("read_pairs", estimates.read_pairs, ("registers", "basic_reads"),
          ("read_pairs", "read_pair_exceptions")),  # one task, every shard's files
    Phase("gas_shape", profiles.gas_shape,
          ("registers", "read_pairs", "macro_profile", "segment_profiles", "temperature"),
          ("gas_macro", "gas_fit", "gas_class_scalars")),
    Phase("balance_points", estimates.balance_points,
          ("registers", "basic_reads", "macro_profile", "gas_macro", "temperature"), ("weather_balance_points",)),
    Phase("scalars", estimates.scalars, ("registers", "segment_profiles", "day_grid", "meter_data"),
          ("scalars", "scalar_exceptions"), per_shard=True),
    Phase("basic_estimates", estimates.basic_estimates,
          ("registers", "windows", "basic_reads", "read_pairs", "macro_profile", "gas_macro", "gas_class_scalars",
           "weather_balance_points", "temperature"),
          ("basic_usage", "estimated_basic_read", "basic_exceptions"), per_shard=True),
    Phase("interval_estimates", estimates.interval_estimates,
          ("registers", "windows", "segment_profiles", "scalars", "window_data", "meter_data"),
          ("interval_usage", "interval_exceptions", "nem12_estimates"), per_shard=True),
    Phase("engine_lines", rating.engine_lines, ("windows",), ("engine_lines",)),
    Phase("rating", rating.rating,
          ("windows", "interval_usage", "basic_usage", "account_plans", "plans", "plan_rates", "tou_windows",
           "discounts", "engine_lines"),
          ("lines", "account_totals", "rating_exceptions"), per_shard=True),
    Phase("exceptions", rating.exceptions,
          ("extract_exceptions", "windows_exceptions", "profile_exceptions", "read_pair_exceptions",
           "scalar_exceptions", "basic_exceptions", "interval_exceptions", "rating_exceptions"),
          ("bua_exception",)),
    Phase("prepare", outputs.prepare, ("bua_exception", "account_totals", "lines", "estimated_basic_read"),
          ("output_tables", "accrual_summary", "published_accrual", "published_totals")),
    Phase("export", outputs.export,
          ("bua_exception", "account_totals", "lines", "estimated_basic_read", "accrual_summary"),
          ("csv_exports",)),
    Phase("validation", validation.validation,
          ("registers", "profiles", "read_pairs", "basic_reads", "macro_profile", "gas_macro", "meter_data",
           "previous_accrual"),
          ("validation_tables", "validation_figures"), keyed_by=("backtest_months", "backtest_registers")),
    Phase("comparison", publish.comparison, ("accrual_summary", "booked_summary"),
          ("comparison", "comparison_export")),
    Phase("report", publish.report,
          ("published_accrual", "validation_figures", "prechecks", "comparison"), ("report",)),
    Phase("notify", publish.notify, ("published_totals",), ("finished_message",)),
]  # fmt: skip


class GraphError(ValueError):
    """The graph is not well formed (a dataset written twice, read before it is written, unknown)."""


def writers(phases: list[Phase]) -> dict[str, Phase]:
    """Dataset → the phase that writes it (each dataset has at most one writer)."""
    out: dict[str, Phase] = {}
    for p in phases:
        for d in p.writes:
            if d not in REGISTRY:
                raise GraphError(f"phase {p.name} writes unknown dataset {d!r}")
            if d in out:
                raise GraphError(f"dataset {d!r} is written by both {out[d].name} and {p.name}")
            out[d] = p
    return out


def upstream(phases: list[Phase]) -> dict[str, tuple[str, ...]]:
    """Phase → the phases it waits for (those writing what it reads), in graph order."""
    by = writers(phases)
    order = {p.name: i for i, p in enumerate(phases)}
    deps: dict[str, tuple[str, ...]] = {}
    for p in phases:
        ups: set[str] = set()
        for d in p.reads:
            if d not in REGISTRY:
                raise GraphError(f"phase {p.name} reads unknown dataset {d!r}")
            w = by.get(d)
            if w is None:
                if REGISTRY[d].load is None:
                    raise GraphError(f"phase {p.name} reads {d!r}, which no phase writes")
                continue  # a source
            if order[w.name] >= order[p.name]:
                raise GraphError(f"phase {p.name} reads {d!r} before {w.name} writes it")
            ups.add(w.name)
        deps[p.name] = tuple(sorted(ups, key=order.__getitem__))
    return deps


Task = tuple[str, int | None]  # (phase, shard or None)


def tasks(phases: list[Phase], shards: int) -> dict[Task, list[Task]]:
    """Every task of a run (a per-shard phase: one per shard) and the tasks it waits for: shard s
    of a per-shard phase waits for shard s of a per-shard upstream; otherwise for all of it."""
    deps = upstream(phases)
    by_name = {p.name: p for p in phases}
    graph: dict[Task, list[Task]] = {}
    for p in phases:
        for shard in range(shards) if p.per_shard else [None]:
            waits: list[Task] = []
            for u in deps[p.name]:
                up = by_name[u]
                if not up.per_shard:
                    waits.append((u, None))
                elif shard is not None:
                    waits.append((u, shard))
                else:
                    waits += [(u, s) for s in range(shards)]
            graph[(p.name, shard)] = waits
    return graph


def dataset_shard(name: str, phase: Phase, shard: int | None) -> int | None:
    """The shard a phase's task reads or writes of a dataset (None: the whole dataset)."""
    return shard if phase.per_shard and REGISTRY[name].per_shard else None


@dataclass
class PhaseRun:
    """What executing one task gives: the locations written per dataset, stats and timings."""

    phase: str
    shard: int | None
    written: dict[str, list[str]]
    stats: dict[str, Any]
    seconds: float
    cpu_seconds: float


def run_phase(phase: Phase, spec: RunSpec, settings: Settings, shard: int | None = None) -> PhaseRun:
    """Load what ``phase`` reads, call its function, save what it returns (the one way phases run)."""
    started, cpu = time.perf_counter(), time.process_time()
    io = Datasets(spec, settings, REGISTRY)
    inputs = {name: io.load(name, dataset_shard(name, phase, shard)) for name in phase.reads}
    out = phase.fn(io.context(shard), **inputs)
    stats = dict(out.pop("stats", None) or {})
    unknown = set(out) - set(phase.writes)
    if unknown:
        raise GraphError(f"phase {phase.name} returned undeclared datasets: {sorted(unknown)}")
    written: dict[str, list[str]] = {}
    for name in phase.writes:
        if out.get(name) is not None:
            written[name] = io.save(name, out[name], dataset_shard(name, phase, shard))
    stats.update(io.stats)
    return PhaseRun(
        phase.name, shard, written, stats, time.perf_counter() - started, time.process_time() - cpu
    )


def phase_named(name: str, phases: list[Phase] | None = None) -> Phase:
    for p in phases or PHASES:
        if p.name == name:
            return p
    raise KeyError(name)


def walk(phases: list[Phase], shards: int) -> Iterator[Task]:
    """The tasks in an order that respects the dependencies (graph order, shard by shard)."""
    graph = tasks(phases, shards)
    yield from graph
