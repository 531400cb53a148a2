"""A generated, loaded and ingested portfolio for the benchmarks (reused when already built).

Two ways to the same meter store (tests/generate/test_store_direct.py proves them equal):
``direct`` — ``generate(store=…, nem12=False)`` writes the store itself, no NEM12 text (the default
from ``DIRECT_FROM`` accounts: a 100k portfolio's NEM12 is ~9 GB, 1M's ~90 GB); ``nem12`` — generate
the NEM12 files, then ``ingest_nem12`` them (the production path, the default below). Set
``BUA_BENCH_BUILD=nem12`` or ``direct`` to choose.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

DIRECT_FROM = 20_000  # accounts from which prepare() writes the store directly


def build_path(accounts: int) -> str:
    """``direct`` or ``nem12``: BUA_BENCH_BUILD, else direct from ``DIRECT_FROM`` accounts."""
    chosen = os.environ.get("BUA_BENCH_BUILD", "")
    if chosen in ("direct", "nem12"):
        return chosen
    return "direct" if accounts >= DIRECT_FROM else "nem12"


def prepare(work: Path, accounts: int, shards: int) -> Path:
    """Generated, loaded and ingested portfolio under ``work`` (reused when already there)."""
    from tasks.adapters.db import init_db
    from tasks.adapters.ingest import ingest_nem12, ingest_nem13
    from tasks.generate import generate
    from tasks.generate.load import load_portfolio
    from tasks.settings import Settings

    base = work / f"loaded-{accounts}-s{shards}"
    if (base / "ready").exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    s = Settings(database_url=f"sqlite:///{base}/bua.db", meter_store=str(base / "ms"), shards=shards)
    direct = build_path(accounts) == "direct"
    portfolio = base / "portfolio" if direct else work / f"portfolio-{accounts}"
    if direct or not (portfolio / "manifest.json").exists():
        t = time.perf_counter()
        generate(
            portfolio, accounts=accounts, seed=4242, months=13, store=s if direct else None, nem12=not direct
        )
        how = "with the meter store written directly" if direct else "(NEM12)"
        print(f"generated {accounts} accounts {how} in {time.perf_counter() - t:.0f} s", flush=True)
    t = time.perf_counter()
    init_db(s.db_url)
    load_portfolio(s.db_url, portfolio)
    if not direct:
        ingest_nem12([str(portfolio / "nem12")], s)
    if any((portfolio / "nem13").iterdir()):
        ingest_nem13([str(portfolio / "nem13")], s)
    (base / "ready").write_text("ok")
    print(f"loaded and ingested in {time.perf_counter() - t:.0f} s", flush=True)
    return base
