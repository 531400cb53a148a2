"""Loading a generated portfolio into SQLite, MariaDB and PostgreSQL, and the `bua generate` command."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from typer.testing import CliRunner

from tasks.adapters.db import engine_for, init_db
from tasks.generate.load import load_portfolio
from tasks.generate.tables import TABLE_ORDER


def test_load_row_counts_equal_parquet(db_url: str, small_portfolio: Path) -> None:
    init_db(db_url)
    load_portfolio(db_url, small_portfolio)
    counts = load_portfolio(db_url, small_portfolio)  # a second load replaces the first
    with engine_for(db_url).connect() as conn:
        for table in TABLE_ORDER:
            expected = pl.read_parquet(small_portfolio / "db" / f"{table}.parquet").height
            assert counts[table] == expected
            assert (
                conn.execute(
                    sa.text(
                        f'SELECT COUNT(*) FROM "{table}"'
                        if "mysql" not in db_url
                        else f"SELECT COUNT(*) FROM `{table}`"
                    )
                ).scalar()
                == expected
            ), table
        # types survive: a payment keeps its time of day, a date stays a date, money keeps cents
        pay = pl.read_parquet(small_portfolio / "db" / "payment.parquet").sort("id").row(0, named=True)
        row = conn.execute(sa.text("SELECT payment_date, amount FROM payment WHERE id = 1")).one()
        when = row[0] if isinstance(row[0], dt.datetime) else dt.datetime.fromisoformat(str(row[0]))
        assert when == pay["payment_date"] and float(row[1]) == pay["amount"]
        inv = conn.execute(sa.text("SELECT MIN(period_start), MAX(issue_date) FROM invoice")).one()
        assert str(inv[0])[:10] == str(
            pl.read_parquet(small_portfolio / "db" / "invoice.parquet")["period_start"].min()
        )
        assert str(inv[1])[:10] < "2026-11-01"


def test_cli_generate_and_load(tmp_path: Path) -> None:
    from flows.cli import app

    url = f"sqlite:///{tmp_path}/cli.db"
    out = tmp_path / "p"
    result = CliRunner().invoke(
        app,
        [
            "--database-url",
            url,
            "generate",
            "--accounts",
            "40",
            "--seed",
            "5",
            "--months",
            "2",
            "--out",
            str(out),
            "--load",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "loaded" in result.output and (out / "manifest.json").exists()
    with engine_for(url).connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM account")).scalar() == 40
    bad = CliRunner().invoke(
        app, ["generate", "--accounts", "10", "--out", str(tmp_path / "q"), "--end", "31/10/2026"]
    )
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
