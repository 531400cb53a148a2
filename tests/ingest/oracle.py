"""nemreader 1.0.x as a conformance oracle, run in its own environment (tests/oracle/).

nemreader 1.0.x requires Python >= 3.12 and bua runs on 3.11, so the oracle is another
interpreter: ``BUA_ORACLE_PYTHON``, else the repository's ``.venv-oracle`` (``./dev setup`` makes
it when a Python >= 3.12 is on the machine). Without one, the tests that need it skip and say so.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "oracle" / "nemreader1.py"


def oracle_python() -> Path | None:
    """The oracle's interpreter, if it is there and has nemreader 1.0.x."""
    named = os.environ.get("BUA_ORACLE_PYTHON")
    exe = Path(named) if named else REPO / ".venv-oracle" / "bin" / "python"
    if not exe.is_file():
        return None
    probe = subprocess.run(
        [str(exe), "-c", "import nemreader.version as v; print(v.__version__)"],
        capture_output=True,
        text=True,
    )
    return exe if probe.returncode == 0 and probe.stdout.startswith("1.0") else None


ORACLE = oracle_python()
needs_oracle = pytest.mark.skipif(
    ORACLE is None,
    reason="no nemreader 1.0.x oracle (needs Python >= 3.12: `./dev setup` makes .venv-oracle when one is "
    "on PATH or under pyenv; or set BUA_ORACLE_PYTHON)",
)


def nemreader1(paths: list[Path]) -> dict[Path, pl.DataFrame | str]:
    """nemreader 1.0.x's readings of each file (one oracle process for all), or its error text:
    nmi, suffix, t_start, t_end, value, quality (flag and method, e.g. 'E24'), val_start, val_end."""
    assert ORACLE is not None
    with tempfile.TemporaryDirectory(prefix="bua-oracle-") as tmp:
        jobs = [{"path": str(p), "out": f"{tmp}/{i}.parquet"} for i, p in enumerate(paths)]
        Path(tmp, "jobs.json").write_text(json.dumps(jobs))
        subprocess.run([str(ORACLE), str(SCRIPT), f"{tmp}/jobs.json"], check=True, capture_output=True)
        out: dict[Path, pl.DataFrame | str] = {}
        for p, job in zip(paths, jobs, strict=True):
            err = Path(job["out"] + ".error")
            out[p] = err.read_text() if err.exists() else pl.read_parquet(job["out"])
        return out


def nemreader1_intervals(found: pl.DataFrame) -> pl.DataFrame:
    """The oracle's interval readings as the 0.9 helper shapes them: nmi, suffix, t_start, value,
    quality (the flag only), sorted."""
    return found.select("nmi", "suffix", "t_start", "value", pl.col("quality").str.slice(0, 1)).sort(
        "nmi", "suffix", "t_start"
    )
