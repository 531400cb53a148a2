"""Foundation: settings precedence, `bua db init` idempotence through the CLI, storage, shard hash."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.cli import app
from tasks.adapters import storage
from tasks.domain.shard import shard_expr, shard_of
from tasks.settings import Settings, load_settings


def test_settings_defaults_env_and_overrides(monkeypatch):
    monkeypatch.delenv("BUA_DATABASE_URL", raising=False)
    assert Settings().db_url == "sqlite:///.bua/bua.db"  # SPEC §1 embedded default
    monkeypatch.setenv("BUA_DATABASE_URL", "sqlite:///env.db")
    monkeypatch.setenv("BUA_SHARDS", "8")
    s = load_settings(database_url=None, shards=None)
    assert (s.db_url, s.shards) == ("sqlite:///env.db", 8)
    s = load_settings(database_url="sqlite:///cli.db")  # a CLI option beats the environment
    assert s.db_url == "sqlite:///cli.db"


def test_secret_never_in_repr(monkeypatch):
    monkeypatch.setenv("BUA_SLACK_WEBHOOK_URL", "https://hooks.example/T000/SECRET-TOKEN")
    s = Settings()
    assert "SECRET-TOKEN" not in repr(s) and "SECRET-TOKEN" not in str(s.model_dump())
    assert s.slack_webhook_url is not None and s.slack_webhook_url.get_secret_value().endswith("SECRET-TOKEN")


def test_cli_db_init_twice_is_a_no_op(tmp_path):
    url = f"sqlite:///{tmp_path}/cli.db"
    runner = CliRunner()
    first = runner.invoke(app, ["--database-url", url, "db", "init"])
    assert first.exit_code == 0, first.output
    assert "applied migration(s)" in first.output
    second = runner.invoke(app, ["--database-url", url, "db", "init"])
    assert second.exit_code == 0 and "up to date" in second.output


def test_cli_db_init_unreachable_database_is_a_clear_error():
    url = "postgresql+psycopg://nobody:hunter2@127.0.0.1:1/nowhere"
    result = CliRunner().invoke(app, ["--database-url", url, "db", "init"])
    assert result.exit_code != 0
    assert "cannot connect to database" in result.output
    assert "hunter2" not in result.output  # the password never appears in an error


def test_shard_hash_is_stable_arithmetic():
    # 'A1' in base 36 = 10*36 + 1 = 361; Lehmer step: 361 * 48271 mod (2^31-1) = 17425831; mod 16 = 7
    assert shard_of("A1", 16) == 17425831 % 16 == 7
    # lower case and upper case NMIs are the same site
    assert shard_of("vabd000163", 16) == shard_of("VABD000163", 16)
    df = pl.DataFrame({"nmi": [f"NCCC{i:06d}" for i in range(20_000)]})
    counts = df.select(shard_expr("nmi", 16)).group_by("shard").len()["len"]
    assert counts.len() == 16 and counts.min() > 1_000  # 20k/16 = 1250 each if uniform


def test_atomic_local_write_and_listing(tmp_path):
    s = Settings()
    target = tmp_path / "a" / "b.parquet"
    storage.write_parquet_atomic(pl.DataFrame({"x": [1, 2]}), str(target), s)
    storage.write_parquet_atomic(pl.DataFrame({"x": [3]}), str(target), s)
    assert pl.read_parquet(target)["x"].to_list() == [3]
    assert storage.list_files(str(tmp_path), s) == [str(target)]  # no temp file left behind


def test_parquet_bytes_are_deterministic():
    df = pl.DataFrame({"a": [1.5, None, 3.0], "b": ["x", "y", "z"]})
    assert storage.parquet_bytes(df) == storage.parquet_bytes(df.clone())


@pytest.mark.usefixtures("s3_bucket")
def test_s3_round_trip_on_moto(s3_bucket):
    s = Settings()
    url = f"{s3_bucket}/dir/x.parquet"
    storage.write_parquet_atomic(pl.DataFrame({"x": [1, 2, 3]}), url, s)
    assert storage.exists(url, s)
    assert storage.list_files(f"{s3_bucket}/dir", s) == [url]
    assert storage.scan_parquet(url, s).select(pl.col("x").sum()).collect().item() == 6
    storage.delete([url], s)
    assert not storage.exists(url, s)


def test_atomic_writes_get_the_mode_a_plain_write_gets(tmp_path: Path) -> None:
    """Exports, the report and the store are written through a temporary file (mkstemp creates it
    0600); the finished file gets the mode a plain ``open(..., "w")`` gets: 0666 less the umask
    (0644 with the usual umask 022), so finance readers and integration jobs can read it."""
    import os

    target = tmp_path / "out" / "x.csv"
    storage.write_bytes_atomic(b"a,b\n1,2\n", str(target), Settings())
    storage.write_parquet_atomic(pl.DataFrame({"x": [1]}), str(tmp_path / "out" / "x.parquet"), Settings())
    (tmp_path / "plain.csv").write_text("a,b\n")
    umask = os.umask(0o022)
    os.umask(umask)
    plain = (tmp_path / "plain.csv").stat().st_mode & 0o777
    assert plain == 0o666 & ~umask == storage.FILE_MODE
    assert target.stat().st_mode & 0o777 == plain
    assert (tmp_path / "out" / "x.parquet").stat().st_mode & 0o777 == plain
    assert target.read_bytes() == b"a,b\n1,2\n"


def test_streamed_csv_is_the_whole_texts_bytes() -> None:
    """Five rows written two at a time (header once) are the bytes of one write: by hand, the text is
    the header, then one line per row with ISO dates, '.' decimals and '' for null."""
    import datetime as dt
    import io

    from tasks.adapters.export import csv_bytes, write_csv

    df = pl.DataFrame(
        {
            "d": [dt.date(2026, 10, i) for i in range(1, 6)],
            "x": [1.5, None, -0.1, 1e-7, 2.0],
            "s": ["a", "b,c", None, "d", "e"],
        }
    )
    buf = io.BytesIO()
    write_csv(df, buf, rows_per_write=2)
    assert buf.getvalue() == csv_bytes(df)
    assert buf.getvalue().decode().splitlines()[:4] == [
        "d,x,s",
        "2026-10-01,1.5,a",
        '2026-10-02,,"b,c"',
        "2026-10-03,-0.1,",
    ]
    empty = io.BytesIO()
    write_csv(df.clear(), empty, rows_per_write=2)
    assert empty.getvalue() == b"d,x,s\n"


def test_a_streamed_write_that_fails_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "x.csv"
    storage.write_bytes_atomic(b"old\n", str(target), Settings())

    def half(fh) -> None:  # noqa: ANN001
        fh.write(b"new, half")
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        storage.write_atomic(str(target), Settings(), half)
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]  # no temporary file left


@pytest.mark.usefixtures("s3_bucket")
def test_a_streamed_s3_write_appears_whole_or_not_at_all(s3_bucket) -> None:  # noqa: ANN001
    s = Settings()
    url = f"{s3_bucket}/csv/x.csv"

    def half(fh) -> None:  # noqa: ANN001
        fh.write(b"a,b\n1,")
        raise OSError("stopped")

    with pytest.raises(OSError, match="stopped"):
        storage.write_atomic(url, s, half)
    assert not storage.exists(url, s)
    storage.write_atomic(url, s, lambda fh: fh.write(b"a,b\n1,2\n"))
    assert storage.read_bytes(url, s) == b"a,b\n1,2\n"
