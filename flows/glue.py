"""Orchestration glue for ``bua_monthly``: run spec, cache keys, result storage, runners, run lock.

Kept apart from the flow so that ``flows/monthly.py`` reads like SPEC §5's list of phases.

How caching works. Every phase is one Prefect task (per-shard phases mapped over shards) whose
return value is a small :class:`PhaseResult` dict: the sha256 *fingerprint* of the files the phase
wrote under ``{output_url}/work/{run_date}/{phase}/`` (per shard when it wrote per-shard folders),
the time its pure function took, and a few stats. The cache key of a task is a hash of the phase,
the shard, the run's output-relevant parameters, the fingerprints of its inputs and the code
version (package version + hash of the ``tasks/`` and ``sql/`` sources). Results are persisted
under that key in result storage (a local folder or S3), so a re-run of the same run_date — or a
retry of the flow run from the UI on another ECS task — finds every phase whose inputs did not
change and re-executes only the rest. The extract phase's input fingerprint is the
:func:`source_fingerprint` of the billing database and the meter store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flows.fingerprints import (
    PHASE_ONLY_SETTINGS,
    _sha,
    files_fingerprint,
    phase_cache_key,
    source_fingerprint,
)
from tasks.settings import Settings, join_url, load_settings

REPO = Path(__file__).resolve().parents[1]
PhaseResult = dict[str, Any]

# Settings that do not change what a run computes or where it writes: left out of cache keys.
_NOT_IN_KEY = {
    "task_runner",
    "max_workers",
    "dask_address",
    "task_retries",
    "task_retry_delay_seconds",
    "slack_webhook_url",
    "slack_webhook_block",
    "slack_webhook_secret_name",
    "aws_access_key_id",
    "aws_secret_access_key",
    "s3_endpoint_url",
    "fail_phase",
    "run_lock_timeout_seconds",
    "result_url",
    "integration_url",
}


class PhaseFailure(RuntimeError):
    """A failure injected by ``BUA_FAIL_PHASE`` (tests of resume)."""


class BuaRunError(ValueError):
    """A run-level error with a clear message (a ValueError so that the CLI prints it plainly)."""


class RunAlreadyRunning(BuaRunError):
    """Another flow run holds the run_date's lock."""


# ---------------------------------------------------------------- settings and code version

_settings_override: ContextVar[Settings | None] = ContextVar("bua_settings", default=None)


@contextmanager
def use_settings(settings: Settings) -> Iterator[None]:
    """Run flows in this context with ``settings`` (the CLI's options) instead of the environment."""
    token = _settings_override.set(settings)
    try:
        yield
    finally:
        _settings_override.reset(token)


def current_settings() -> Settings:
    return _settings_override.get() or load_settings()


@lru_cache(maxsize=1)
def code_version() -> str:
    """``{package version}+{sha256 of tasks/ and sql/ sources}[:12]``: changes when the engine does."""
    try:
        version = importlib_metadata.version("bua")
    except importlib_metadata.PackageNotFoundError:
        version = "0"
    h = hashlib.sha256()
    for folder in ("tasks", "sql"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in (".py", ".sql") and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(REPO)).encode())
                h.update(path.read_bytes())
    return f"{version}+{h.hexdigest()[:12]}"


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class RunSpec:
    """Everything a phase needs; picklable so Dask workers get it whole."""

    settings: Settings
    run_date: dt.date
    period_start: dt.date
    period_end: dt.date
    basic_method: str
    shards: int
    code_version: str
    pipeline: str = "flows.pipeline"
    run_id: str = field(default="")

    def key_fields(self) -> dict[str, Any]:
        """The output-relevant parameters: run dates, method, locations, code version (settings that
        one phase alone reads are in that phase's key only: fingerprints.EXTRA_KEY_INPUTS)."""
        s = self.settings.model_dump(mode="json", exclude=_NOT_IN_KEY | set(PHASE_ONLY_SETTINGS))
        return {
            **self.parameters(),
            "code_version": self.code_version,
            "pipeline": self.pipeline,
            "settings": s,
        }

    def work_url(self, phase: str, shard: int | None = None) -> str:
        base = join_url(self.settings.output_url, "work", self.run_date.isoformat(), phase)
        return base if shard is None else join_url(base, f"shard={shard:03d}")

    def parameters(self) -> dict[str, Any]:
        """What ``bua_run.parameters`` records (no locations, no secrets)."""
        return {
            "run_date": self.run_date.isoformat(),
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "basic_method": self.basic_method,
            "shards": self.shards,
        }


def default_run_date(settings: Settings) -> dt.date:
    """Today in the retailer's timezone (the scheduled run on the 1st accrues as at that day)."""
    return dt.datetime.now(ZoneInfo(settings.timezone)).date()


def default_period_start(run_date: dt.date) -> dt.date:
    """The 1st of the month twelve months before run_date (the look-back cap, SPEC §4)."""
    return dt.date(run_date.year - 1, run_date.month, 1)


def resolve_run(
    settings: Settings,
    run_date: dt.date | None,
    period_start: dt.date | None,
    period_end: dt.date | None,
    basic_method: str | None,
    shards: int | None,
    backtest_months: int | None = None,
) -> RunSpec:
    """Apply the defaults of SPEC §4 and the flow's explicit parameters over the settings."""
    if backtest_months is not None and not 1 <= backtest_months <= 11:
        raise ValueError(f"backtest_months must be 1 to 11 (BUA_BACKTEST_MONTHS), got {backtest_months}")
    given = {"basic_method": basic_method, "shards": shards, "backtest_months": backtest_months}
    updates = {k: v for k, v in given.items() if v is not None}
    settings = settings.model_copy(update=updates) if updates else settings
    r = run_date or default_run_date(settings)
    start = period_start or default_period_start(r)
    end = period_end or (r - dt.timedelta(days=1))
    if end < start:
        raise ValueError(f"period_end {end} is before period_start {start}")
    spec = RunSpec(
        settings=settings,
        run_date=r,
        period_start=start,
        period_end=end,
        basic_method=settings.basic_method,
        shards=settings.shards,
        code_version=code_version(),
        pipeline=settings.pipeline,
    )
    return RunSpec(**{**spec.__dict__, "run_id": run_id_for(spec)})


def run_id_for(spec: RunSpec) -> str:
    """Deterministic: the engine's own run_id for these parameters (``RunContext.create``), so the
    flow, a resumed flow and the sequential ``run_accrual`` write identical rows (DESIGN.md)."""
    from tasks.pipeline.accrual import RunContext

    return RunContext.create(
        spec.settings, spec.run_date, spec.period_start, spec.period_end, spec.basic_method
    ).run_id


# ---------------------------------------------------------------- running one phase


def pipeline_phase(pipeline: str, phase: str) -> Callable[..., Any] | None:
    """The pipeline module's function ``phase``: an attribute, or an entry of its ``PHASES`` list
    (``tasks.pipeline.accrual.PHASES``: phases appended there, like validation, report and notify, are
    found without re-exporting them)."""
    module = importlib.import_module(pipeline)
    fn = getattr(module, phase, None)
    if fn is None:
        for entry in getattr(module, "PHASES", ()):
            if isinstance(entry, tuple) and entry[0] == phase:
                return entry[1]
    return fn


def phase_function(spec: RunSpec, phase: str) -> Callable[..., Any]:
    fn = pipeline_phase(spec.pipeline, phase)
    if fn is None:
        raise AttributeError(f"pipeline module {spec.pipeline} has no phase function {phase!r}")
    return fn


def should_fail(spec: RunSpec, phase: str, shard: int | None) -> bool:
    target = spec.settings.fail_phase
    if not target:
        return False
    name, _, which = target.partition(":")
    return name == phase and (not which or (shard is not None and int(which) == shard))


def execute_phase(spec: RunSpec, phase: str, shard: int | None) -> PhaseResult:
    """Call the pure phase function, then fingerprint what it wrote. The body of every phase task.

    A phase function is ``fn(spec)`` or ``fn(spec, shard)`` returning the URLs it wrote, or a dict
    ``{"files": [...], "stats": {...}}`` when it also reports figures (artifacts, bench).
    """
    fn = phase_function(spec, phase)
    started, cpu = time.perf_counter(), _process_cpu()
    out = fn(spec) if shard is None else fn(spec, shard)
    seconds, cpu_seconds = time.perf_counter() - started, _process_cpu() - cpu
    if should_fail(spec, phase, shard):
        where = "" if shard is None else f" shard {shard}"
        raise PhaseFailure(
            f"injected failure in phase {phase}{where} (BUA_FAIL_PHASE={spec.settings.fail_phase})"
        )
    files, stats = (
        (list(out.get("files", [])), dict(out.get("stats", {})))
        if isinstance(out, dict)
        else (list(out or []), {})
    )
    whole, common, per_shard = files_fingerprint(files, spec.settings)
    return {
        "phase": phase,
        "shard": shard,
        "fingerprint": _sha({"files": whole, "stats": stats}),
        "common_fingerprint": _sha({"files": common, "stats": stats}),
        "shard_fingerprints": per_shard,
        "files": sorted(files),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,  # of the whole process: the phase's own with one worker (bench)
        "stats": stats,
    }


def _process_cpu() -> float:
    t = os.times()
    return t.user + t.system


# ---------------------------------------------------------------- storage and runners


def result_storage(settings: Settings) -> Any:
    """Where Prefect persists task results: an S3Bucket block for s3://, else a local folder.

    Prefect needs the block saved server-side; it is saved under a name derived from the location
    (``bua-results-{hash}``), so every run and every ECS task resolves the same storage. On ECS no
    keys are stored: the task role's credentials are used.
    """
    url = settings.result_url or join_url(settings.output_url, "prefect-results")
    block: Any
    if url.startswith("s3://"):
        from prefect_aws import AwsCredentials, S3Bucket
        from prefect_aws.client_parameters import AwsClientParameters

        bucket, _, folder = url[len("s3://") :].partition("/")
        creds = AwsCredentials(
            aws_access_key_id=settings.aws_access_key_id.get_secret_value()
            if settings.aws_access_key_id
            else None,
            aws_secret_access_key=settings.aws_secret_access_key,
            region_name=settings.aws_region,
            aws_client_parameters=AwsClientParameters(endpoint_url=settings.s3_endpoint_url),
        )
        block = S3Bucket(bucket_name=bucket, bucket_folder=folder, credentials=creds)
    else:
        from prefect.filesystems import LocalFileSystem

        url = str(Path(url).resolve())
        block = LocalFileSystem(basepath=url)
    return _saved(block, f"bua-results-{hashlib.sha256(url.encode()).hexdigest()[:16]}")


_saved_blocks: dict[tuple[str, str], Any] = {}


def _saved(block: Any, name: str) -> Any:
    """Save ``block`` under ``name`` once per process and API (a few API calls saved on every run)."""
    from prefect.settings import PREFECT_API_URL

    key = (PREFECT_API_URL.value() or "ephemeral", block.model_dump_json())
    if key not in _saved_blocks:
        block.save(name, overwrite=True)
        _saved_blocks[key] = block
    return _saved_blocks[key]


def task_runner(settings: Settings) -> Any:
    """ThreadPoolTaskRunner by default; DaskTaskRunner (local cluster or scheduler address) by setting."""
    if settings.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": settings.max_workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=settings.max_workers)


def retry_options(settings: Settings) -> dict[str, Any]:
    from prefect.tasks import exponential_backoff

    return {
        "retries": settings.task_retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=settings.task_retry_delay_seconds),
    }


# ---------------------------------------------------------------- the run_date lock


def lock_name(run_date: dt.date) -> str:
    return f"bua-run-{run_date.isoformat()}"


@contextmanager
def run_date_lock(run_date: dt.date, timeout_seconds: float) -> Iterator[None]:
    """Hold a Prefect global concurrency limit of 1 named after the run date for the whole run.

    The limit lives in the Prefect server's database, so it holds across machines and ECS tasks;
    its slot is a lease that the holder renews, so a crashed run frees it when the lease expires.
    A second run of the same date waits ``timeout_seconds`` (0: refuses at once) and then raises
    :class:`RunAlreadyRunning`.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = lock_name(run_date)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                pass
    # 0 s: one attempt that gives up at the first "423 Locked" (a slow API still gets its minute);
    # otherwise keep trying until the timeout.
    refuse_at_once = timeout_seconds <= 0
    acquired = concurrency(
        name,
        occupy=1,
        timeout_seconds=60.0 if refuse_at_once else timeout_seconds,
        max_retries=0 if refuse_at_once else None,
        strict=True,
        lease_duration=120,
    )
    try:
        acquired.__enter__()
    except (TimeoutError, ConcurrencySlotAcquisitionError) as exc:
        if isinstance(exc, ConcurrencySlotAcquisitionError) and "423" not in str(exc):
            raise
        raise RunAlreadyRunning(
            f"run_date {run_date} is already being accrued by another flow run (Prefect concurrency "
            f"limit {name!r} is held); refusing to interleave writes. Wait for that run to finish, "
            f"or set BUA_RUN_LOCK_TIMEOUT_SECONDS to wait for it."
        ) from exc
    try:
        yield
    finally:
        acquired.__exit__(None, None, None)


# ---------------------------------------------------------------- bua_run bookkeeping


def record_run(
    spec: RunSpec, status: str, started_at: dt.datetime, finished_at: dt.datetime | None = None
) -> None:
    """Upsert the run's ``bua_run`` row (keyed by the deterministic run_id)."""
    from tasks.adapters.prepare import upsert_run

    row = {
        "period_start": spec.period_start,
        "period_end": spec.period_end,
        "status": status,
        "started_at": started_at,
        "finished_at": finished_at,
        "parameters": spec.parameters(),
        "code_version": spec.code_version,
    }
    upsert_run(spec.settings.database_url, spec.run_id, spec.run_date, row)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


# ---------------------------------------------------------------- wiring phases as tasks


def _phase_task_body(
    spec: RunSpec, phase: str, inputs: dict[str, Any], shard: int | None = None
) -> PhaseResult:
    return execute_phase(spec, phase, shard)


def _source_body(spec: RunSpec, part: str) -> PhaseResult:
    """``database``: source tables + meter-store files outside shard folders; ``meter_store``: per shard."""
    # the database's counts only in the database part (they are its cost); the listing in both
    common, per_shard = source_fingerprint(spec.settings, tables=part == "database")
    if part == "database":
        return {"phase": part, "shard": None, "fingerprint": common, "seconds": 0.0, "stats": {}}
    return {
        "phase": part,
        "shard": None,
        "fingerprint": _sha([common, per_shard]),
        "common_fingerprint": common,
        "shard_fingerprints": per_shard,
        "seconds": 0.0,
        "stats": {},
    }


def failure_of(exc: BaseException) -> tuple[list[str], BaseException | None]:
    """The failing phase task runs (names only, never their messages) and the cause of a failed run."""
    if isinstance(exc, PhaseFailedError):
        return [f.split(" (", 1)[0] for f in exc.failed], exc.cause or exc
    return [], exc


class Phases:
    """Submits phases as Prefect tasks: ``once`` (one task run) or ``per_shard`` (``.map``).

    Upstream results are passed as futures, so a shard's next phase starts as soon as its own
    inputs are ready and a failed shard holds back only what depends on it.
    """

    def __init__(self, spec: RunSpec, refresh: bool = False) -> None:
        from prefect import task
        from prefect.cache_policies import NO_CACHE

        self.spec = spec
        self.futures: list[tuple[str, int | None, Any]] = []
        self.states: dict[str, str] = {}
        self._mapped: set[str] = set()
        storage = result_storage(spec.settings)
        self._task = task(
            _phase_task_body,
            name="phase",
            persist_result=True,
            result_storage=storage,
            cache_key_fn=phase_cache_key,
            refresh_cache=refresh,
            **retry_options(spec.settings),
        )
        self._source = task(
            _source_body,
            name="source-fingerprint",
            cache_policy=NO_CACHE,
            persist_result=False,
        )

    def has(self, phase: str) -> bool:
        """Whether the pipeline implements ``phase`` (validation, report and notify are optional)."""
        return pipeline_phase(self.spec.pipeline, phase) is not None

    def sources(self) -> tuple[Any, Any]:
        """Fingerprints of the billing database and of the meter store (per shard); never cached."""
        database = self._source.with_options(task_run_name="database-fingerprint").submit(
            self.spec, "database"
        )
        meter = self._source.with_options(task_run_name="meter-store-fingerprint").submit(
            self.spec, "meter_store"
        )
        self._track("database-fingerprint", [database])
        self._track("meter-store-fingerprint", [meter])
        return database, meter

    def future(self, phase: str) -> Any | None:
        """The future of an already submitted one-off ``phase`` (None if it was not submitted)."""
        return next((f for p, s, f in self.futures if p == phase and s is None), None)

    def once(self, phase: str, **inputs: Any) -> Any:
        t = self._task.with_options(name=phase, task_run_name=phase)
        future = t.submit(self.spec, phase, inputs, None)
        self._track(phase, [future])
        return future

    def per_shard(self, phase: str, **inputs: Any) -> list[Any]:
        from prefect import unmapped

        n = self.spec.shards
        per = [{k: (v[i] if isinstance(v, list) else v) for k, v in inputs.items()} for i in range(n)]
        t = self._task.with_options(name=phase, task_run_name=phase + "[{shard}]")
        futures = list(t.map(unmapped(self.spec), unmapped(phase), per, list(range(n))))
        self._mapped.add(phase)
        self._track(phase, futures)
        return futures

    def _track(self, phase: str, futures: list[Any]) -> None:
        from flows import progress

        progress.planned(phase, len(futures))
        for i, f in enumerate(futures):
            self.futures.append((phase, i if len(futures) > 1 or phase in self._mapped else None, f))
            f.add_done_callback(lambda fut, p=phase: progress.finished(p, _state_name(fut)))

    def wait(self) -> dict[str, Any]:
        """Wait for every task run; raise naming each failed phase/shard; return the results."""
        from prefect.futures import wait

        wait([f for _, _, f in self.futures])
        self.states = {
            (phase if shard is None else f"{phase}[{shard}]"): _state_name(f)
            for phase, shard, f in self.futures
        }
        failed: list[str] = []
        not_run: list[str] = []
        cause: BaseException | None = None
        results: dict[str, Any] = {}
        for phase, shard, f in self.futures:
            state = f.state
            where = phase if shard is None else f"{phase}[{shard}]"
            if state.is_completed():
                r = f.result()
                if shard is None:
                    results[phase] = r
                else:
                    results.setdefault(phase, []).append(r)
            elif state.is_failed() or state.is_crashed():
                msg = str(state.message or "").splitlines()[0][:300] if state.message else ""
                failed.append(f"{where} ({state.name}: {msg})")
                if cause is None:
                    exc = state.result(raise_on_failure=False)
                    cause = exc if isinstance(exc, BaseException) else None
            else:
                not_run.append(where)
        if failed or not_run:
            raise PhaseFailedError(failed, not_run, cause, self.states)
        results["task_run_states"] = self.states
        return results


class PhaseFailedError(BuaRunError):
    """Some phase task runs failed; ``cause`` is the first one's exception (e.g. DatabaseError)."""

    def __init__(
        self,
        failed: list[str],
        not_run: list[str],
        cause: BaseException | None = None,
        states: dict[str, str] | None = None,
    ) -> None:
        self.failed, self.not_run, self.cause, self.states = failed, not_run, cause, states or {}
        detail = "; ".join(failed) or "none failed outright"
        held = ", ".join(not_run[:20]) + (" …" if len(not_run) > 20 else "")
        super().__init__(
            f"bua_monthly failed in {detail}. Not run (upstream failed): {held or '-'}. "
            "Fix the cause and re-run the same run_date (or retry the flow run): finished phases are cached."
        )


def _state_name(future: Any) -> str:
    """The final state's name; ``wait(0)`` first so a just-finished future has its final state."""
    try:
        future.wait(0)
        return str(future.state.name)
    except Exception:  # noqa: BLE001 - progress must never break the run
        return "Unknown"
