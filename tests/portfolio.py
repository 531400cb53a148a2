"""Generated portfolios for the tests that run the whole engine: load, ingest, copy."""

from __future__ import annotations

import shutil
from pathlib import Path

from tasks.settings import Settings


def load_generated(portfolio: Path, settings: Settings) -> Settings:
    """Load a generated portfolio's billing tables into ``settings.db_url`` and ingest its
    NEM12 files into the meter store and its NEM13 files (if any) into basic_read."""
    from tasks.adapters.db import init_db
    from tasks.adapters.ingest import ingest_nem12, ingest_nem13
    from tasks.generate.load import load_portfolio

    init_db(settings.db_url)
    load_portfolio(settings.db_url, portfolio)
    ingest_nem12([str(portfolio / "nem12")], settings)
    if any((portfolio / "nem13").iterdir()):
        ingest_nem13([str(portfolio / "nem13")], settings)
    return settings


def generated_and_loaded(base: Path, accounts: int = 120, seed: int = 23, shards: int = 4) -> Path:
    """``base`` holding ``bua.db`` and the meter store ``ms/`` of a freshly generated portfolio."""
    from tasks.generate import generate

    generate(base / "portfolio", accounts=accounts, seed=seed, months=13)
    settings = Settings(database_url=f"sqlite:///{base}/bua.db", meter_store=str(base / "ms"), shards=shards)
    load_generated(base / "portfolio", settings)
    shutil.rmtree(base / "portfolio")
    return base


def copy_of(loaded: Path, root: Path, **overrides: object) -> Settings:
    """Settings on a copy (at ``root``) of a loaded portfolio, output under ``root/out``; 4 shards,
    2 workers, one quick retry, unless overridden."""
    shutil.copytree(loaded, root)
    base: dict[str, object] = {
        "database_url": f"sqlite:///{root}/bua.db",
        "meter_store": str(root / "ms"),
        "output_url": str(root / "out"),
        "shards": 4,
        "max_workers": 2,
        "task_retries": 1,
        "task_retry_delay_seconds": 0.01,
    }
    return Settings(**{**base, **overrides})
