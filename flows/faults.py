"""Fault injection for tests of failure, resume and concurrency — outside the production Settings.

``BUA_TEST_FAULT=phase`` or ``phase:shard`` makes that phase's task fail after it has written its
outputs (the hardest case for a resume); with ``BUA_TEST_FAULT_SENTINEL=/path`` only while that file
exists, so a test can let the retry of the same flow run succeed by deleting the file.
``BUA_TEST_DELAY=phase:seconds`` holds that phase's task that long before it starts (a run that is
surely still running when a second one starts).
"""

from __future__ import annotations

import os
import time


class InjectedFault(RuntimeError):
    """The failure BUA_TEST_FAULT asked for."""


def check(phase: str, shard: int | None) -> None:
    target = os.environ.get("BUA_TEST_FAULT", "")
    if not target:
        return
    sentinel = os.environ.get("BUA_TEST_FAULT_SENTINEL")
    if sentinel and not os.path.exists(sentinel):
        return
    name, _, which = target.partition(":")
    if name == phase and (not which or (shard is not None and int(which) == shard)):
        where = "" if shard is None else f" shard {shard}"
        raise InjectedFault(f"injected failure in phase {phase}{where} (BUA_TEST_FAULT)")


def delay(phase: str) -> None:
    name, _, seconds = os.environ.get("BUA_TEST_DELAY", "").partition(":")
    if name == phase and seconds:
        time.sleep(float(seconds))
