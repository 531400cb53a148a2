"""Where nemreader 0.9.2 and 1.0.x are demonstrably wrong by the MDFF rules, and what bua does instead.

Each case is listed in docs/NEM12-CONFORMANCE.md with the rule that decides it. Every test
checks nemreader's wrong answer too, so that a fixed nemreader makes the test fail and the
document gets updated. nemreader 1.0.x runs in its own environment (tests/ingest/oracle.py); its
tests skip, and say why, where that environment is missing.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import polars as pl
import pytest

from tasks.adapters.meter_store import explode_intervals, merge_register_days, scan_interval
from tasks.adapters.nem12 import MdffError, decode, parse_nem12
from tasks.settings import Settings
from tests.conftest import MDFF, needs_mdff
from tests.ingest.helpers import member_bytes, nemreader_intervals
from tests.ingest.oracle import ORACLE, needs_oracle, nemreader1, nemreader1_intervals

logging.getLogger("nemreader").setLevel(logging.CRITICAL)

HEADER = "100,NEM12,202401100000,MDP1,RET1"


def _day(date: str, value: float, quality: str = "A", update: str = "20240105000000") -> str:
    return ",".join(["300", date, *[f"{value:g}"] * 48, quality, "", "", update, ""])


# the same NMI/suffix/day twice, 1.0 then a later update of 2.0 (a corrected day re-sent)
DUPLICATE_DAY = "\n".join(
    [
        HEADER,
        "200,NMI0000001,E1,1,E1,N1,M1,kWh,30,",
        _day("20240101", 1.0, update="20240102000000"),
        _day("20240101", 2.0, update="20240103000000"),
        "900",
        "",
    ]
)


@needs_mdff
def test_broken_300_record_400s_go_to_the_wrong_day_in_nemreader() -> None:
    """ETSAMDP Scenario 10: the 300 record of 2005-01-13 (B2) is broken over three lines.

    MDFF: a 400 record applies to the 300 record it directly follows. nemreader skips the
    short 300 record and applies its 400 records (25-48 E52) to 2005-01-12, whose own 300
    record is all actual (QualityMethod A). bua rejects the file whole at line 27.
    """
    path = MDFF / "nem12" / "NEM12#Scenario10#ETSAMDP#NEMMCO.zip"
    theirs = nemreader_intervals(path).filter(
        (pl.col("suffix") == "B2") & (pl.col("t_start").dt.date() == dt.date(2005, 1, 12))
    )
    assert theirs["quality"].to_list() == ["A"] * 24 + ["E"] * 24  # wrong: the day's 300 says A
    name, data = member_bytes(path)
    with pytest.raises(MdffError) as err:
        parse_nem12(decode(data), name)
    assert err.value.problems[0] == (
        27,
        "300 record has 1 interval values; IntervalLength 30 of its 200 record (line 25) needs 48",
    )
    assert (28, "unknown record type '11' in a NEM12 file") in err.value.problems


def test_duplicate_day_is_counted_twice_by_nemreader_once_by_bua(tmp_path: Path) -> None:
    """The same NMI/suffix/day twice (a corrected day re-sent in the same file).

    MDFF/SPEC §3: the later UpdateDateTime replaces the earlier data; it never adds to it.
    nemreader returns both copies (96 readings for one 30-minute day); bua keeps the newer one.
    """
    text = DUPLICATE_DAY
    path = tmp_path / "dup.csv"
    path.write_text(text)
    theirs = nemreader_intervals(path)
    assert theirs.height == 96 and theirs["value"].sum() == 48 * 1.0 + 48 * 2.0
    settings = Settings(meter_store=str(tmp_path / "store"), shards=2)
    merge_register_days(parse_nem12(text, "dup.csv"), settings)
    ours = pl.concat([explode_intervals(scan_interval(settings, s)).collect() for s in range(2)])
    assert ours.height == 48 and ours["value"].sum() == 48 * 2.0  # the 2024-01-03 update wins


def test_older_update_later_in_file_does_not_win(tmp_path: Path) -> None:
    """Latest UpdateDateTime wins even when the older copy comes later in the file."""
    text = "\n".join(
        [
            HEADER,
            "200,NMI0000001,E1,1,E1,N1,M1,kWh,30,",
            _day("20240101", 2.0, update="20240103000000"),
            _day("20240101", 1.0, update="20240102000000"),
            "900",
            "",
        ]
    )
    settings = Settings(meter_store=str(tmp_path / "store"), shards=1)
    merge_register_days(parse_nem12(text, "late.csv"), settings)
    ours = explode_intervals(scan_interval(settings, 0)).collect()
    assert ours["value"].unique().to_list() == [2.0]


@needs_mdff
def test_400_records_not_covering_the_day_are_half_applied_by_nemreader() -> None:
    """invalid/Example_NEM12_15min_200_30min_400.csv: a 15-minute day (96 values) whose 400
    records cover 1-48 only. MDFF: the 400 records of a V day cover every interval. nemreader
    applies them to 1-48 and leaves 49-96 with quality V, which is not an interval quality;
    bua rejects the file at the last 400 record."""
    path = MDFF / "invalid" / "Example_NEM12_15min_200_30min_400.csv"
    theirs = nemreader_intervals(path)
    assert theirs.height == 96 and theirs["quality"].to_list()[48:] == ["V"] * 48
    with pytest.raises(
        MdffError, match=r":5: 400 records of this day end at interval 48; they must cover 1-96 exactly"
    ):
        parse_nem12(path.read_text(), path.name)


# ---------------------------------------------------------------- nemreader 1.0.x (the oracle)
# The same files, read by nemreader 1.0.1 (tests/oracle/requirements.txt): it makes the same
# mistakes as 0.9.2 on each of them, so they stay listed for both in docs/NEM12-CONFORMANCE.md.


def _nemreader1(path: Path) -> pl.DataFrame:
    found = nemreader1([path])[path]
    assert not isinstance(found, str), found
    return found


@needs_oracle
@needs_mdff
def test_nemreader1_also_puts_scenario10s_400s_on_the_wrong_day() -> None:
    path = MDFF / "nem12" / "NEM12#Scenario10#ETSAMDP#NEMMCO.zip"
    theirs = nemreader1_intervals(_nemreader1(path)).filter(
        (pl.col("suffix") == "B2") & (pl.col("t_start").dt.date() == dt.date(2005, 1, 12))
    )
    # the day's own 300 record is all A; the 400s (25-48 E52) belong to the broken 300 of the 13th
    assert theirs["quality"].to_list() == ["A"] * 24 + ["E"] * 24


@needs_oracle
def test_nemreader1_also_counts_a_duplicate_day_twice(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(DUPLICATE_DAY)
    theirs = _nemreader1(path)
    # both copies: 96 readings for one 30-minute day, 48 x 1.0 + 48 x 2.0 = 144 (bua: 48, sum 96)
    assert theirs.height == 96 and theirs["value"].sum() == 144.0


@needs_oracle
@needs_mdff
def test_nemreader1_also_half_applies_400s_not_covering_the_day() -> None:
    path = MDFF / "invalid" / "Example_NEM12_15min_200_30min_400.csv"
    theirs = nemreader1_intervals(_nemreader1(path))
    assert theirs.height == 96 and theirs["quality"].to_list()[48:] == ["V"] * 48


@pytest.mark.parametrize("count", [47, 49])
def test_a_300_record_of_the_wrong_length_is_misread_by_both_nemreaders(count: int, tmp_path: Path) -> None:
    """A 30-minute day's 300 record with 47 or 49 values. MDFF: a 300 record carries exactly
    1440 / IntervalLength values. nemreader (0.9.2 and 1.0.1) still returns 48 readings: with 47,
    the QualityMethod field is read as the 48th value (None, a blank) and the quality is blank;
    with 49, the 49th value is read as the QualityMethod ('1'). bua rejects the file at the record."""
    row = ",".join(["300", "20240101", *["1"] * count, "A", "", "", "20240105000000", ""])
    text = "\n".join([HEADER, "200,NMI0000001,E1,1,E1,N1,M1,kWh,30,", row, "900", ""])
    path = tmp_path / f"len{count}.csv"
    path.write_text(text)
    wrong = {47: ("", None), 49: ("1", 1.0)}[count]  # (the quality it reports, its 48th value)
    theirs = [nemreader_intervals(path)]
    if ORACLE is not None:
        theirs.append(nemreader1_intervals(_nemreader1(path)))
    for found in theirs:
        assert found.height == 48
        assert found["quality"].unique().to_list() == [wrong[0]]
        assert found["value"][47] == wrong[1]
    with pytest.raises(MdffError) as err:
        parse_nem12(text, path.name)
    assert err.value.problems == [
        (3, f"300 record has {count} interval values; IntervalLength 30 of its 200 record (line 2) needs 48")
    ]
