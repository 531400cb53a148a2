"""Size caps checked before reading: zip members by their declared sizes, lines by their length."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from pathlib import Path

from tasks.adapters.ingest import ingest_nem12
from tasks.settings import Settings

GOOD = (
    "100,NEM12,202401100000,MDP1,RET1\n200,NMI0000001,E1,1,E1,N1,M1,kWh,30,\n300,20240101,"
    + ",".join(["0.5"] * 48)
    + ",A,,,20240102000000,\n900\n"
)


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(meter_store=str(tmp_path / "store"), output_url=str(tmp_path / "out"), shards=2, **kw)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _declare_size(archive: bytes, size: int) -> bytes:
    """The archive with its (one) member's uncompressed size set to ``size`` in the local header
    (offset 22) and the central directory (offset 24): a header that lies, as a zip bomb's could."""
    out = bytearray(archive)
    local = out.index(b"PK\x03\x04")
    central = out.index(b"PK\x01\x02")
    out[local + 22 : local + 26] = struct.pack("<I", size)
    out[central + 24 : central + 28] = struct.pack("<I", size)
    return bytes(out)


def test_member_declaring_3_gib_is_rejected_unread(tmp_path: Path) -> None:
    """3 GiB declared > the default cap of 2 GiB (2 << 30 = 2147483648). Extracting it would end in
    zipfile's CRC/size error ("not a readable zip archive"): the cap's message proves it was not read."""
    archive = _declare_size(_zip({"bomb.csv": GOOD.encode()}), 3 << 30)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "day.zip").write_bytes(archive)
    summary = ingest_nem12([str(tmp_path / "in")], _settings(tmp_path))
    assert (summary.files, summary.accepted, len(summary.rejected)) == (1, 0, 1)
    reason = (
        "day.zip!bomb.csv:0: zip member declares 3221225472 bytes uncompressed, over the cap of "
        "2147483648 (BUA_INGEST_MAX_FILE_BYTES); not extracted\n"
    )
    assert summary.rejected[0].reason == reason
    # the archive's bytes are kept; the reason file is named after the member
    kept = tmp_path / "out" / "quarantine" / f"{hashlib.sha256(archive).hexdigest()[:16]}-day.zip"
    assert kept.read_bytes() == archive and (tmp_path / "in" / "day.zip").read_bytes() == archive
    assert Path(f"{kept}!bomb.csv.reason.txt").read_text() == reason


def test_member_over_the_ratio_is_rejected_and_the_good_member_loaded(tmp_path: Path) -> None:
    """4 MB of zeros deflates to about 4 KB (ratio ~1000 > the default 500); the other member loads."""
    archive = _zip({"a_good.csv": GOOD.encode(), "b_zeros.csv": b"0" * 4_000_000})
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        packed = z.getinfo("b_zeros.csv").compress_size
    assert 4_000_000 / packed > 500
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "day.zip").write_bytes(archive)
    summary = ingest_nem12([str(tmp_path / "in")], _settings(tmp_path))
    assert (summary.files, summary.accepted, summary.register_days) == (2, 1, 1)
    assert summary.rejected[0].name == "day.zip!b_zeros.csv"
    assert summary.rejected[0].reason == (
        f"day.zip!b_zeros.csv:0: zip member declares 4000000 bytes from {packed} compressed, a ratio over "
        "500 (BUA_INGEST_MAX_ZIP_RATIO); not extracted\n"
    )


def test_member_cap_is_a_setting(tmp_path: Path) -> None:
    """A month of GOOD's day (31 300 records of 224 bytes + header lines: 7,049 bytes) deflates to far
    fewer bytes, so with a cap of 3,000 the archive is read but its member is over the cap; a cap of
    exactly the member's length lets it load (only a larger size is over the cap)."""
    day = GOOD.splitlines()[2]
    month = (
        "\n".join(
            [
                *GOOD.splitlines()[:2],
                *(day.replace("20240101", f"202401{d:02d}") for d in range(1, 32)),
                "900",
            ]
        )
        + "\n"
    )
    assert len(month) == 32 + 1 + 36 + 1 + 31 * 225 + 4 == 7049
    archive = _zip({"m.csv": month.encode()})
    assert len(archive) < 3000
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "day.zip").write_bytes(archive)
    rejected = ingest_nem12([str(tmp_path / "in")], _settings(tmp_path, ingest_max_file_bytes=3000))
    assert rejected.rejected[0].reason.startswith(
        "day.zip!m.csv:0: zip member declares 7049 bytes uncompressed, over the cap of 3000 "
    )
    loaded = ingest_nem12([str(tmp_path / "in")], _settings(tmp_path, ingest_max_file_bytes=7049))
    assert (loaded.accepted, loaded.rejected, loaded.register_days) == (1, [], 31)


def test_line_over_the_cap_is_rejected_and_not_echoed(tmp_path: Path) -> None:
    """A 300 record of 2,000,000 bytes with a cap of 1,000,000: the reason names the line and its
    length only, so neither stderr nor the reason file carries the line."""
    long_300 = "300,20240101," + "1" * (2_000_000 - 13)
    text = GOOD.replace("900\n", long_300 + "\n900\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "big.csv").write_text(text)
    summary = ingest_nem12([str(tmp_path / "in")], _settings(tmp_path, ingest_max_line_bytes=1_000_000))
    reason = "big.csv:4: line is 2000000 bytes long, over the cap of 1000000 (BUA_INGEST_MAX_LINE_BYTES)\n"
    assert summary.rejected[0].reason == reason
    kept = Path(summary.rejected[0].quarantined_as)
    assert Path(f"{kept}.reason.txt").read_text() == reason and kept.read_text() == text


def test_file_over_the_cap_is_rejected_unread_and_left_in_place(tmp_path: Path) -> None:
    """GOOD is longer than 100 bytes (its 300 record alone has 48 values of 3 characters): with a
    cap of 100 it is not read, not copied (it stays where it is), and its reason is filed under the
    hash of its path."""
    (tmp_path / "in").mkdir()
    src = tmp_path / "in" / "big.csv"
    src.write_text(GOOD)
    summary = ingest_nem12([str(tmp_path / "in")], _settings(tmp_path, ingest_max_file_bytes=100))
    reason = (
        f"big.csv:0: file is {len(GOOD)} bytes, over the cap of 100 (BUA_INGEST_MAX_FILE_BYTES); not read\n"
    )
    assert (summary.files, summary.accepted, summary.rejected[0].reason) == (1, 0, reason)
    assert summary.rejected[0].quarantined_as == str(src) and src.read_text() == GOOD
    q = tmp_path / "out" / "quarantine"
    assert [p.name for p in q.iterdir()] == [
        f"unread-{hashlib.sha256(str(src).encode()).hexdigest()[:16]}-big.csv.reason.txt"
    ]
    assert next(q.iterdir()).read_text() == reason
    doc = (Path(__file__).resolve().parents[2] / "docs" / "BAD-INPUTS.md").read_text()
    assert "`big.csv:0: file is 299 bytes, over the cap of 100 (BUA_INGEST_MAX_FILE_BYTES); not read`" in doc
    # the doc's example: 32 + 1 (100) + 36 + 1 (200) + 224 + 1 (300: 4 + 9 + 48 x 3 + 47 commas + 20) + 4 (900)
    assert len(GOOD) == 299
