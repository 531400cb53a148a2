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

from tests.conftest import needs_mdff
from tests.ingest.helpers import NEM12_FILES, NEM13_FILES, nem13_reads
from tests.ingest.oracle import needs_oracle, nemreader1, nemreader1_intervals
from tests.ingest.test_conformance import NEMREADER_WRONG, ingested_intervals

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
    ours = ingested_intervals(path, tmp_path)
    theirs = nemreader1_intervals(found)
    assert ours.height == theirs.height > 0
    assert ours.equals(theirs)


@pytest.mark.parametrize("path", NEM13_FILES, ids=lambda p: p.name)
def test_nem13_equals_nemreader1(path: Path, oracle: dict[Path, pl.DataFrame | str]) -> None:
    found = oracle[path]
    assert not isinstance(found, str), f"nemreader 1.0 refused {path.name}: {found}"
    ours = nem13_reads(path)
    theirs = found.select(ours.columns)
    key = ["nmi", "suffix", "t_end"]
    assert ours.height == theirs.height > 0
    assert ours.sort(key).equals(theirs.sort(key))
