"""`bua ingest nem12` and `bua meter show --csv` end to end through the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import MDFF, needs_mdff

runner = CliRunner()


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "BUA_METER_STORE": str(tmp_path / "store"),
        "BUA_OUTPUT_URL": str(tmp_path / "out"),
        "BUA_SHARDS": "4",
    }


@needs_mdff
def test_meter_show_csv_with_400_qualities(tmp_path: Path) -> None:
    """Example_NEM12_multiple_quality.csv: CCCC123456 E1 on 2004-04-17, 400 records F14 for
    intervals 1-20, A for 21-24, S14 for 25-48; first value 18.023, 21st 21.424."""
    src = MDFF / "unzipped" / "Example_NEM12_multiple_quality.csv"
    res = runner.invoke(app, ["ingest", "nem12", str(src)], env=_env(tmp_path))
    assert res.exit_code == 0, res.output
    assert "1 file(s) read, 1 accepted, 0 rejected" in res.output
    assert "1 register-days (48 readings)" in res.output
    res = runner.invoke(
        app,
        [
            "meter",
            "show",
            "CCCC123456",
            "--suffix",
            "E1",
            "--from",
            "2004-04-17",
            "--to",
            "2004-04-17",
            "--csv",
        ],
        env=_env(tmp_path),
    )
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "nmi,suffix,interval_start,interval_minutes,value,unit,quality"
    assert lines[1] == "CCCC123456,E1,2004-04-17T00:00:00+10:00,30,18.023,KWH,F"
    assert lines[21] == "CCCC123456,E1,2004-04-17T10:00:00+10:00,30,21.424,KWH,A"
    assert lines[25].endswith(",S") and lines[48].startswith("CCCC123456,E1,2004-04-17T23:30:00+10:00,30,")
    assert len(lines) == 49


@needs_mdff
def test_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "in"
    bad.mkdir()
    shutil.copy(MDFF / "invalid" / "Example_NEM12_missing_header.csv", bad)
    (bad / "Example_NEM12_missing_header.csv").chmod(0o644)
    res = runner.invoke(app, ["ingest", "nem12", str(bad)], env=_env(tmp_path))
    assert res.exit_code == 1  # nothing could be ingested
    assert "Example_NEM12_missing_header.csv:2: missing 100 header record" in res.output
    res = runner.invoke(app, ["ingest", "nem12", str(tmp_path / "nope.csv")], env=_env(tmp_path))
    assert res.exit_code == 2 and "no such file or folder" in res.output
    res = runner.invoke(
        app, ["meter", "show", "CCCC123456", "--from", "17/04/2004", "--csv"], env=_env(tmp_path)
    )
    assert res.exit_code == 2 and "not a date" in res.output
