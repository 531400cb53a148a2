"""A generated, loaded and ingested portfolio for the benchmarks (reused when already built)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path


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
    portfolio = work / f"portfolio-{accounts}"
    if not (portfolio / "manifest.json").exists():
        t = time.perf_counter()
        generate(portfolio, accounts=accounts, seed=4242, months=13)
        print(f"generated {accounts} accounts in {time.perf_counter() - t:.0f} s", flush=True)
    shutil.rmtree(base, ignore_errors=True)
    s = Settings(database_url=f"sqlite:///{base}/bua.db", meter_store=str(base / "ms"), shards=shards)
    t = time.perf_counter()
    init_db(s.db_url)
    load_portfolio(s.db_url, portfolio)
    ingest_nem12([str(portfolio / "nem12")], s)
    if any((portfolio / "nem13").iterdir()):
        ingest_nem13([str(portfolio / "nem13")], s)
    (base / "ready").write_text("ok")
    print(f"loaded and ingested in {time.perf_counter() - t:.0f} s", flush=True)
    return base
