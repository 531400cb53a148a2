"""Conformance against nemreader 1.0.x, the oracle issue 15 moves to (tests/oracle/, its own Python).

The same comparison as test_conformance.py (which keeps nemreader 0.9.2, bua's own environment):
every NEM12 example file ingested into its own store and read back through the engine's reading
API equals nemreader 1.0.x's readings on NMI, suffix, interval start, value and quality flag; every
NEM13 file's reads equal its readings (times, quantity, start and end index, quality and method).
The file both versions get wrong is pinned in test_nemreader_exceptions.py.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tasks.adapters.meter_store import merge_register_days
from tasks.adapters.nem12 import decode, parse_nem12
from tasks.adapters.nem13 import parse_nem13
from tasks.settings import Settings
from tests.conftest import needs_mdff
from tests.ingest.helpers import NEM12_FILES, NEM13_FILES, member_bytes
from tests.ingest.oracle import needs_oracle, nemreader1, nemreader1_intervals
from tests.ingest.test_conformance import NEMREADER_WRONG, _store_intervals

pytestmark = [needs_mdff, needs_oracle]


@pytest.fixture(scope="module")
def oracle() -> dict[Path, pl.DataFrame | str]:
    """nemreader 1.0.x's answer for every example file, from one oracle process."""
    return nemreader1([*NEM12_FILES, *NEM13_FILES])


@pytest.mark.parametrize(
    "path", [p for p in NEM12_FILES if p.name not in NEMREADER_WRONG], ids=lambda p: p.name
)
def test_store_equals_nemreader1(path: Path, tmp_path: Path, oracle: dict[Path, pl.DataFrame | str]) -> None:
    found = oracle[path]
    assert not isinstance(found, str), f"nemreader 1.0 refused {path.name}: {found}"
    settings = Settings(meter_store=str(tmp_path / "store"), shards=1)
    name, data = member_bytes(path)
    merge_register_days(parse_nem12(decode(data), name), settings)
    ours = _store_intervals(settings)
    theirs = nemreader1_intervals(found)
    assert ours.height == theirs.height > 0
    assert ours.equals(theirs)


@pytest.mark.parametrize("path", NEM13_FILES, ids=lambda p: p.name)
def test_nem13_equals_nemreader1(path: Path, oracle: dict[Path, pl.DataFrame | str]) -> None:
    found = oracle[path]
    assert not isinstance(found, str), f"nemreader 1.0 refused {path.name}: {found}"
    name, data = member_bytes(path)
    ours = parse_nem13(decode(data), name).select(
        "nmi",
        "suffix",
        pl.col("previous_datetime").alias("t_start"),
        pl.col("current_datetime").alias("t_end"),
        pl.col("quantity").alias("value"),
        pl.col("current_quality").alias("quality"),
        pl.col("previous_read").alias("val_start"),
        pl.col("current_read").alias("val_end"),
    )
    theirs = found.select(ours.columns)
    key = ["nmi", "suffix", "t_end"]
    assert ours.height == theirs.height > 0
    assert ours.sort(key).equals(theirs.sort(key))
