"""The fault-injection contract the end-to-end tests use: a failure that can be switched off
between a failed flow run and its retry, without touching the deployment or the run.

The flow honours it in ``flows/faults.py`` (outside the production Settings):

    BUA_TEST_FAULT="phase" or "phase:shard"   that phase task (that shard of it) fails after it
                                              has written its outputs
    BUA_TEST_FAULT_SENTINEL=/path/to/file     ... only while this file exists, checked when the
                                              phase runs: removing it before a retry lets the retry
                                              of the same flow run succeed

Both reach the flow-run process through its environment: here the failing flow run's job
variables ``env``, which the process worker puts over its own environment. A retry keeps the run's
job variables; only the sentinel decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FAULT_ENV = "BUA_TEST_FAULT"
SENTINEL_ENV = "BUA_TEST_FAULT_SENTINEL"


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
