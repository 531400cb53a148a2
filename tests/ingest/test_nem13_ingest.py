"""NEM13 ingest into basic_read on SQLite, MariaDB and PostgreSQL.

The example NEM13#000000000000015#CNRGYMDP holds two registers of NMI NEM1315082 (suffix 41
= register 1, suffix 11 = register 2), each read on 2004-04-15, 2004-06-09 and 2004-09-19: six
index reads, the last ones estimated (E62). Open the file to check the numbers below.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import sqlalchemy as sa

from sql.schema import metadata
from tasks.adapters.db import engine_for, init_db
from tasks.adapters.ingest import ingest_nem13
from tasks.settings import Settings
from tests.conftest import MDFF, needs_mdff
from tests.ingest.helpers import member_bytes

pytestmark = needs_mdff  # every test here reads the shared MDFF examples

EXAMPLE = MDFF / "nem13" / "NEM13#000000000000015#CNRGYMDP#NEMMCO.zip"


def _setup(url: str) -> dict[str, int]:
    init_db(url)
    t = metadata.tables
    with engine_for(url).begin() as c:
        c.execute(t["jurisdiction"].insert(), [{"id": 1, "code": "SA", "timezone": "Australia/Adelaide"}])
        c.execute(
            t["network"].insert(),
            [
                {
                    "id": 1,
                    "code": "SAPN",
                    "name": "SA Power Networks",
                    "jurisdiction_id": 1,
                    "service_type": "ELECTRICITY",
                }
            ],
        )
        c.execute(
            t["site"].insert(),
            [
                {
                    "id": 1,
                    "identifier": "NEM1315082",
                    "service_type": "ELECTRICITY",
                    "network_id": 1,
                    "jurisdiction_id": 1,
                }
            ],
        )
        c.execute(
            t["meter"].insert(),
            [
                {
                    "id": 1,
                    "site_id": 1,
                    "serial_number": "15082",
                    "installation_type": "BASIC",
                    "start_date": dt.date(2000, 1, 1),
                }
            ],
        )
        common = {
            "meter_id": 1,
            "stream": "CONSUMPTION",
            "unit": "KWH",
            "dial_digits": 5,
            "multiplier": 1,
            "start_date": dt.date(2000, 1, 1),
        }
        c.execute(
            t["meter_register"].insert(),
            [
                {"id": 7, "suffix": "41", "time_class": "ANYTIME", **common},
                {"id": 8, "suffix": "11", "time_class": "CONTROLLED", **common},
            ],
        )
    return {"41": 7, "11": 8}


def _reads(url: str) -> list[tuple]:
    t = metadata.tables["basic_read"]
    with engine_for(url).connect() as c:
        rows = c.execute(
            sa.select(t.c.meter_register_id, t.c.read_date, t.c.index_value, t.c.quality).order_by(
                t.c.meter_register_id, t.c.read_date
            )
        ).all()
    return [
        (r[0], r[1] if isinstance(r[1], dt.date) else dt.date.fromisoformat(str(r[1])), float(r[2]), r[3])
        for r in rows
    ]


def test_basic_reads_idempotent_newer_replaces_unknown_rejected(db_url: str, tmp_path: Path) -> None:
    _setup(db_url)
    settings = Settings(database_url=db_url, output_url=str(tmp_path / "out"))
    first = ingest_nem13([str(EXAMPLE)], settings)
    assert (first.accepted, first.reads, first.reads_inserted, first.unknown_reads) == (1, 6, 6, 0)
    expected = [
        (7, dt.date(2004, 4, 15), 6427.0, "A"),
        (7, dt.date(2004, 6, 9), 6858.0, "A"),
        (7, dt.date(2004, 9, 19), 7462.0, "E"),
        (8, dt.date(2004, 4, 15), 38969.0, "A"),
        (8, dt.date(2004, 6, 9), 38972.0, "A"),
        (8, dt.date(2004, 9, 19), 38973.0, "E"),
    ]
    assert _reads(db_url) == expected

    again = ingest_nem13([str(EXAMPLE)], settings)
    assert (again.reads_inserted, again.reads_replaced, again.reads_unchanged) == (0, 0, 6)
    assert _reads(db_url) == expected

    # a later file with the 19 Sep read of register 41 actually read (7470, A)
    _, data = member_bytes(EXAMPLE)
    newer = (
        data.decode()
        .replace("07462,20040919000000,E62", "07470,20040919000000,A")
        .replace("20040820083657", "20041001000000")
    )
    (tmp_path / "newer.csv").write_text(newer, newline="")
    # and a file for an NMI the database does not know
    shutil.copy(MDFF / "unzipped" / "Example_NEM13_forward_estimate.csv", tmp_path / "unknown.csv")
    third = ingest_nem13([str(tmp_path / "newer.csv"), str(tmp_path / "unknown.csv")], settings)
    assert (third.reads_inserted, third.reads_replaced) == (0, 1)
    assert _reads(db_url)[2] == (7, dt.date(2004, 9, 19), 7470.0, "A")
    assert len(_reads(db_url)) == 6
    assert third.unknown_reads == 4  # VDEF005890: two registers, previous and current reads
    rejects = (tmp_path / "out" / "rejects" / "unknown.csv.rejects.csv").read_text().splitlines()
    assert (
        rejects[0]
        == "source_file,source_line,nmi,suffix,register_id,serial,read_date,index_value,quality,reason"
    )
    assert (
        rejects[1]
        == "unknown.csv,2,VDEF005890,11,1,MET12345,2004-01-08,888.0,A,NMI VDEF005890 is not in the database"
    )
    assert len(rejects) == 5


def test_latest_update_wins_across_files_whatever_the_ingest_order(db_url: str, tmp_path: Path) -> None:
    # SPEC §3 (as for NEM12): the read of register 41 on 19 Sep 2004 is 7462 E62 in the example
    # (UpdateDateTime 2004-08-20 08:36:57) and 7470 A in a corrected file updated 2004-10-01.
    # Ingesting the corrected file FIRST and the example after must keep 7470 A (the older update
    # is counted as "older" and kept out), and the stored update time is the corrected file's.
    _setup(db_url)
    settings = Settings(database_url=db_url, output_url=str(tmp_path / "out"))
    _, data = member_bytes(EXAMPLE)
    newer = (
        data.decode()
        .replace("07462,20040919000000,E62", "07470,20040919000000,A")
        .replace("20040820083657", "20041001000000")
    )
    (tmp_path / "newer.csv").write_text(newer, newline="")
    first = ingest_nem13([str(tmp_path / "newer.csv")], settings)
    assert first.reads_inserted == 6
    old = ingest_nem13([str(EXAMPLE)], settings)
    # the example's 9 Jun and 19 Sep reads of both registers come from its 250 records updated
    # 2004-08-20 (older than 2004-10-01: 4 kept out); its 15 Apr reads carry the same update time
    # (2004-06-10) in both files: unchanged (2)
    assert (old.reads_inserted, old.reads_replaced, old.reads_older, old.reads_unchanged) == (0, 0, 4, 2)
    assert _reads(db_url)[2] == (7, dt.date(2004, 9, 19), 7470.0, "A")
    t = metadata.tables["basic_read"]
    with engine_for(db_url).connect() as c:
        upd = c.execute(
            sa.select(t.c.update_datetime).where(
                (t.c.meter_register_id == 7) & (t.c.read_date == dt.date(2004, 9, 19))
            )
        ).scalar_one()
    assert str(upd).startswith("2004-10-01 00:00:00")
    # the same file again with a later update time and the original value wins again (later update)
    later = data.decode().replace("20040820083657", "20041101000000")
    (tmp_path / "later.csv").write_text(later, newline="")
    third = ingest_nem13([str(tmp_path / "later.csv")], settings)
    assert (third.reads_replaced, third.reads_older) == (1, 0)
    assert _reads(db_url)[2] == (7, dt.date(2004, 9, 19), 7462.0, "E")
