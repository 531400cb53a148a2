"""Conformance: what the meter store returns equals nemreader's readings, file by file.

Each example file is ingested into its own store (files reuse NMIs and days, so one shared store
would rightly keep only the latest copy); the store is read back through the engine's reading
API (``scan_interval`` + ``explode_intervals``) and compared with ``nemreader`` on NMI, suffix,
interval start, value and quality flag. The one file where they differ is pinned separately in
test_nemreader_exceptions.py and listed in docs/NEM12-CONFORMANCE.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import pytest

from tasks.adapters.meter_store import explode_intervals, merge_register_days, scan_interval
from tasks.adapters.nem12 import MdffError, decode, parse_nem12
from tasks.settings import Settings
from tests.conftest import MDFF, needs_mdff
from tests.ingest.helpers import NEM12_FILES, NEM13_FILES, member_bytes, nem13_reads, nemreader_intervals

pytestmark = needs_mdff  # every test here reads the shared MDFF examples

NEMREADER_WRONG = {"NEM12#Scenario10#ETSAMDP#NEMMCO.zip"}  # see test_nemreader_exceptions.py


def _store_intervals(settings: Settings) -> pl.DataFrame:
    frames = [explode_intervals(scan_interval(settings, shard)).collect() for shard in range(settings.shards)]
    out = pl.concat(frames).select(
        "nmi", "suffix", pl.col("interval_start").alias("t_start"), "value", "quality"
    )
    return out.sort("nmi", "suffix", "t_start")


def ingested_intervals(path: Path, folder: Path) -> pl.DataFrame:
    """An example NEM12 file ingested into its own one-shard store under ``folder``, read back."""
    settings = Settings(meter_store=str(folder / "store"), shards=1)
    name, data = member_bytes(path)
    merge_register_days(parse_nem12(decode(data), name), settings)
    return _store_intervals(settings)


def test_the_example_set_is_all_there() -> None:
    # nem12/: 94 zips, unzipped/: 9 NEM12 + Western Power, 2 root zips; nem13/: 61 + 2 unzipped
    assert len(NEM12_FILES) == 94 + 10 + 2
    assert len(NEM13_FILES) == 61 + 2


@pytest.mark.parametrize(
    "path", [p for p in NEM12_FILES if p.name not in NEMREADER_WRONG], ids=lambda p: p.name
)
def test_store_equals_nemreader(path: Path, tmp_path: Path) -> None:
    ours = ingested_intervals(path, tmp_path)
    theirs = nemreader_intervals(path)
    assert ours.height == theirs.height > 0
    assert ours.equals(theirs)


@pytest.mark.parametrize("path", NEM13_FILES, ids=lambda p: p.name)
def test_nem13_equals_nemreader(path: Path) -> None:
    from nemreader import NEMFile

    logging.getLogger("nemreader").setLevel(logging.CRITICAL)
    ours = nem13_reads(path)
    nd = NEMFile(str(path)).nem_data()
    rows = [
        (nmi, sfx, r.t_start, r.t_end, r.read_value, r.val_start, r.val_end, r.quality_method)
        for nmi, by_suffix in nd.readings.items()
        for sfx, reads in by_suffix.items()
        for r in reads
    ]
    theirs = pl.DataFrame(rows, schema=ours.schema, orient="row")
    key = ["nmi", "suffix", "t_end"]
    assert ours.height == theirs.height > 0
    assert ours.sort(key).equals(theirs.sort(key))


def _every_example() -> list[tuple[str, bytes]]:
    """Every file (each member of a zip) under the example set, valid or not, NEM12 or NEM13."""
    import zipfile

    found: list[tuple[str, bytes]] = []
    for path in sorted(p for p in MDFF.rglob("*") if p.is_file() and p.suffix != ".md"):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                found += [(f"{path.name}!{m}", z.read(m)) for m in z.namelist() if not m.endswith("/")]
        else:
            found.append((path.name, path.read_bytes()))
    return found


def _outcome(data: str | bytes, name: str) -> pl.DataFrame | list[tuple[int, str]]:
    try:
        return parse_nem12(data, name)
    except MdffError as exc:
        return exc.problems


@pytest.mark.parametrize(
    "blob",
    [
        *_every_example(),
        ("crlf-and-blank-lines.csv", b"\xef\xbb\xbf100,NEM12,200401011200,A,B\r\n\r\n  \r\n900\r\n\r\n"),
        ("latin-1.csv", b"100,NEM12,200401011200,A,B\n200,NMI\xe9,E1,1,E1,,M,KWH,30,\n900\n"),
        ("cr-inside.csv", b"100,NEM12\r900\n"),
    ],
    ids=lambda b: b[0],
)
def test_bytes_read_like_text(blob: tuple[str, bytes]) -> None:
    """Ingest hands the reader a file's bytes (read by polars' CSV reader, or decoded when they are
    not UTF-8); the conformance tests hand it the decoded text. Both give the same rows or the same
    problems, on every example file and on BOM / CR LF / blank-line / Latin-1 / lone-CR files."""
    name, data = blob
    from_bytes, from_text = _outcome(data, name), _outcome(decode(data), name)
    if isinstance(from_text, pl.DataFrame):
        assert isinstance(from_bytes, pl.DataFrame) and from_bytes.equals(from_text)
    else:
        assert from_bytes == from_text and from_text
