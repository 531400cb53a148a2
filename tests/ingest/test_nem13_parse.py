"""NEM13 parsing rules: which read wins for a register-day, and whole-file rejections."""

from __future__ import annotations

import datetime as dt

import pytest

from tasks.adapters.nem12 import MdffError
from tasks.adapters.nem13 import basic_reads, parse_nem13


def _r250(prev: str, prev_dt: str, curr: str, curr_dt: str, update: str, quality: str = "A") -> str:
    return f"250,NMI0000009,11,1,11,11,SER9,E,{prev},{prev_dt},A,,,{curr},{curr_dt},{quality},,,0,KWH,20050101,{update},"


def _file(*records: str, footer: bool = True) -> str:
    return "\n".join(["100,NEM13,200501010000,MDP1,RET1", *records, *(["900"] if footer else [])]) + "\n"


def test_later_line_wins_at_equal_update_and_latest_update_wins() -> None:
    text = _file(
        _r250("100", "20040101000000", "200", "20040201000000", "20040202000000"),  # 1 Feb read as 200
        _r250(
            "201", "20040201000000", "300", "20040301000000", "20040202000000"
        ),  # same update, later line: 201
        _r250(
            "150", "20040101000000", "250", "20040115000000", "20040101000000", "E"
        ),  # older update on 1 Jan
    )
    reads = basic_reads(parse_nem13(text, "f.csv")).sort("read_date")
    assert reads.select("read_date", "index_value", "quality", "source_line").rows() == [
        (dt.date(2004, 1, 1), 100.0, "A", 2),  # line 2 (update 2 Feb) beats line 4 (update 1 Jan)
        (dt.date(2004, 1, 15), 250.0, "E", 4),
        (dt.date(2004, 2, 1), 201.0, "A", 3),
        (dt.date(2004, 3, 1), 300.0, "A", 3),
    ]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (
            _file(_r250("1", "20040101000000", "2", "20040201000000", "20040202000000"), footer=False),
            2,
            "missing 900 end-of-data record at the end of the file",
        ),
        (
            _file(_r250("1", "20040101000000", "x2", "20040201000000", "20040202000000")),
            2,
            "250 record CurrentRegisterRead 'x2' is not a non-negative number",
        ),
        (
            _file(_r250("1", "20040101000000", "2", "20041301000000", "20040202000000")),
            2,
            "250 record CurrentRegisterReadDateTime '20041301000000' is not a valid date-time",
        ),
        (_file("550,N,,A,"), 2, "550 record not directly after a 250 record"),
        # non-finite reads: 1e400 is beyond f64 (read as infinity); nan and inf read as such
        *[
            (
                _file(_r250("1", "20040101000000", v, "20040201000000", "20040202000000")),
                2,
                f"250 record CurrentRegisterRead '{v}' is not a finite number",
            )
            for v in ("1e400", "inf", "nan", "NaN")
        ],
        (
            _file(_r250("1e400", "20040101000000", "2", "20040201000000", "20040202000000")),
            2,
            "250 record PreviousRegisterRead '1e400' is not a finite number",
        ),
        (_file("300,20040101"), 2, "unknown record type '300' in a NEM13 file"),
        ("200,NMI\n900\n", 1, "missing 100 header record of version NEM13 (first record: '200,NMI')"),
    ],
)
def test_malformed_nem13_is_rejected(text: str, line: int, reason: str) -> None:
    with pytest.raises(MdffError) as err:
        parse_nem13(text, "f.csv")
    assert err.value.problems[0] == (line, reason)
