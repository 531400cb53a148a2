"""The meter data rows of the bad-input matrix (docs/BAD-INPUTS.md), through `bua ingest`.

Each case puts one bad file beside a good one and runs the CLI: the exact one-line message is
printed, the bad file's bytes are copied to the quarantine as ``{sha256[:16]}-{name}`` while the
source stays as it was, the good file loads, and the exit code is 3 (some input rejected). Every
message must also be in the doc's table, so the doc and the code cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import struct
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import REPO, needs_mdff
from tests.ingest.helpers import INVALID, member_bytes
from tests.ingest.test_invalid import REJECTED
from tests.ingest.test_nem13_ingest import _reads, _setup

runner = CliRunner()
DOC = REPO / "docs" / "BAD-INPUTS.md"

H100, H200 = "100,NEM12,202401100000,MDP1,RET1", "200,NMI0000001,E1,1,E1,N1,M1,kWh,30,"
GOOD = f"{H100}\n{H200}\n300,20240101,{','.join(['0.5'] * 48)},A,,,20240102000000,\n900\n"


def _nem12(values: list[str], date: str = "20240102") -> bytes:
    """A NEM12 file whose line 3 is the 300 record of ``date`` with ``values``."""
    return f"{H100}\n{H200}\n300,{date},{','.join(values)},A,,,20240103000000,\n900\n".encode()


def _value10(v: str) -> bytes:
    """Interval 10 is ``v``, the other 47 are 1."""
    return _nem12(["1"] * 9 + [v] + ["1"] * 38)


def _zip(members: dict[str, bytes], declare: int | None = None) -> bytes:
    """A zip archive; ``declare`` sets the (one) member's uncompressed size in its local header
    (offset 22) and the central directory (offset 24), as a zip bomb's header could."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    out = bytearray(buf.getvalue())
    if declare is not None:
        local, central = out.index(b"PK\x03\x04"), out.index(b"PK\x01\x02")
        out[local + 22 : local + 26] = struct.pack("<I", declare)
        out[central + 24 : central + 28] = struct.pack("<I", declare)
    return bytes(out)


ZEROS = _zip({"zeros.csv": b"0" * 4_000_000})
with zipfile.ZipFile(io.BytesIO(ZEROS)) as _z:
    ZEROS_PACKED = _z.getinfo("zeros.csv").compress_size  # about 4 KB: a ratio of about 1000

# case id, file name, bytes, the one-line message (first line of the reason); the kept copy is the
# file's own bytes (a zip member over a cap: the archive's)
NEM12_CASES = [
    *[
        (
            f"value-{v}",
            "bad.csv",
            _value10(v),
            f"bad.csv:3: 300 record interval 10 value '{v}' is not a finite number",
        )
        for v in ("1e400", "inf", "nan", "NaN")
    ],
    (
        "value-text",
        "bad.csv",
        _value10("1..2"),
        "bad.csv:3: 300 record interval 10 value '1..2' is not a number",
    ),
    (
        "value-negative",
        "bad.csv",
        _value10("-0.5"),
        "bad.csv:3: 300 record has a negative interval value (-0.5)",
    ),
    (
        "date-long",
        "bad.csv",
        _nem12(["1"] * 48, date="2" * 200),
        f"bad.csv:3: 300 record IntervalDate '{'2' * 80}…' is not a valid YYYYMMDD date",
    ),
    (
        "line-over-cap",
        "bad.csv",
        f"{H100}\n{H200}\n300,{'9' * 1_048_573}\n900\n".encode(),  # line 3: 4 + 1,048,573 bytes
        "bad.csv:3: line is 1048577 bytes long, over the cap of 1048576 (BUA_INGEST_MAX_LINE_BYTES)",
    ),
    (
        "zip-member-over-cap",
        "bad.zip",
        _zip({"m.csv": GOOD.encode()}, declare=3 << 30),  # 3 GiB declared > 2 GiB = 2147483648
        "bad.zip!m.csv:0: zip member declares 3221225472 bytes uncompressed, over the cap of 2147483648 "
        "(BUA_INGEST_MAX_FILE_BYTES); not extracted",
    ),
    (
        "zip-ratio",
        "bad.zip",
        ZEROS,
        f"bad.zip!zeros.csv:0: zip member declares 4000000 bytes from {ZEROS_PACKED} compressed, a ratio "
        "over 500 (BUA_INGEST_MAX_ZIP_RATIO); not extracted",
    ),
    (
        "zip-unreadable",
        "bad.zip",
        b"PK\x03\x04 not really a zip",
        "bad.zip:0: not a readable zip archive (File is not a zip file)",
    ),
]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "BUA_METER_STORE": str(tmp_path / "store"),
        "BUA_OUTPUT_URL": str(tmp_path / "out"),
        "BUA_SHARDS": "2",
        **extra,
    }


def _check_rejected(tmp_path: Path, kind: str, name: str, data: bytes, message: str, env: dict) -> str:
    """``name`` (``data``) beside a good file in ``in/``: exit 3, the message, a copy, the source
    kept; the command's output."""
    res = runner.invoke(app, ["ingest", kind, str(tmp_path / "in")], env=env)
    assert res.exit_code == 3, res.output
    assert f"  {message}" in res.output.splitlines()
    kept = tmp_path / "out" / "quarantine" / f"{hashlib.sha256(data).hexdigest()[:16]}-{name}"
    assert kept.read_bytes() == data and (tmp_path / "in" / name).read_bytes() == data
    assert f"`{message}`" in DOC.read_text(), f"docs/BAD-INPUTS.md lacks the message of {name}"
    return res.output


@pytest.mark.parametrize(("case", "name", "data", "message"), NEM12_CASES, ids=[c[0] for c in NEM12_CASES])
def test_nem12_bad_input(case: str, name: str, data: bytes, message: str, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / name).write_bytes(data)
    (tmp_path / "in" / "zz_good.csv").write_text(GOOD)
    output = _check_rejected(tmp_path, "nem12", name, data, message, _env(tmp_path))
    assert "meter store: 1 register-days (48 readings), 1 partition write(s)" in output  # the good file


@needs_mdff
@pytest.mark.parametrize("example", sorted(REJECTED))
def test_invalid_example_file(example: str, tmp_path: Path) -> None:
    """The 10 rejected files of mdff-examples/invalid (the 11th, Example_NEM12_empty.csv, is valid
    and empty: below); a zip member is kept as its own bytes under ``{hash}-{zip}!{member}``."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / example).write_bytes((INVALID / example).read_bytes())
    (tmp_path / "in" / "zz_good.csv").write_text(GOOD)
    member, data = member_bytes(INVALID / example)
    line, reason = REJECTED[example]
    if member == example:
        _check_rejected(tmp_path, "nem12", example, data, f"{member}:{line}: {reason}", _env(tmp_path))
    else:  # the zip: its member is rejected, its bytes kept; the archive stays as it was
        res = runner.invoke(app, ["ingest", "nem12", str(tmp_path / "in")], env=_env(tmp_path))
        assert res.exit_code == 3 and f"  {member}:{line}: {reason}" in res.output.splitlines()
        kept = tmp_path / "out" / "quarantine" / f"{hashlib.sha256(data).hexdigest()[:16]}-{member}"
        assert kept.read_bytes() == data and f"`{member}:{line}: {reason}`" in DOC.read_text()


@needs_mdff
def test_header_and_footer_only_example_loads_nothing_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "e.csv").write_bytes((INVALID / "Example_NEM12_empty.csv").read_bytes())
    (tmp_path / "in" / "zz_good.csv").write_text(GOOD)
    res = runner.invoke(app, ["ingest", "nem12", str(tmp_path / "in")], env=_env(tmp_path))
    assert res.exit_code == 0 and "2 file(s) read, 2 accepted, 0 rejected" in res.output


def test_exit_codes_0_3_1(tmp_path: Path) -> None:
    """All loaded: 0; some rejected: 3; none loaded: 1."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.csv").write_text(GOOD)
    assert runner.invoke(app, ["ingest", "nem12", str(tmp_path / "in")], env=_env(tmp_path)).exit_code == 0
    (tmp_path / "in" / "bad.csv").write_bytes(_value10("1e400"))
    assert runner.invoke(app, ["ingest", "nem12", str(tmp_path / "in")], env=_env(tmp_path)).exit_code == 3
    res = runner.invoke(app, ["ingest", "nem12", str(tmp_path / "in" / "bad.csv")], env=_env(tmp_path))
    assert res.exit_code == 1 and "0 accepted, 1 rejected" in res.output


def _r250(curr: str = "1234", prev: str = "1000", qty: str = "234", nmi: str = "NEM1315082") -> str:
    """A 250 record of register 11 (serial 15082): previous read 1 Jan 2004, current 1 Apr 2004."""
    return (
        f"250,{nmi},11,1,11,11,15082,E,{prev},20040101000000,A,,,{curr},20040401000000,A,,,{qty},KWH,"
        "20040701,20040402000000,"
    )


def _nem13(*records: str) -> bytes:
    return "\n".join(["100,NEM13,200404020000,MDP1,RET1", *records, "900"]).encode() + b"\n"


NEM13_CASES = [
    *[
        (f"current-{v}", _nem13(_r250(curr=v)), f"bad13.csv:2: 250 record CurrentRegisterRead '{v}' is not a finite number")
        for v in ("1e400", "inf", "nan", "NaN")
    ],
    ("previous-1e400", _nem13(_r250(prev="1e400")), "bad13.csv:2: 250 record PreviousRegisterRead '1e400' is not a finite number"),
    ("quantity-1e400", _nem13(_r250(qty="1e400")), "bad13.csv:2: 250 record Quantity '1e400' is not a finite number"),
    ("current-negative", _nem13(_r250(curr="-5")), "bad13.csv:2: 250 record CurrentRegisterRead '-5' is not a non-negative number"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "data", "message"), NEM13_CASES, ids=[c[0] for c in NEM13_CASES])
def test_nem13_bad_input(case: str, data: bytes, message: str, db_url: str, tmp_path: Path) -> None:
    """On SQLite, MariaDB and PostgreSQL: the bad file is rejected whole, the good one's two reads
    (1000 on 1 Jan 2004, 1234 on 1 Apr 2004, register id 8) are stored."""
    _setup(db_url)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad13.csv").write_bytes(data)
    (tmp_path / "in" / "good13.csv").write_bytes(_nem13(_r250()))
    _check_rejected(tmp_path, "nem13", "bad13.csv", data, message, _env(tmp_path, BUA_DATABASE_URL=db_url))
    assert _reads(db_url) == [(8, dt.date(2004, 1, 1), 1000.0, "A"), (8, dt.date(2004, 4, 1), 1234.0, "A")]


def test_nem13_reads_of_unknown_nmis_exit_3(sqlite_url: str, tmp_path: Path) -> None:
    """A well-formed file whose NMI the database lacks: its 2 reads go to the rejects file, exit 3."""
    _setup(sqlite_url)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "u.csv").write_bytes(_nem13(_r250(nmi="NEM9999999")))
    res = runner.invoke(
        app, ["ingest", "nem13", str(tmp_path / "in")], env=_env(tmp_path, BUA_DATABASE_URL=sqlite_url)
    )
    assert res.exit_code == 3, res.output
    rejects = (tmp_path / "out" / "rejects" / "u.csv.rejects.csv").read_text().splitlines()
    assert len(rejects) == 3 and rejects[1].endswith(",NMI NEM9999999 is not in the database")
