"""run_accrual's per-shard phases on ``max_workers`` threads (tasks/sequential.py ``_per_shard``)."""

from __future__ import annotations

import threading
import time

import pytest

from tasks.sequential import _per_shard
from tasks.settings import Settings


def _settings(shards: int, workers: int) -> Settings:
    return Settings(shards=shards, max_workers=workers)


def test_results_come_back_in_shard_order_from_two_threads() -> None:
    # shard s sleeps (8 - s) ms, so later shards finish first; the results must still be in
    # shard order 0..7, each the value the function computed for its shard (s * 10)
    threads: set[str] = set()

    def fn(ctx: object, shard: int) -> int:
        threads.add(threading.current_thread().name)
        time.sleep((8 - shard) / 1000)
        return shard * 10

    assert _per_shard(fn, None, _settings(8, 2)) == [0, 10, 20, 30, 40, 50, 60, 70]
    assert len(threads) == 2 and all(t.startswith("bua-shard") for t in threads)


def test_one_worker_runs_in_the_calling_thread() -> None:
    caller = threading.current_thread().name
    seen: list[tuple[int, str]] = []

    def fn(ctx: object, shard: int) -> None:
        seen.append((shard, threading.current_thread().name))

    _per_shard(fn, None, _settings(3, 1))
    assert seen == [(0, caller), (1, caller), (2, caller)]


def test_a_failing_shard_fails_the_phase_with_its_own_exception() -> None:
    def fn(ctx: object, shard: int) -> int:
        if shard == 3:
            raise ValueError("shard 3 is broken")
        return shard

    with pytest.raises(ValueError, match="shard 3 is broken"):
        _per_shard(fn, None, _settings(6, 2))
