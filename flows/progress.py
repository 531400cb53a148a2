"""A rich progress display of ``bua_monthly``'s phases in the CLI.

The flow reports each phase's planned task runs and each finished one (from the futures' done
callbacks, in the flow's process, so it works the same with threads and Dask). Nothing listens
unless a CLI command opens :func:`display`; in a deployment the reports go nowhere and Prefect's
UI shows the task states instead.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Listener = Callable[[str, str, int], None]  # (event, phase, count)

_listeners: list[Listener] = []
_lock = threading.Lock()


def planned(phase: str, total: int) -> None:
    """``phase`` will run ``total`` task runs (1, or one per shard)."""
    _emit("planned", phase, total)


def finished(phase: str, state_name: str) -> None:
    """One task run of ``phase`` reached a final state (Completed, Cached, Failed …)."""
    _emit(state_name, phase, 1)


def _emit(event: str, phase: str, count: int) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(event, phase, count)


@contextmanager
def listen(listener: Listener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


@contextmanager
def display(console: object | None = None) -> Iterator[None]:
    """Show one bar per phase (done/total, cached count) while the block runs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,  # type: ignore[arg-type]
        transient=False,
    )
    bars: dict[str, int] = {}
    notes: dict[str, dict[str, int]] = {}

    def on_event(event: str, phase: str, count: int) -> None:
        if event == "planned":
            bars[phase] = progress.add_task(phase, total=count, note="")
            notes[phase] = {}
            return
        if phase not in bars:
            return
        tally = notes[phase]
        tally[event] = tally.get(event, 0) + count
        note = " ".join(f"{k.lower()} {v}" for k, v in sorted(tally.items()))
        progress.update(bars[phase], advance=count, note=note)

    with progress, listen(on_event):
        yield


def run_from_cli(
    settings: object,
    run_date: object,
    period_start: object = None,
    period_end: object = None,
    basic_method: str | None = None,
) -> object:
    """``bua run``: the ``bua_monthly`` flow with a progress display; returns the engine's RunResult.

    Where Prefect's local server cannot start (Prefect 3.8.8's server does not import under
    FastAPI >= 0.143; see docs/ORCHESTRATION.md) and no PREFECT_API_URL is set, it says so and runs
    the same phases sequentially with ``tasks.pipeline.accrual.run_accrual`` instead of failing.
    """
    import logging

    from rich.console import Console

    from flows import glue
    from tasks.pipeline.accrual import RunResult

    console = Console(stderr=True)
    problem = prefect_server_problem()
    if problem:
        console.print(f"[yellow]warning:[/] {problem}; running the phases sequentially without Prefect")
        return run_sequential(settings, run_date, period_start, period_end, basic_method, console)

    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as STARTUP
    from prefect.settings import temporary_settings

    from flows.monthly import bua_monthly

    quiet = logging.getLogger("prefect")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the progress bars say what the per-task INFO lines would
    # Without PREFECT_API_URL Prefect starts a local server; its first start (creating its
    # database) takes ~25 s on this class of machine, longer than Prefect's default 20 s.
    startup = {STARTUP: max(STARTUP.value(), 180)}
    try:
        with temporary_settings(startup), glue.use_settings(settings), display(console):  # type: ignore[arg-type]
            report = bua_monthly(
                run_date=run_date, period_start=period_start, period_end=period_end, basic_method=basic_method
            )
    except glue.PhaseFailedError as exc:
        from tasks.adapters.db import DatabaseError
        from tasks.adapters.meter_store import MeterStoreError

        # the engine's own clear errors (missing table, unreachable database) as the CLI knows them
        raise (exc.cause if isinstance(exc.cause, DatabaseError | MeterStoreError) else exc) from None
    finally:
        quiet.setLevel(level)
    day = dt.date.fromisoformat
    return RunResult(
        run_id=report["run_id"],
        run_date=day(report["run_date"]),
        period_start=day(report["period_start"]),
        period_end=day(report["period_end"]),
        basic_method=report["basic_method"],
        status="COMPLETED",
        seconds=report["seconds"],
        counts=report["counts"],
        exceptions_by_code=report["exceptions_by_code"],
        accrual_summary=report["accrual_summary"],
        exports=report["exports"],
        nem12_files=report["nem12_files"],
    )


def run_sequential(
    settings: Any,
    run_date: dt.date,
    period_start: dt.date | None,
    period_end: dt.date | None,
    basic_method: str | None,
    console: Any,
) -> Any:
    """``run_accrual`` with the Slack messages the flow sends: started, and failed naming the phase
    (the phase after the last one that finished); and finished, with the totals the ``notify`` phase composes."""
    from tasks.pipeline import notify
    from tasks.pipeline.accrual import PHASES, RunContext, run_accrual

    ctx = RunContext.create(settings, run_date, period_start, period_end, basic_method)
    done: list[str] = []

    def progress(phase: str, seconds: float) -> None:
        done.append(phase)
        console.log(f"{phase:<20} {seconds:7.2f} s")

    notify.notify_started(ctx)
    try:
        result = run_accrual(settings, run_date, period_start, period_end, basic_method, progress=progress)
    except Exception as exc:
        names = [name for name, _, _ in PHASES]
        failing = names[len(done)] if len(done) < len(names) else "after the last phase"
        notify.notify_failed(ctx, [failing], exc)
        raise
    notify.notify_finished(ctx, result.notify_message)  # the notify phase composed it; the runner posts
    return result


def prefect_server_problem() -> str | None:
    """Why a local Prefect server could not start here, or None (also None when an API is set)."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None
    try:
        import prefect.server.api.server  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        return f"Prefect's local server cannot start ({type(exc).__name__}: {str(exc)[:120]})"
    return None
