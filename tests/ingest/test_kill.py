"""A `bua ingest nem12` killed with SIGKILL mid-write: the next ingest cleans up and finishes the job.

The subprocess runs with ``BUA_TEST_PAUSE_BEFORE_RENAME=data.parquet:120:3`` (tasks/adapters/storage.py):
the 4th and later partition writes stop with their temporary file written and not yet renamed,
and the test kills the process there — a real ``kill -9``, no handler runs. The rerun (no hook)
must leave the store file for file equal to one uninterrupted ingest, with no ``.tmp`` and no
staging runs left.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BUA = Path(sys.executable).parent / "bua"
NMIS = 40
MONTHS = {"2024-01": 31, "2024-02": 29, "2024-03": 31}


def _write_inputs(folder: Path) -> None:
    """One NEM12 file per month, NMIS NMIs x the month's days x 48 half-hours (value = NMI number
    / 10 + interval / 100, so every partition's bytes differ)."""
    folder.mkdir()
    for month, days in MONTHS.items():
        lines = ["100,NEM12,202404010000,MDP1,RET1"]
        for n in range(NMIS):
            lines.append(f"200,NMI{n:07d},E1,1,E1,N1,M{n},kWh,30,")
            values = ",".join(f"{n / 10 + i / 100:.3f}" for i in range(48))
            for d in range(1, days + 1):
                lines.append(f"300,{month.replace('-', '')}{d:02d},{values},A,,,20240401000000,")
        lines.append("900")
        (folder / f"nem12_{month}.csv").write_text("\n".join(lines) + "\n")


def _env(store: Path, out: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUA_")}
    env.update(BUA_METER_STORE=str(store), BUA_OUTPUT_URL=str(out), BUA_SHARDS="4", **extra)
    return env


def _ingest(folder: Path, store: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUA), "ingest", "nem12", "--batch-readings", "20000", str(folder)],
        env=_env(store, out),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _digests(store: Path) -> dict[str, str]:
    """Every file under the store (hidden ones too) by relative path: its SHA-256."""
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun_equals_an_uninterrupted_ingest(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    _write_inputs(inputs)
    clean = _ingest(inputs, tmp_path / "clean", tmp_path / "out-clean")
    assert clean.returncode == 0, clean.stderr
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [str(BUA), "ingest", "nem12", "--batch-readings", "20000", str(inputs)],
        env=_env(store, tmp_path / "out", BUA_TEST_PAUSE_BEFORE_RENAME="data.parquet:120:3"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(store.rglob(".data.parquet.*.tmp")):
            assert proc.poll() is None, "the ingest ended before it reached the paused write"
            assert time.monotonic() < deadline, "no paused partition write within 120 s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = list(store.rglob(".data.parquet.*.tmp"))
    assert left, "the kill left no temporary file: the test did not kill mid-write"
    written = list(store.rglob("data.parquet"))
    assert 3 <= len(written) < len(_digests(tmp_path / "clean"))  # some partitions whole, not all

    rerun = _ingest(inputs, store, tmp_path / "out")
    assert rerun.returncode == 0, rerun.stderr
    assert not list(store.rglob("*.tmp")) and not (store / "_staging").exists()
    assert _digests(store) == _digests(tmp_path / "clean")
