"""Portfolios generated once per test session (a few seconds each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.generate import generate


@pytest.fixture(scope="session")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 accounts × 13 months ending 2026-10-31 (the demo's shape), seed 7."""
    out = tmp_path_factory.mktemp("portfolio")
    generate(out, accounts=1500, seed=7, months=13)
    return out


@pytest.fixture(scope="session")
def small_portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 accounts × 3 months: small enough for nemreader and for three databases."""
    out = tmp_path_factory.mktemp("small")
    generate(out, accounts=120, seed=3, months=3)
    return out
