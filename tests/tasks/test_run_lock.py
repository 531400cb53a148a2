"""The run lock in the billing database (tasks/adapters/run_lock.py) on SQLite, MariaDB and PostgreSQL:
one holder at a time, a refused second run names the holder, a dead holder's lease expires and the
next run takes over (and learns whose attempt it took over), a stalled holder learns it lost."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from tasks.adapters.db import engine_for, init_db
from tasks.adapters.run_lock import RunLocked, release, renew, run_lock, try_acquire


def test_one_holder_at_a_time_then_free_again(db_url):
    init_db(db_url)
    first = try_acquire(db_url, "run-2026-11-01", "attempt-a", 60)
    assert first is not None and first.took_over_attempt is None
    assert try_acquire(db_url, "run-2026-11-01", "attempt-b", 60) is None  # live lease
    assert try_acquire(db_url, "run-2026-12-01", "attempt-b", 60) is not None  # another run date
    release(db_url, first)
    again = try_acquire(db_url, "run-2026-11-01", "attempt-c", 60)
    assert again is not None and again.took_over_attempt is None  # released: a fresh row


def test_a_dead_holders_lease_expires_and_the_next_run_takes_over(db_url):
    init_db(db_url)
    dead = try_acquire(db_url, "run-2026-11-01", "attempt-dead", 2)  # never renewed: "killed"
    assert dead is not None
    assert try_acquire(db_url, "run-2026-11-01", "attempt-new", 60) is None
    time.sleep(3.1)  # the 2 s lease (whole seconds in the table) has expired
    taken = try_acquire(db_url, "run-2026-11-01", "attempt-new", 60)
    assert taken is not None and taken.took_over_attempt == "attempt-dead"
    assert renew(db_url, dead, 60) is False  # the dead holder, if it woke up, learns it lost


def test_run_lock_refuses_naming_the_holder_and_waits_when_asked(db_url):
    init_db(db_url)
    with run_lock(db_url, "run-2026-11-01", "attempt-a", lease_seconds=30):
        with pytest.raises(RunLocked, match=r"run-2026-11-01 is held by attempt attempt- on .*refusing"):
            with run_lock(db_url, "run-2026-11-01", "attempt-b", lease_seconds=30):
                pass
    released = threading.Event()

    def hold() -> None:
        with run_lock(db_url, "run-2026-11-01", "attempt-c", lease_seconds=30):
            released.wait(1.5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.5)
    started = time.monotonic()
    released.set()
    with run_lock(db_url, "run-2026-11-01", "attempt-d", lease_seconds=30, wait_seconds=20):
        waited = time.monotonic() - started
    holder.join()
    assert waited < 20  # got it once the first holder released, without waiting the whole 20 s


def test_the_heartbeat_keeps_a_short_lease_alive(db_url):
    init_db(db_url)
    with run_lock(db_url, "run-2026-11-01", "attempt-a", lease_seconds=2) as (taken, beat):
        time.sleep(4.5)  # more than twice the lease: only the heartbeat keeps it
        assert try_acquire(db_url, "run-2026-11-01", "attempt-b", 60) is None
        assert not beat.lost.is_set()
    with engine_for(db_url).connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM bua_run_lock")).scalar() == 0


def test_expiry_is_compared_in_utc(db_url):
    init_db(db_url)
    taken = try_acquire(db_url, "run-2026-11-01", "attempt-a", 60)
    with engine_for(db_url).connect() as conn:
        expires = conn.execute(sa.text("SELECT expires_at FROM bua_run_lock")).scalar()
    if isinstance(expires, str):  # SQLite
        expires = dt.datetime.fromisoformat(expires)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert dt.timedelta(seconds=55) < expires - now <= dt.timedelta(seconds=61)
    assert taken is not None
