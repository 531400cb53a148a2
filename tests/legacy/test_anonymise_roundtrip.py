"""`bua anonymise` round trip on a generated 2k portfolio (SQLite, local meter store, 4 shards).

The portfolio is generated, loaded and its NEM12/NEM13 files ingested; `bua anonymise` copies it;
`bua run` (the month-end flow, as a user runs it) runs on the original and on the copy. Then:
the copy's invoice_line_item_monthly, bua_account_summary and accrual_summary equal the original's
row for row once the copy's account numbers are mapped back through account.id (kept); and no
original NMI, account number, meter serial or invoice number is anywhere in the copy — its database
dump, every parquet file (values, statistics, key-value metadata) and every other file it wrote.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.portfolio import generated_and_loaded

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]
R = dt.date(2026, 11, 1)
KEY = "round-trip-key-0123456789abcdef"
TOKEN = re.compile(rb"[A-Za-z0-9]{6,}")


def _bua(args: list[str], base: Path, db: str, store: str, out: Path) -> str:
    env = {
        **os.environ,
        "BUA_DATABASE_URL": db, "BUA_METER_STORE": store, "BUA_OUTPUT_URL": str(out), "BUA_SHARDS": "4",
        "BUA_ANONYMISE_KEY": KEY, "PREFECT_HOME": str(base / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], env=env, capture_output=True, text=True, timeout=1500
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def _table(db: Path, sql: str) -> pl.DataFrame:
    with sqlite3.connect(db) as c:
        return pl.read_database(sql, c, infer_schema_length=None)


def _originals(db: Path) -> set[bytes]:
    out: set[bytes] = set()
    for sql in (
        "SELECT account_number AS v FROM account", "SELECT identifier AS v FROM site",
        "SELECT serial_number AS v FROM meter", "SELECT invoice_number AS v FROM invoice",
    ):  # fmt: skip
        out |= {v.encode() for v in _table(db, sql)["v"].to_list()}
    return out


def _parquet_strings(path: Path) -> set[bytes]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    found: set[bytes] = set()
    for k, v in (pf.metadata.metadata or {}).items():
        found |= set(TOKEN.findall(k + b" " + v))
    for rg in range(pf.metadata.num_row_groups):
        for col in range(pf.metadata.num_columns):
            st = pf.metadata.row_group(rg).column(col).statistics
            if st is not None and st.has_min_max and isinstance(st.min, str | bytes):
                found |= {str(st.min).encode(), str(st.max).encode()}
    frame = pl.read_parquet(path)
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            found |= {v.encode() for v in frame[name].drop_nulls().unique().to_list()}
    return found


def test_anonymised_copy_has_the_same_accrual_and_no_original_identifier(tmp_path: Path) -> None:
    orig = generated_and_loaded(tmp_path / "orig", accounts=2000, seed=5, shards=4)
    odb, cdb = orig / "bua.db", tmp_path / "copy" / "bua.db"
    (tmp_path / "copy").mkdir()
    said = _bua(
        ["anonymise", "--to-database-url", f"sqlite:///{cdb}", "--to-meter-store", str(tmp_path / "copy" / "ms")],
        tmp_path, f"sqlite:///{odb}", str(orig / "ms"), tmp_path / "o-out",
    )  # fmt: skip
    assert "nmi: 1," in said and KEY not in said
    originals = _originals(odb)
    assert len(originals) > 20_000

    _bua(
        ["run", "--run-date", R.isoformat()],
        tmp_path,
        f"sqlite:///{odb}",
        str(orig / "ms"),
        tmp_path / "o-out",
    )
    _bua(
        ["run", "--run-date", R.isoformat()],
        tmp_path,
        f"sqlite:///{cdb}",
        str(tmp_path / "copy" / "ms"),
        tmp_path / "c-out",
    )

    numbers = _table(odb, "SELECT id AS account_id, account_number AS original FROM account").join(
        _table(cdb, "SELECT id AS account_id, account_number AS pseudonym FROM account"), on="account_id"
    )
    assert numbers.height == 2000 and (numbers["original"] != numbers["pseudonym"]).all()
    for table, key in (
        ("invoice_line_item_monthly", ["account_id", "year_mnth", "plan_item_type_name", "feature_type_name", "time_class_name", "unit"]),
        ("bua_account_summary", ["account_id"]),
        ("accrual_summary", ["ili_state", "discount_state", "feature_type_name", "state", "fuel", "segment", "year_mnth", "time_class_name"]),
    ):  # fmt: skip
        a = _table(odb, f"SELECT * FROM {table}").drop("run_id").sort(key, nulls_last=True)
        b = _table(cdb, f"SELECT * FROM {table}").drop("run_id").sort(key, nulls_last=True)
        if "account_number" in b.columns:
            b = (
                b.join(
                    numbers.select("pseudonym", "original"),
                    left_on="account_number",
                    right_on="pseudonym",
                    how="left",
                )
                .with_columns(pl.col("original").alias("account_number"))
                .drop("original")
                .select(a.columns)
            )
        assert a.height > 0 and a.height == b.height, table
        assert a.equals(b), f"{table} differs after mapping"
    # exceptions: the same codes for the same accounts and registers
    exc = "SELECT account_id, meter_register_id, code, COUNT(*) AS n FROM bua_exception GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    assert _table(odb, exc).equals(_table(cdb, exc))

    # the scan: the copy's database (after its own month end) and every file it holds or wrote
    with sqlite3.connect(cdb) as c:
        dump = "\n".join(c.iterdump()).encode()
    leaked = set(TOKEN.findall(dump)) & originals
    files = [p for root in (tmp_path / "copy", tmp_path / "c-out") for p in root.rglob("*") if p.is_file()]
    parquet = [p for p in files if p.suffix == ".parquet"]
    stored = sorted(p.relative_to(orig / "ms") for p in (orig / "ms").rglob("*.parquet"))
    # every (shard, month) partition the original has, the copy has (2,000 accounts fill all 4 shards)
    assert sorted(p.relative_to(tmp_path / "copy" / "ms") for p in parquet if "ms" in p.parts) == stored
    for p in files:
        if p.name.startswith("bua.db"):
            continue
        found = _parquet_strings(p) if p.suffix == ".parquet" else set(TOKEN.findall(p.read_bytes()))
        leaked |= found & originals
    assert not leaked, f"{len(leaked)} original identifier(s) in the copy, e.g. {sorted(leaked)[:3]}"
    # and the scan can see one: the original database does hold them
    with sqlite3.connect(odb) as c:
        assert set(TOKEN.findall("\n".join(c.iterdump()).encode())) & originals
