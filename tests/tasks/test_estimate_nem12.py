"""NEM12 files of estimates: only register-days with an estimate, E runs in 400 records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from nemreader import NEMFile

from tasks.adapters.estimate_nem12 import write_estimate_nem12
from tasks.settings import Settings
from tests.ingest.oracle import needs_oracle, nemreader1


def _estimate_file(tmp_path: Path) -> tuple[str, list[bool]]:
    """Three days of one register written as bua writes estimates (see the test below); the file
    and day 1's estimated flags."""
    days = [dt.date(2024, 2, d) for d in (1, 2, 3)]
    est1 = [False] * 10 + [True] * 5 + [False] * 33
    usage = pl.DataFrame(
        {
            "account_id": [1] * 3,
            "meter_register_id": [7] * 3,
            "nmi": ["NCDE001111"] * 3,
            "suffix": ["E1"] * 3,
            "stream": ["CONSUMPTION"] * 3,
            "register_time_class": ["ANYTIME"] * 3,
            "unit": ["KWH"] * 3,
            "read_date": days,
            "interval_minutes": [30] * 3,
            "values": [[0.1 * i for i in range(48)], [1.0 / 3] * 48, [9.0] * 48],
            "estimated": [est1, [True] * 48, [False] * 48],
            "method": ["INTERVAL"] * 3,
        }
    )
    urls = write_estimate_nem12(
        usage, Settings(output_url=str(tmp_path)), dt.date(2024, 3, 1), 5, dt.datetime(2024, 3, 1)
    )
    assert urls == [f"{tmp_path}/nem12/2024-03-01/shard=005/estimates-000.csv"]
    return urls[0], est1


def test_estimate_file_reads_back_with_nemreader(tmp_path: Path) -> None:
    # day 1: intervals 11-15 estimated (V + 400 A/E24/A), day 2: all estimated (E24), day 3: none
    # estimated -> not written. nemreader must return the very values with E on estimated ones.
    path, est1 = _estimate_file(tmp_path)
    readings = NEMFile(path).nem_data().readings["NCDE001111"]["E1"]
    assert len(readings) == 96  # day 3 has no estimate and is not written
    assert [r.read_value for r in readings[:48]] == [0.1 * i for i in range(48)]
    # MDFF: a method flag follows E; bua's interval method is 24 Data Scaling (tasks/domain/flags.py)
    assert [r.quality_method for r in readings[:48]] == ["E24" if e else "A" for e in est1]
    assert {r.quality_method for r in readings[48:]} == {"E24"} and readings[50].read_value == 1.0 / 3


@needs_oracle
def test_estimate_file_reads_back_with_nemreader1(tmp_path: Path) -> None:
    """The same file read by nemreader 1.0.x (the oracle, tests/ingest/oracle.py): the same values,
    E24 (E + the Data Scaling method flag, tasks/domain/flags.py) where estimated, A elsewhere."""
    path, est1 = _estimate_file(tmp_path)
    found = nemreader1([Path(path)])[Path(path)]
    assert not isinstance(found, str), found
    found = found.sort("t_start")
    assert found.height == 96  # day 3 has no estimate and is not written
    assert found["value"].to_list()[:48] == [0.1 * i for i in range(48)]
    assert found["quality"].to_list()[:48] == ["E24" if e else "A" for e in est1]
    assert set(found["quality"].to_list()[48:]) == {"E24"} and found["value"][50] == 1.0 / 3
