"""NEM12 reader rules on small hand-made files (each line of each file is written out here)."""

from __future__ import annotations

import datetime as dt

import pytest

from tasks.adapters.nem12 import MdffError, parse_nem12

H100 = "100,NEM12,202401100000,MDP1,RET1"
H200 = "200,NMI0000001,E1B1,1,E1,N1,M1,kWh,30,"


def _300(
    date: str = "20240101",
    values: list[str] | None = None,
    q: str = "A",
    update: str = "20240102030405",
    msats: str = "20240103000000",
) -> str:
    return ",".join(["300", date, *(values or ["1.5"] * 48), q, "", "", update, msats])


def _file(*lines: str) -> str:
    return "\r\n".join([H100, *lines, "900"]) + "\r\n"


def test_fields_kept_and_400_runs_become_interval_quality() -> None:
    text = _file(
        H200,
        _300(q="V"),
        "400,1,10,A,,",
        "400,11,48,S14,32,",
        "500,S,RSO1,20240101120000,001234.5",
        _300("20240102"),
    )
    df = parse_nem12(text, "f.csv").sort("read_date")
    day = df.row(0, named=True)
    assert (
        day["nmi"],
        day["suffix"],
        day["register_id"],
        day["serial"],
        day["unit"],
        day["interval_minutes"],
    ) == ("NMI0000001", "E1", "1", "M1", "KWH", 30)
    assert day["quality"] == "A" * 10 + "S" * 38 and day["quality_method"] == "V"
    assert day["update_datetime"] == dt.datetime(2024, 1, 2, 3, 4, 5) and day[
        "msats_load_datetime"
    ] == dt.datetime(2024, 1, 3)
    assert (day["b2b_trans_code"], day["b2b_read_datetime"], day["b2b_index_read"]) == (
        "S",
        dt.datetime(2024, 1, 1, 12),
        1234.5,
    )
    assert day["source_line"] == 3 and df.row(1, named=True)["source_line"] == 7
    assert df.row(1, named=True)["b2b_index_read"] is None and df.row(1, named=True)["quality"] == "A" * 48


@pytest.mark.parametrize(("minutes", "n"), [(5, 288), (10, 144), (15, 96), (30, 48)])
def test_every_interval_length(minutes: int, n: int) -> None:
    text = _file(f"200,NMI0000001,E1,1,E1,N1,M1,kWh,{minutes},", _300(values=["0.25"] * n))
    df = parse_nem12(text, "f.csv")
    assert df["values"].to_list() == [[0.25] * n]


def test_several_200_records_for_one_nmi() -> None:
    text = _file(
        H200,
        _300(),
        "200,NMI0000001,E1B1,2,B1,N2,M1,kWh,15,",
        _300(values=["2"] * 96),
        H200,
        _300("20240102"),
    )
    df = parse_nem12(text, "f.csv").sort("suffix", "read_date")
    assert df.select("suffix", "read_date", "interval_minutes").rows() == [
        ("B1", dt.date(2024, 1, 1), 15),
        ("E1", dt.date(2024, 1, 1), 30),
        ("E1", dt.date(2024, 1, 2), 30),
    ]


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        ([H200, _300(values=["1"] * 47 + ["-0.5"])], 3, "300 record has a negative interval value (-0.5)"),
        (
            [H200, _300(values=["1"] * 47 + ["abc1"])],
            3,
            "300 record has 47 interval values; IntervalLength 30 of its 200 record (line 2) needs 48",
        ),
        (
            [H200, _300(values=["1"] * 47 + ["1..2"])],
            3,
            "300 record interval 48 value '1..2' is not a number",
        ),
        # non-finite values: 1e400 is beyond f64 (read as infinity), nan/NaN/inf read as such
        *[
            (
                [H200, _300(values=["1"] * 9 + [v] + ["1"] * 38)],
                3,
                f"300 record interval 10 value '{v}' is not a finite number",
            )
            for v in ("1e400", "inf", "nan", "NaN", "-inf")
        ],
        (
            [H200, _300(), "500,S,RSO1,20240101120000,1e400"],
            4,
            "500 record IndexRead '1e400' is not a finite number",
        ),
        ([H200, _300(date="20240230")], 3, "300 record IntervalDate '20240230' is not a valid YYYYMMDD date"),
        (
            [H200, _300(update="20241340000000")],
            3,
            "300 record UpdateDateTime '20241340000000' is not a valid date-time",
        ),
        ([_300(), H200], 2, "300 record before any 200 record"),
        ([H200, _300(), "999,x"], 4, "unknown record type '999' in a NEM12 file"),
        ([H200, _300(q="V")], 3, "300 record of QualityMethod V without 400 records"),
        (
            [H200, _300(q="V"), "400,1,10,A,,", "400,12,48,E52,,"],
            5,
            "400 record covers intervals 12-48; expected to start at 11 and end at most at 48 (the day's 400 records must cover 1-48 exactly)",
        ),
        (
            [H200, _300(q="A"), "400,1,48,A,,"],
            4,
            "400 record after a 300 record of QualityMethod 'A' (400 records belong to V days)",
        ),
        ([H200, "400,1,48,A,,"], 3, "400 record not directly after a 300 or 400 record"),
        (
            ["200,NMI0000001,E1,1,E1,N1,M1,kWh,60,"],
            2,
            "200 record IntervalLength '60' is not one of 5, 10, 15, 30",
        ),
    ],
)
def test_malformed_file_is_rejected_with_line(lines: list[str], line: int, reason: str) -> None:
    with pytest.raises(MdffError) as err:
        parse_nem12(_file(*lines), "f.csv")
    assert err.value.problems[0] == (line, reason)


def test_missing_900_and_header() -> None:
    with pytest.raises(MdffError, match=r"^f.csv:3: missing 900 end-of-data record"):
        parse_nem12("\n".join([H100, H200, _300()]), "f.csv")
    with pytest.raises(MdffError, match=r"^f.csv:1: 100 record version is 'NEM13', not NEM12"):
        parse_nem12(_file(H200, _300()).replace("NEM12", "NEM13"), "f.csv")


def test_long_line_and_long_fields_are_cut_in_messages() -> None:
    """A 300 record line of 1 MiB + 1 byte is over the default cap (1 << 20 bytes); a 200-character
    date is echoed as its first 80 characters and "…"."""
    long_line = "300," + "9" * ((1 << 20) - 3)  # 4 + 1048573 = 1048577 bytes
    with pytest.raises(MdffError) as err:
        parse_nem12(_file(H200, long_line), "f.csv")
    assert err.value.problems == [
        (3, "line is 1048577 bytes long, over the cap of 1048576 (BUA_INGEST_MAX_LINE_BYTES)")
    ]
    with pytest.raises(MdffError) as err:
        parse_nem12(_file(H200, _300(date="2" * 200)), "f.csv")
    assert err.value.problems[0] == (
        3,
        "300 record IntervalDate '" + "2" * 80 + "…' is not a valid YYYYMMDD date",
    )
