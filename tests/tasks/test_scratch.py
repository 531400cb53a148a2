"""Local scratch folders (spilled slices of prepare and export, connectorx's hand-over files, S3
uploads) are named after their process, and a run sweeps those of processes that no longer run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tasks.adapters import storage


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid  # ended and reaped: os.kill(pid, 0) finds no such process


def test_scratch_dir_is_named_after_this_process_and_removed_after_use(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with storage.scratch_dir("export") as folder:
        assert Path(folder).name.startswith(f"bua-export-{os.getpid()}-")
        (Path(folder) / "slice.arrow").write_bytes(b"x")
    assert not list(tmp_path.iterdir())


def test_sweep_removes_only_what_dead_processes_left(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    (tmp_path / f"bua-prepare-{dead}-abc" / "invoice_line_item_monthly").mkdir(parents=True)
    (tmp_path / f"bua-prepare-{dead}-abc" / "invoice_line_item_monthly" / "000000-000000.arrow").write_bytes(
        b"x"
    )
    (tmp_path / f"bua-upload-{dead}-xyz.tmp").write_bytes(b"half an upload")
    (tmp_path / f"bua-export-{alive}-def").mkdir()  # a run in progress (this process)
    (tmp_path / f"bua-read-{dead}").mkdir()  # not a scratch name (no "-" after the pid): left
    (tmp_path / "bua-prepare-abc").mkdir()  # an older unnamed one: not ours to judge, left
    (tmp_path / "other").mkdir()
    removed = storage.sweep_scratch(str(tmp_path))
    assert sorted(Path(r).name for r in removed) == [f"bua-prepare-{dead}-abc", f"bua-upload-{dead}-xyz.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"bua-export-{alive}-def", f"bua-read-{dead}", "bua-prepare-abc", "other"]
    )
    assert storage.sweep_scratch(str(tmp_path)) == []  # nothing more to remove
    assert storage.sweep_scratch(str(tmp_path / "missing")) == []
