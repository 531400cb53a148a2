"""The run lock: one month-end run per run date at a time, held where every run meets — the billing
database — so it spans processes, machines and Prefect servers (two operators, cron plus a manual
run, ECS tasks).

A lock is a row of ``bua_run_lock`` (name ``run-{run_date}``) with a lease: the holder renews
``expires_at`` every ``lease / 4`` seconds from a heartbeat thread. A holder that dies (``kill -9``,
a lost ECS task) stops renewing; once its lease has expired the next run takes the row over and is
told which run it took over from, so that run can be recorded FAILED. Taking or renewing is one
conditional UPDATE (or an INSERT when there is no row), atomic on SQLite, MariaDB and PostgreSQL.
Times are UTC from the application's clock (hosts are NTP-synchronised; the lease is minutes, the
skew milliseconds).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from sql.schema import metadata
from tasks.adapters.db import engine_for, require_tables

log = logging.getLogger("bua.lock")


class RunLocked(RuntimeError):
    """Another live run holds the lock."""


class LockLost(RuntimeError):
    """This run's lease was taken over (it could not renew in time): it must not publish."""


@dataclass(frozen=True)
class Taken:
    """A held lock: its token, and the attempt it took over from (a dead holder), if any."""

    name: str
    token: str
    took_over_attempt: str | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def try_acquire(url: str, name: str, attempt_id: str, lease_seconds: float) -> Taken | None:
    """Take the lock if it is free or its lease has expired; None when a live run holds it."""
    tbl = metadata.tables["bua_run_lock"]
    token = uuid.uuid4().hex
    now = _now()
    values = {
        "token": token,
        "attempt_id": attempt_id,
        "holder": holder(),
        "acquired_at": now,
        "heartbeat_at": now,
        "expires_at": now + dt.timedelta(seconds=lease_seconds),
    }
    engine = engine_for(url)
    with engine.begin() as conn:
        row = conn.execute(sa.select(tbl.c.attempt_id, tbl.c.expires_at).where(tbl.c.name == name)).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(tbl.insert(), [{"name": name, **values}])
                return Taken(name, token, None)
            except sa.exc.IntegrityError:
                return None  # another run inserted it first
        previous_attempt, _ = row
        took = conn.execute(
            tbl.update().where((tbl.c.name == name) & (tbl.c.expires_at < now)).values(**values)
        ).rowcount
    if took != 1:
        return None
    return Taken(name, token, previous_attempt)


def renew(url: str, taken: Taken, lease_seconds: float) -> bool:
    """Extend the lease; False when the row is no longer ours (taken over after we stalled)."""
    tbl = metadata.tables["bua_run_lock"]
    now = _now()
    with engine_for(url).begin() as conn:
        n = conn.execute(
            tbl.update()
            .where((tbl.c.name == taken.name) & (tbl.c.token == taken.token))
            .values(heartbeat_at=now, expires_at=now + dt.timedelta(seconds=lease_seconds))
        ).rowcount
    return n == 1


def release(url: str, taken: Taken) -> None:
    tbl = metadata.tables["bua_run_lock"]
    with engine_for(url).begin() as conn:
        conn.execute(tbl.delete().where((tbl.c.name == taken.name) & (tbl.c.token == taken.token)))


def current(url: str, name: str) -> dict | None:
    """The lock row (holder, run, expiry) or None: what a refused run tells the operator."""
    tbl = metadata.tables["bua_run_lock"]
    with engine_for(url).connect() as conn:
        row = conn.execute(sa.select(tbl).where(tbl.c.name == name)).mappings().first()
    return dict(row) if row else None


class Heartbeat:
    """Renews a held lease every ``lease / 4`` seconds until stopped; records a lost lease."""

    def __init__(self, url: str, taken: Taken, lease_seconds: float) -> None:
        self.url, self.taken, self.lease = url, taken, lease_seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bua-lock-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(max(self.lease / 4, 0.5)):
            try:
                if not renew(self.url, self.taken, self.lease):
                    self.lost.set()
                    log.error("run lock %s was taken over by another run", self.taken.name)
                    return
            except Exception as exc:  # noqa: BLE001 - a database blip: retry at the next beat
                log.warning("run lock heartbeat failed (%s); retrying", type(exc).__name__)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@contextmanager
def run_lock(
    url: str, name: str, attempt_id: str, lease_seconds: float = 120.0, wait_seconds: float = 0.0
) -> Iterator[tuple[Taken, Heartbeat]]:
    """Hold the lock ``name`` for the block (waiting up to ``wait_seconds`` for a live holder), with a
    heartbeat; raise :class:`RunLocked` when it stays held."""
    require_tables(url, ("bua_run_lock",))
    deadline = time.monotonic() + wait_seconds
    while (taken := try_acquire(url, name, attempt_id, lease_seconds)) is None:
        if time.monotonic() >= deadline:
            row = current(url, name) or {}
            raise RunLocked(
                f"{name} is held by attempt {str(row.get('attempt_id', '?'))[:8]} on {row.get('holder', '?')} "
                f"(lease until {row.get('expires_at', '?')} UTC): refusing to interleave writes. Wait for "
                f"it to finish, or set BUA_RUN_LOCK_WAIT_SECONDS to wait; a dead run's lease expires "
                f"within {lease_seconds:.0f} s."
            )
        time.sleep(min(2.0, max(0.2, lease_seconds / 10)))
    try:
        with Heartbeat(url, taken, lease_seconds) as beat:
            yield taken, beat
    finally:
        try:
            release(url, taken)
        except Exception as exc:  # noqa: BLE001 - the lease expires anyway
            log.warning("run lock %s not released (%s); its lease expires", name, type(exc).__name__)
