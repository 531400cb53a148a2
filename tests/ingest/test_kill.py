"""A `bua ingest nem12` killed with SIGKILL mid-write: the next ingest cleans up and finishes the job.

The subprocess runs with ``BUA_TEST_PAUSE_BEFORE_RENAME=data.parquet:120:N`` (tasks/adapters/storage.py):
the (N+1)-th and later partition writes stop with their temporary file written and not yet
renamed, and when the first says so on stderr the test kills the process — a real ``kill -9``, no
handler runs. The rerun (no hook)
must leave the store file for file equal to one uninterrupted ingest, with no ``.tmp`` and no
staging runs left.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

BUA = Path(sys.executable).parent / "bua"
NMIS = 40
MONTHS = {"2024-01": 31, "2024-02": 29, "2024-03": 31}


def _write_inputs(folder: Path) -> None:
    """Three NEM12 files, each of a third of the NMIs over all MONTHS (48 half-hours a day; value =
    NMI number / 10 + interval / 100, so every partition's bytes differ). File 1 creates every
    partition; files 2 and 3 add to partitions already in the store, so their rows wait as sorted
    runs in ``_staging/`` and each partition is merged once at the end: partition writes 1-12 (about)
    are file 1's, the later ones the final merges."""
    folder.mkdir()
    for k in range(3):
        lines = ["100,NEM12,202404010000,MDP1,RET1"]
        for n in range(k, NMIS, 3):
            lines.append(f"200,NMI{n:07d},E1,1,E1,N1,M{n},kWh,30,")
            values = ",".join(f"{n / 10 + i / 100:.3f}" for i in range(48))
            for month, days in MONTHS.items():
                for d in range(1, days + 1):
                    lines.append(f"300,{month.replace('-', '')}{d:02d},{values},A,,,20240401000000,")
        lines.append("900")
        (folder / f"nem12_{k}.csv").write_text("\n".join(lines) + "\n")


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
@pytest.mark.parametrize(
    ("after", "whole", "staged"),
    [(3, 3, False), (16, 12, True)],
    ids=["during-first-partition-writes", "during-final-merges-with-runs-staged"],
)
def test_kill_9_mid_ingest_then_rerun_equals_an_uninterrupted_ingest(
    after: int, whole: int, staged: bool, tmp_path: Path
) -> None:
    """Killed at the 4th partition write (3 whole, 9 not yet written), or at the 17th (the 12
    partitions of file 1 whole, files 2-3 waiting as runs, 4 merges done)."""
    inputs = tmp_path / "in"
    _write_inputs(inputs)
    clean = _ingest(inputs, tmp_path / "clean", tmp_path / "out-clean")
    assert clean.returncode == 0, clean.stderr
    assert len(list((tmp_path / "clean").rglob("data.parquet"))) == 12  # 4 shards x 3 months
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [str(BUA), "ingest", "nem12", "--batch-readings", "20000", str(inputs)],
        env=_env(store, tmp_path / "out", BUA_TEST_PAUSE_BEFORE_RENAME=f"data.parquet:120:{after}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # ends (EOF) if the ingest finishes without pausing
            if line.startswith("BUA_TEST_PAUSE_BEFORE_RENAME: holding"):
                break
        else:
            pytest.fail(f"the ingest ended (exit {proc.wait()}) before its paused write")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(store.rglob(".data.parquet.*.tmp")), "the kill left no temporary file: not mid-write"
    assert len(list(store.rglob("data.parquet"))) == whole
    assert any((store / "_staging").rglob("run-*.arrow")) == staged

    rerun = _ingest(inputs, store, tmp_path / "out")
    assert rerun.returncode == 0, rerun.stderr
    assert not list(store.rglob("*.tmp")) and not (store / "_staging").exists()
    assert _digests(store) == _digests(tmp_path / "clean")
