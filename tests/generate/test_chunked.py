"""Billing by account chunk (`generate(chunk_accounts=…)`) and the database load by row chunk.

The chunk size must not change the output: bill lines, invoices and invoice lines are built,
priced and written a chunk of consecutive accounts at a time, with the random draws of the
whole portfolio sliced per chunk and ids continued from the chunks before. A run with one chunk
is the whole-portfolio computation of before; a run with chunks of 70 accounts (300 accounts →
5 chunks, the last one of 20) must give the same files byte for byte — except the two tables
written chunk by chunk, whose rows must be equal (their parquet row groups differ) — and the
same meter store (sha256 of every file). Loading by chunks of a few rows must put the same rows
in the database as loading the files whole.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from sql.schema import metadata
from tasks.adapters.db import engine_for, init_db
from tasks.generate import generate, load
from tasks.generate.tables import TABLE_ORDER
from tasks.settings import Settings

ACCOUNTS, SEED, MONTHS, SHARDS = 300, 21, 3, 4
CHUNKED = ("invoice", "invoice_line")  # written by ChunkWriter: same rows, other row groups


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("chunked")
    out: dict[str, Path] = {}
    for name, chunk in (("one", 10_000), ("many", 70)):
        said: list[str] = []
        generate(
            t / name, accounts=ACCOUNTS, seed=SEED, months=MONTHS, chunk_accounts=chunk, log=said.append,
            store=Settings(meter_store=str(t / f"ms_{name}"), shards=SHARDS), store_batch_readings=150_000,
        )  # fmt: skip
        # ceil(300 / 10 000) = 1 chunk; ceil(300 / 70) = 5 chunks
        n = 1 if chunk > ACCOUNTS else 5
        assert any(f"in {n} chunks" in s for s in said), said
        out[name], out[f"ms_{name}"] = t / name, t / f"ms_{name}"
    return out


def test_chunk_size_does_not_change_the_output(runs: dict[str, Path]) -> None:
    one, many = _digests(runs["one"]), _digests(runs["many"])
    assert sorted(one) == sorted(many)
    assert any(k.startswith("nem13/") for k in one) and any(k.startswith("nem12/") for k in one)
    differ = sorted(k for k in one if one[k] != many[k])
    assert set(differ) <= {*(f"db/{t}.parquet" for t in CHUNKED), "manifest.json"}, differ
    for t in CHUNKED:
        a, b = (pl.read_parquet(runs[r] / "db" / f"{t}.parquet") for r in ("one", "many"))
        assert a.height > ACCOUNTS  # every account has bills over 3 months, a bill has lines
        assert a.schema == b.schema and a.equals(b), t
    ma, mb = (json.loads((runs[r] / "manifest.json").read_text()) for r in ("one", "many"))
    ma.pop("db_bytes"), mb.pop("db_bytes")
    assert ma == mb
    # the meter store written while generating: every file identical
    assert _digests(runs["ms_one"]) == _digests(runs["ms_many"])


def _dump(path: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(path)
    try:
        out = {}
        for t in TABLE_ORDER:
            key = ", ".join(c.name for c in metadata.tables[t].primary_key.columns) or "1"
            out[t] = con.execute(f'SELECT * FROM "{t}" ORDER BY {key}').fetchall()
        return out
    finally:
        con.close()


def test_chunked_load_equals_whole_load_sqlite(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dumps = []
    for name, rows in (("one", 10**9), ("many", 97)):  # 97 rows: most tables in several chunks
        monkeypatch.setattr(load, "LOAD_CHUNK_ROWS", rows)
        url = f"sqlite:///{tmp_path / name}.db"
        init_db(url)
        load.load_portfolio(url, runs[name])
        engine_for(url).dispose()
        dumps.append(_dump(tmp_path / f"{name}.db"))
    assert all(dumps[0][t] for t in CHUNKED)
    assert dumps[0] == dumps[1]


def test_chunked_load_every_database(
    runs: dict[str, Path], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load, "LOAD_CHUNK_ROWS", 97)
    init_db(db_url)
    load.load_portfolio(db_url, runs["many"])
    counts = load.load_portfolio(db_url, runs["many"])  # the second load replaces the first
    q = '"{}"' if "mysql" not in db_url else "`{}`"
    with engine_for(db_url).connect() as conn:
        for t in TABLE_ORDER:
            df = pl.read_parquet(runs["many"] / "db" / f"{t}.parquet")
            assert counts[t] == df.height
            assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {q.format(t)}")).scalar() == df.height, t
        # ids 1 … n, each once: no chunk lost or sent twice
        il = pl.read_parquet(runs["many"] / "db" / "invoice_line.parquet")
        got = conn.execute(sa.text("SELECT COUNT(DISTINCT id), MIN(id), MAX(id) FROM invoice_line")).one()
        assert tuple(got) == (il.height, 1, il.height)
