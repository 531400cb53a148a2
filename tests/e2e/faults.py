"""The fault-injection contract the end-to-end tests use: a failure that can be switched off
between a failed flow run and its retry, without touching the deployment or the run.

Contract (what the flow must honour, issue 11/13):

    BUA_TEST_FAULT="phase" or "phase:shard"   that phase task (that shard of it) raises after its
                                              function ran, as a crash after a partial write would
    BUA_TEST_FAULT_SENTINEL=/path/to/file     ... but only while this file exists, checked when
                                              the phase runs (so removing it before a retry makes
                                              the retry succeed; the flow run and its job variables
                                              stay exactly as they were)

Both arrive in the flow-run process's environment (here: the flow run's job variables ``env``,
which the process worker puts over its own environment). Test hooks stay out of the production
Settings.

Until the flow reads these itself, ``fault_shim/sitecustomize.py`` bridges them to today's hook,
``BUA_FAIL_PHASE`` (Settings.fail_phase): put on the worker's PYTHONPATH (:func:`worker_env`), it
runs at the start of every Python process the worker starts and sets BUA_FAIL_PHASE from
BUA_TEST_FAULT while the sentinel exists (removes it otherwise). Each flow run, and each retry of
one, is a new process, so the sentinel is read when the (re)try starts — granular enough for these
tests (a retry is one process). Once the flow implements the contract, drop the shim: the tests do
not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FAULT_ENV = "BUA_TEST_FAULT"
SENTINEL_ENV = "BUA_TEST_FAULT_SENTINEL"
SHIM_DIR = Path(__file__).resolve().parent / "fault_shim"


@dataclass
class Fault:
    """A failure of ``target`` ("phase" or "phase:shard"), active while ``sentinel`` exists."""

    target: str
    sentinel: Path

    def env(self) -> dict[str, str]:
        """What the failing flow run's environment must hold (its job variables ``env``)."""
        return {FAULT_ENV: self.target, SENTINEL_ENV: str(self.sentinel)}

    def arm(self) -> None:
        self.sentinel.parent.mkdir(parents=True, exist_ok=True)
        self.sentinel.write_text(self.target)

    def disarm(self) -> None:
        self.sentinel.unlink(missing_ok=True)

    @property
    def armed(self) -> bool:
        return self.sentinel.exists()


def worker_env() -> dict[str, str]:
    """The worker's environment additions that make the contract work on today's flow (the shim)."""
    return {"PYTHONPATH": str(SHIM_DIR)}
