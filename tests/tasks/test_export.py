"""CSV export (SPEC §6): naming, splitting, format, stale files, integration copy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from tasks.adapters.export import export_tables, file_names
from tasks.settings import Settings


def _settings(tmp_path: Path, integration: bool = False) -> Settings:
    return Settings(
        output_url=str(tmp_path / "out"), integration_url=str(tmp_path / "int") if integration else None
    )


def test_file_names_split_only_above_the_limit() -> None:
    # 5 rows, limit 5 → one plain file; 11 rows, limit 5 → ceil(11/5) = 3 parts
    assert file_names("t", 5, 5) == ["t.csv"]
    assert file_names("t", 11, 5) == ["t-0001.csv", "t-0002.csv", "t-0003.csv"]


def test_csv_has_header_iso_dates_and_point_decimals(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    df = pl.DataFrame({"run_date": [dt.date(2026, 11, 1)], "amount": [1234.5], "name": ["a,b"]})
    dest = f"{s.output_url}/export/csv/2026-11-01"
    written = export_tables({"x": df}, dest, s, 10)
    assert written == [f"{dest}/x.csv"]
    assert Path(written[0]).read_text() == 'run_date,amount,name\n2026-11-01,1234.5,"a,b"\n'


def test_split_files_hold_all_rows_in_order_and_stale_parts_are_removed(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    dest = f"{s.output_url}/export/csv/2026-11-01"
    export_tables({"t": pl.DataFrame({"i": list(range(7))})}, dest, s, 2)  # 4 parts
    Path(dest, "other.csv").write_text("keep\n")
    written = export_tables({"t": pl.DataFrame({"i": list(range(3))})}, dest, s, 2)  # 2 parts now
    names = sorted(p.name for p in Path(dest).iterdir())
    assert names == ["other.csv", "t-0001.csv", "t-0002.csv"]
    assert [Path(w).name for w in written] == ["t-0001.csv", "t-0002.csv"]
    back = pl.concat([pl.read_csv(w) for w in written])
    assert back["i"].to_list() == [0, 1, 2]
    # shrinking to one file replaces the numbered parts with the plain name
    export_tables({"t": pl.DataFrame({"i": [9]})}, dest, s, 2)
    assert sorted(p.name for p in Path(dest).iterdir()) == ["other.csv", "t.csv"]


def test_integration_copy_keeps_relative_path(tmp_path: Path) -> None:
    s = _settings(tmp_path, integration=True)
    dest = f"{s.output_url}/export/csv/2026-11-01"
    written = export_tables({"t": pl.DataFrame({"i": [1]})}, dest, s)
    copy = tmp_path / "int" / "export" / "csv" / "2026-11-01" / "t.csv"
    assert str(copy) in written
    assert copy.read_text() == "i\n1\n"
    # split at 2 rows: each part rendered once and copied to both places, the same bytes in each
    # (written by hand: header, then rows 1-2 / row 3)
    written = export_tables({"t": pl.DataFrame({"i": [1, 2, 3], "s": ["a", "b,c", "d"]})}, dest, s, 2)
    for base in (Path(dest), copy.parent):
        assert (base / "t-0001.csv").read_text() == 'i,s\n1,a\n2,"b,c"\n'
        assert (base / "t-0002.csv").read_text() == "i,s\n3,d\n"
        assert not (base / "t.csv").exists()  # the stale single file went from both places
    assert len(written) == 4 and written[0].startswith(dest) and written[-1].startswith(str(copy.parent))


def test_empty_frame_gives_header_only(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    dest = f"{s.output_url}/e"
    export_tables({"t": pl.DataFrame(schema={"a": pl.Int64, "b": pl.String})}, dest, s)
    assert Path(dest, "t.csv").read_text() == "a,b\n"


def test_export_to_s3(s3_bucket: str) -> None:
    import boto3

    s = Settings(output_url=f"{s3_bucket}/out")
    dest = f"{s.output_url}/export/csv/2026-11-01"
    export_tables({"t": pl.DataFrame({"i": [1, 2, 3]})}, dest, s, 2)
    export_tables({"t": pl.DataFrame({"i": [1]})}, dest, s, 2)
    client = boto3.client("s3", endpoint_url=s.s3_endpoint_url, region_name="ap-southeast-2")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket[5:])["Contents"]]
    assert keys == ["out/export/csv/2026-11-01/t.csv"]


def test_a_killed_writers_temporary_files_are_swept_and_nothing_else(tmp_path: Path) -> None:
    """``kill -9`` during a CSV write leaves write_atomic's ``.{name}.{8 chars}.tmp`` beside the
    output (no cleanup runs): the next export removes it before writing. Other dotfiles stay."""
    s = _settings(tmp_path)
    dest = Path(s.output_url, "export", "csv", "2026-11-01")
    dest.mkdir(parents=True)
    half = dest / ".t.csv.k3x9_q2a.tmp"  # as mkstemp(prefix=".t.csv.", suffix=".tmp") names it
    half.write_text("i\n1\n2")  # cut off mid-row
    keep, other = dest / ".keep", dest / ".notes.tmp"
    keep.write_text("")
    other.write_text("x")
    export_tables({"t": pl.DataFrame({"i": [1]})}, str(dest), s)
    assert sorted(p.name for p in dest.iterdir()) == [".keep", ".notes.tmp", "t.csv"]
    assert (dest / "t.csv").read_text() == "i\n1\n"
