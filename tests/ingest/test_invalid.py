"""Every file in mdff-examples/invalid: rejected with the line and reason, or accepted if valid.

The expected reasons can be checked by opening the file: e.g. Example_NEM12_15min_200_30min_300
has ``IntervalLength`` 15 on line 2 (``200,...,kWh,15,``) and 48 values on line 3.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tasks.adapters.ingest import ingest_nem12
from tasks.adapters.nem12 import MdffError, decode, parse_nem12
from tasks.settings import Settings
from tests.conftest import MDFF, needs_mdff
from tests.ingest.helpers import INVALID, member_bytes

REJECTED = {
    "Example_NEM12_15min_200_30min_300.csv": (
        3,
        "300 record has 48 interval values; IntervalLength 15 of its 200 record (line 2) needs 96",
    ),
    "Example_NEM12_15min_200_30min_400.csv": (
        5,
        "400 records of this day end at interval 48; they must cover 1-96 exactly",
    ),
    "Example_NEM12_30min_200_15min_300.csv": (
        3,
        "300 record has 96 interval values; IntervalLength 30 of its 200 record (line 2) needs 48",
    ),
    "Example_NEM12_30min_200_15min_400.csv": (
        3,
        "300 record has 96 interval values; IntervalLength 30 of its 200 record (line 2) needs 48",
    ),
    "Example_NEM12_incomplete_interval.csv": (
        3,
        "300 record has 0 interval values; IntervalLength 30 of its 200 record (line 2) needs 48",
    ),
    "Example_NEM12_missing_header.csv": (2, "missing 100 header record (first record is '200')"),
    # Powercor portal exports: a blank first line, no 100 record, two files concatenated
    "Example_NEM12_powercor.csv": (2, "missing 100 header record (first record is '200')"),
    "Example_NEM12_powercor.csv.zip": (2, "missing 100 header record (first record is '200')"),
    "Example_NEM12_powercor_missing_fields.csv": (2, "missing 100 header record (first record is '200')"),
    "Example_empty_file.csv": (1, "empty file: no 100 header record"),
}


@needs_mdff
def test_the_decisions_cover_every_invalid_file() -> None:
    assert {p.name for p in INVALID.iterdir()} == set(REJECTED) | {"Example_NEM12_empty.csv"}


@needs_mdff
@pytest.mark.parametrize("name", sorted(REJECTED))
def test_invalid_file_is_rejected_with_line_and_reason(name: str) -> None:
    member, data = member_bytes(INVALID / name)
    with pytest.raises(MdffError) as err:
        parse_nem12(decode(data), member)
    line, reason = REJECTED[name]
    assert err.value.problems[0] == (line, reason)
    assert str(err.value).startswith(f"{member}:{line}: {reason}")


@needs_mdff
def test_concatenated_powercor_file_also_reports_the_early_900() -> None:
    with pytest.raises(MdffError) as err:
        parse_nem12((INVALID / "Example_NEM12_powercor.csv").read_text(), "p.csv")
    assert (6, "900 end-of-data record before the end of the file") in err.value.problems


@needs_mdff
def test_header_and_footer_only_is_valid_and_empty() -> None:
    """Example_NEM12_empty.csv is a 100 and a 900 record: valid MDFF with no data."""
    assert parse_nem12((INVALID / "Example_NEM12_empty.csv").read_text(), "empty.csv").height == 0


def _kept_name(data: bytes, name: str) -> str:
    """The quarantine's name of rejected bytes: the first 16 hex digits of their SHA-256, then the name."""
    return f"{hashlib.sha256(data).hexdigest()[:16]}-{name}"


@needs_mdff
def test_ingest_quarantines_copies_of_rejects_and_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "in"
    shutil.copytree(INVALID, src)
    good = src / "zz_good.csv"
    good.write_text(
        "100,NEM12,202401100000,MDP1,RET1\n200,NMI0000001,E1,1,E1,N1,M1,kWh,30,\n300,20240101,"
        + ",".join(["0.5"] * 48)
        + ",A,,,20240102000000,\n900\n"
    )
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    settings = Settings(meter_store=str(tmp_path / "store"), output_url=str(tmp_path / "out"), shards=2)
    summary = ingest_nem12([str(src)], settings)
    assert summary.files == 12 and summary.accepted == 2 and len(summary.rejected) == 10
    assert summary.register_days == 1 and summary.readings == 48
    q = tmp_path / "out" / "quarantine"
    data = (INVALID / "Example_NEM12_15min_200_30min_300.csv").read_bytes()
    kept = q / _kept_name(data, "Example_NEM12_15min_200_30min_300.csv")
    assert (
        Path(f"{kept}.reason.txt").read_text()
        == "Example_NEM12_15min_200_30min_300.csv:3: 300 record has 48 interval values; IntervalLength 15 of its 200 record (line 2) needs 96\n"
    )
    assert kept.read_bytes() == data  # a copy with the same bytes ...
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # ... and every source untouched
    # a rejected zip member is kept as its own bytes; the archive stays where it is
    _, member = member_bytes(INVALID / "Example_NEM12_powercor.csv.zip")
    kept = q / _kept_name(member, "Example_NEM12_powercor.csv.zip!Example_NEM12_powercor.csv")
    assert kept.read_bytes().startswith(b"\r\n200,VABD000163")
    assert any(r.quarantined_as == str(kept) for r in summary.rejected)


def test_two_bad_files_of_one_name_both_keep_their_bytes(tmp_path: Path) -> None:
    """meter.csv in two folders, different bad bytes: two copies, two reasons, both sources stay."""
    bad = {
        "a": "100,NEM12,202401100000,MDP1,RET1\n300,20240101\n900\n",  # a 300 before any 200
        "b": "200,NMI0000001,E1,1,E1,N1,M1,kWh,30,\n900\n",  # no 100 header
    }
    for folder, text in bad.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "meter.csv").write_text(text)
    settings = Settings(meter_store=str(tmp_path / "store"), output_url=str(tmp_path / "out"))
    summary = ingest_nem12([str(tmp_path / "a"), str(tmp_path / "b")], settings)
    assert [r.name for r in summary.rejected] == ["meter.csv", "meter.csv"]
    q = tmp_path / "out" / "quarantine"
    for folder, text in bad.items():
        kept = q / _kept_name(text.encode(), "meter.csv")
        assert kept.read_text() == text and (tmp_path / folder / "meter.csv").read_text() == text
    assert Path(f"{q / _kept_name(bad['a'].encode(), 'meter.csv')}.reason.txt").read_text() == (
        "meter.csv:2: 300 record before any 200 record\n"
    )
    assert Path(f"{q / _kept_name(bad['b'].encode(), 'meter.csv')}.reason.txt").read_text() == (
        "meter.csv:1: missing 100 header record (first record is '200')\n"
    )
    assert len(list(q.iterdir())) == 4  # two copies, two reason files
    again = ingest_nem12([str(tmp_path / "a")], settings)  # the same bad file again: the same copy
    assert len(again.rejected) == 1 and len(list(q.iterdir())) == 4


@needs_mdff
def test_read_only_source_is_copied(tmp_path: Path) -> None:
    src = tmp_path / "ro"
    src.mkdir()
    shutil.copy(INVALID / "Example_NEM12_missing_header.csv", src)
    src.chmod(0o555)
    try:
        summary = ingest_nem12(
            [str(src)], Settings(meter_store=str(tmp_path / "s"), output_url=str(tmp_path / "out"))
        )
    finally:
        src.chmod(0o755)
    assert (src / "Example_NEM12_missing_header.csv").exists()
    assert (
        Path(summary.rejected[0].quarantined_as).read_bytes()
        == (INVALID / "Example_NEM12_missing_header.csv").read_bytes()
    )


@needs_mdff
def test_the_other_mdff_version_is_skipped_not_quarantined(tmp_path: Path) -> None:
    """A folder may hold NEM12 and NEM13 files: each ingest leaves the other kind in place."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("Example_NEM12_actual_interval.csv", "Example_NEM13_consumption_data.csv"):
        shutil.copy(MDFF / "unzipped" / name, src)
        (src / name).chmod(0o644)
    summary = ingest_nem12(
        [str(src)], Settings(meter_store=str(tmp_path / "s"), output_url=str(tmp_path / "out"))
    )
    assert (summary.files, summary.accepted, summary.rejected, summary.skipped) == (
        1,
        1,
        [],
        ["Example_NEM13_consumption_data.csv"],
    )
    assert (src / "Example_NEM13_consumption_data.csv").exists()
    assert (
        "skipped Example_NEM13_consumption_data.csv: a NEM13 file (load it with `bua ingest nem13`)"
        in summary.lines()
    )
