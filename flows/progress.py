"""A rich progress display of ``bua_monthly``'s phases in the CLI.

The flow reports each phase's planned task runs and each finished one (from the futures' done
callbacks, in the flow's process, so it works the same with threads and Dask). Nothing listens
unless a CLI command opens :func:`display`; in a deployment the reports go nowhere and Prefect's
UI shows the task states instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
