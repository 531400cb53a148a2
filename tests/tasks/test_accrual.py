"""End to end: bua_monthly on a tiny generated portfolio (SQLite, local meter store, 2 shards)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from tasks.adapters.db import DatabaseError, engine_for, init_db, transaction
from tasks.settings import Settings
from tests.engine import accrue, run_monthly
from tests.portfolio import load_generated

pytestmark = pytest.mark.usefixtures("harness")

R = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tasks.generate import generate

    out = tmp_path_factory.mktemp("portfolio")
    generate(out, accounts=150, seed=11, months=13)
    return out


def _loaded(portfolio: Path, base: Path) -> Settings:
    s = Settings(
        database_url=f"sqlite:///{base}/bua.db",
        meter_store=str(base / "ms"),
        output_url=str(base / "out"),
        shards=2,
    )
    return load_generated(portfolio, s)


def _bad_input(url: str) -> dict[str, int]:
    """A register without a meter, an account without a plan, a negative and a non-numeric basic read."""
    eng = engine_for(url)
    with eng.connect() as c:
        acc = c.execute(
            sa.text(
                "SELECT ap.account_id FROM account_plan ap JOIN account a ON a.id = ap.account_id "
                "WHERE a.close_date IS NULL AND a.service_type = 'ELECTRICITY' ORDER BY ap.account_id LIMIT 1"
            )  # fmt: skip
        ).scalar_one()
        reg = c.execute(
            sa.text("SELECT meter_register_id FROM basic_read ORDER BY meter_register_id LIMIT 1")
        ).scalar_one()
        mr = c.execute(sa.text("SELECT * FROM meter_register ORDER BY id LIMIT 1")).mappings().one()
    with transaction(url) as c:
        c.execute(sa.text("DELETE FROM account_plan WHERE account_id = :a"), {"a": acc})
        c.execute(
            sa.text(
                "INSERT INTO meter_register (id, meter_id, suffix, stream, time_class, unit, multiplier, start_date) "
                "VALUES (999999, 888888, 'E1', 'CONSUMPTION', 'ANYTIME', 'KWH', 1, :d)"
            ),  # fmt: skip
            {"d": mr["start_date"]},
        )
        c.execute(
            sa.text(
                "INSERT INTO basic_read (meter_register_id, read_date, index_value, quality) VALUES (:r, '2026-10-02', -5, 'A')"
            ),
            {"r": reg},
        )
        c.execute(
            sa.text(
                "INSERT INTO basic_read (meter_register_id, read_date, index_value, quality) VALUES (:r, '2026-10-03', 'abc', 'A')"
            ),
            {"r": reg},
        )
    return {"account": acc, "register": reg}


@pytest.mark.slow
def test_month_end_with_bad_input(portfolio: Path, tmp_path: Path) -> None:
    s = _loaded(portfolio, tmp_path)
    bad = _bad_input(s.db_url)
    result = accrue(s, R)
    csv = Path(s.output_url) / "export" / "csv" / R.isoformat()
    lines = pl.read_csv(csv / "invoice_line_item_monthly.csv")
    accounts = pl.read_csv(csv / "bua_account_summary.csv", try_parse_dates=True)
    summary = pl.read_csv(csv / "accrual_summary.csv")
    exc = pl.read_csv(csv / "bua_exception.csv")
    assert lines.height > 100 and accounts.height > 50
    # the SQL summary is the legacy grouping of the lines: same money, same USAGE volume
    assert summary["net_amount"].sum() == pytest.approx(lines["net_amount"].sum(), abs=0.005)
    usage = lines.filter(pl.col("plan_item_type_name") == "USAGE_RETAIL")["quantity"].sum()
    assert summary["volume"].sum() == pytest.approx(usage, abs=0.01)
    # account totals are the sums of their lines; unbilled_days = to − from + 1
    per_account = lines.group_by("account_id").agg(pl.col("net_amount").sum().alias("lines_net"))
    joined = accounts.join(per_account, on="account_id", how="left").with_columns(
        pl.col("lines_net").fill_null(0.0)
    )
    assert (joined["net_amount"] - joined["lines_net"]).abs().max() < 0.005
    days = (accounts["unbilled_to"] - accounts["unbilled_from"]).dt.total_days() + 1
    assert (days == accounts["unbilled_days"]).all()
    # supply is one day per unbilled day for accounts rated on every day (no NO_PLAN / NO_RATE)
    unrated = exc.filter(pl.col("code").is_in(["NO_PLAN", "NO_RATE", "OVERLAPPING_PLANS"]))[
        "account_id"
    ].drop_nulls()
    supply = (
        lines.filter(pl.col("plan_item_type_name") == "DAILY_RETAIL")
        .group_by("account_id")
        .agg(pl.col("quantity").sum())
    )
    check = accounts.filter(~pl.col("account_id").is_in(unrated.implode())).join(
        supply, on="account_id", how="left"
    )
    assert (check["quantity"].fill_null(0) == check["unbilled_days"]).all()
    # bad input became exceptions; the run went on
    codes = set(exc["code"])
    assert {"NO_METER", "NEGATIVE_READ"} <= codes
    assert (
        exc.filter(
            (pl.col("code") == "NEGATIVE_READ") & (pl.col("meter_register_id") == bad["register"])
        ).height
        == 2
    )
    # the account without a plan: NO_PLAN, nothing rated, but its estimated volume is still reported
    assert "NO_PLAN" in exc.filter(pl.col("account_id") == bad["account"])["code"].to_list()
    assert lines.filter(pl.col("account_id") == bad["account"]).height == 0
    no_plan = accounts.filter(pl.col("account_id") == bad["account"]).row(0, named=True)
    assert no_plan["net_amount"] == 0 and no_plan["volume"] > 0 and no_plan["exception_count"] >= 1
    # feed-in is never positive, GST never on feed-in
    feed = lines.filter(pl.col("plan_item_type_name") == "FEED_IN_RETAIL")
    assert (feed["net_amount"] <= 0).all() and (feed["gst_amount"] == 0).all()
    with engine_for(s.db_url).connect() as c:
        assert (
            c.execute(
                sa.text("SELECT status FROM bua_run WHERE run_id = :r"), {"r": result["run_id"]}
            ).scalar_one()
            == "COMPLETED"
        )

    # a re-run replaces the run date: same CSV bytes, no duplicated rows
    before = {p.name: p.read_bytes() for p in csv.iterdir()}
    again = accrue(s, R)
    assert again["run_id"] == result["run_id"]
    assert set(again["task_run_states"].values()) == {"Cached"}
    assert {p.name: p.read_bytes() for p in csv.iterdir()} == before
    with engine_for(s.db_url).connect() as c:
        n = c.execute(
            sa.text("SELECT COUNT(*) FROM invoice_line_item_monthly WHERE run_date = :d"), {"d": R}
        ).scalar_one()
    assert n == lines.height


def test_missing_table_stops_the_run_with_a_clear_message(tmp_path: Path) -> None:
    s = Settings(
        database_url=f"sqlite:///{tmp_path}/x.db",
        output_url=str(tmp_path / "out"),
        meter_store=str(tmp_path / "ms"),
    )
    init_db(s.db_url)
    with transaction(s.db_url) as c:
        c.execute(sa.text("DROP TABLE plan_rate"))
    with pytest.raises(DatabaseError, match="lacks table\\(s\\) plan_rate"):
        accrue(s, R)
    # nothing was published: no output rows, the attempt recorded FAILED
    with engine_for(s.db_url).connect() as c:
        assert c.execute(sa.text("SELECT COUNT(*) FROM invoice_line_item_monthly")).scalar_one() == 0
        assert c.execute(sa.text("SELECT status FROM bua_run_attempt")).scalars().all() == ["FAILED"]


def test_unreachable_database_stops_the_run(tmp_path: Path) -> None:
    s = Settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", output_url=str(tmp_path / "out")
    )
    outcome = run_monthly(s, run_date=R)
    assert isinstance(outcome.error, DatabaseError)
    assert "cannot connect to database postgresql+psycopg://nobody@127.0.0.1:1/none" in str(outcome.error)
    shutil.rmtree(tmp_path / "out", ignore_errors=True)
