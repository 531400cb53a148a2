"""Same arguments → byte-identical files; another seed → different data."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tasks.generate import generate
from tasks.generate.run import iter_files


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in iter_files(root)}


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, accounts=150, seed=11, months=4)
    generate(b, accounts=150, seed=11, months=4, workers=1)  # thread count must not matter
    generate(c, accounts=150, seed=12, months=4)
    da, db, dc = _digests(a), _digests(b), _digests(c)
    # every kind of output is there: 18 tables, NEM12 (two deliveries), NEM13, truth, manifest
    assert len([k for k in da if k.startswith("db/")]) == 18
    assert any(k.startswith("nem12/") and k.endswith("_2.csv") for k in da)
    assert any(k.startswith("nem13/") for k in da)
    assert "truth/register_day.parquet" in da and "manifest.json" in da
    assert da == db
    assert da["truth/register_day.parquet"] != dc["truth/register_day.parquet"]
    assert da["db/account.parquet"] != dc["db/account.parquet"]
