"""Every file in mdff-examples/invalid: rejected with the line and reason, or accepted if valid.

The expected reasons can be checked by opening the file: e.g. Example_NEM12_15min_200_30min_300
has ``IntervalLength`` 15 on line 2 (``200,...,kWh,15,``) and 48 values on line 3.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tasks.adapters.ingest import ingest_nem12
from tasks.adapters.nem12 import MdffError, decode, parse_nem12
from tasks.settings import Settings
from tests.conftest import MDFF
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


def test_the_decisions_cover_every_invalid_file() -> None:
    assert {p.name for p in INVALID.iterdir()} == set(REJECTED) | {"Example_NEM12_empty.csv"}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_invalid_file_is_rejected_with_line_and_reason(name: str) -> None:
    member, data = member_bytes(INVALID / name)
    with pytest.raises(MdffError) as err:
        parse_nem12(decode(data), member)
    line, reason = REJECTED[name]
    assert err.value.problems[0] == (line, reason)
    assert str(err.value).startswith(f"{member}:{line}: {reason}")


def test_concatenated_powercor_file_also_reports_the_early_900() -> None:
    with pytest.raises(MdffError) as err:
        parse_nem12((INVALID / "Example_NEM12_powercor.csv").read_text(), "p.csv")
    assert (6, "900 end-of-data record before the end of the file") in err.value.problems


def test_header_and_footer_only_is_valid_and_empty() -> None:
    """Example_NEM12_empty.csv is a 100 and a 900 record: valid MDFF with no data."""
    assert parse_nem12((INVALID / "Example_NEM12_empty.csv").read_text(), "empty.csv").height == 0


def test_ingest_quarantines_rejects_and_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "in"
    shutil.copytree(INVALID, src)
    src.chmod(0o755)  # the shared examples are read-only; this copy is ours to move files out of
    for f in src.iterdir():
        f.chmod(0o644)
    good = src / "zz_good.csv"
    good.write_text(
        "100,NEM12,202401100000,MDP1,RET1\n200,NMI0000001,E1,1,E1,N1,M1,kWh,30,\n300,20240101,"
        + ",".join(["0.5"] * 48)
        + ",A,,,20240102000000,\n900\n"
    )
    settings = Settings(meter_store=str(tmp_path / "store"), output_url=str(tmp_path / "out"), shards=2)
    summary = ingest_nem12([str(src)], settings)
    assert summary.files == 12 and summary.accepted == 2 and len(summary.rejected) == 10
    assert summary.register_days == 1 and summary.readings == 48
    q = tmp_path / "out" / "quarantine"
    reason = (q / "Example_NEM12_15min_200_30min_300.csv.reason.txt").read_text()
    assert (
        reason
        == "Example_NEM12_15min_200_30min_300.csv:3: 300 record has 48 interval values; IntervalLength 15 of its 200 record (line 2) needs 96\n"
    )
    # moved: gone from the input folder, same bytes in quarantine
    assert not (src / "Example_NEM12_15min_200_30min_300.csv").exists()
    assert (q / "Example_NEM12_15min_200_30min_300.csv").read_bytes() == (
        INVALID / "Example_NEM12_15min_200_30min_300.csv"
    ).read_bytes()
    # a rejected zip member is kept as its own bytes; the archive stays where it is
    assert (
        (q / "Example_NEM12_powercor.csv.zip!Example_NEM12_powercor.csv")
        .read_bytes()
        .startswith(b"\r\n200,VABD000163")
    )
    assert (src / "Example_NEM12_powercor.csv.zip").exists()


def test_read_only_source_is_copied_not_deleted(tmp_path: Path) -> None:
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
    assert "source left in place" in summary.rejected[0].reason


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
