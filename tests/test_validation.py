"""Validation (SPEC §4.6): back-test and true-up, by hand on tiny frames, then the phase end to end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from tasks.adapters.validation_tables import read_previous_accrual, write_validation
from tasks.domain.backtest import (
    backtest_date,
    backtest_metrics,
    backtest_shards,
    basic_compare,
    interval_compare,
)
from tasks.domain.trueup import trueup_rows
from tasks.pipeline.phases.validation import trueup


def trueup_from_database(url: str, run_date: dt.date) -> tuple[pl.DataFrame, dt.date | None]:
    """The true-up rows against the previous run found in the database, and that run's date."""
    previous = read_previous_accrual(url, run_date)
    return trueup(previous), previous.run_date


B = dt.date(2026, 10, 1)
SEG = "RES|NSW|CONSUMPTION"


def test_backtest_date_keeps_the_day_and_clamps_to_month_end() -> None:
    assert backtest_date(dt.date(2026, 11, 1), 1) == dt.date(2026, 10, 1)
    assert backtest_date(dt.date(2026, 3, 31), 1) == dt.date(2026, 2, 28)
    assert backtest_date(dt.date(2026, 1, 15), 2) == dt.date(2025, 11, 15)
    with pytest.raises(ValueError, match="at least 1"):
        backtest_date(dt.date(2026, 1, 15), 0)


def test_backtest_shards_stop_once_the_target_is_reached() -> None:
    # interval registers: shard 0 has 2, shard 1 has 1, shard 2 has 3 (basic ones do not count)
    regs = pl.DataFrame(
        {
            "meter_register_id": [1, 2, 3, 4, 5, 6, 7, 8],
            "shard": [0, 0, 1, 1, 2, 2, 2, 0],
            "interval_minutes": [30, 30, 30, None, 30, 30, 30, None],
        }
    )
    assert backtest_shards(regs, 4, 3) == [0, 1]  # 2 + 1 = 3
    assert backtest_shards(regs, 4, 4) == [0, 1, 2]
    assert backtest_shards(regs, 4, 100) == [0, 1, 2, 3]
    assert backtest_shards(regs, 4, 0) == [0, 1, 2, 3]


def _compared(rows: list[tuple]) -> pl.DataFrame:
    cols = ["meter_register_id", "fuel", "method", "segment", "stream", "unit", "days", "actual", "estimated"]
    return pl.DataFrame(rows, schema=cols, orient="row")


def test_backtest_metrics_by_hand() -> None:
    compared = _compared(
        [
            (1, "ELECTRICITY", "INTERVAL", SEG, "CONSUMPTION", "KWH", 31, 100.0, 110.0),
            (2, "ELECTRICITY", "INTERVAL", SEG, "CONSUMPTION", "KWH", 31, 50.0, 40.0),
            (3, "ELECTRICITY", "BASIC", "RES|NSW|GENERATION", "GENERATION", "KWH", 40, 10.0, 20.0),
            (4, "ELECTRICITY", "BASIC", SEG, "CONSUMPTION", "KWH", 40, 0.0, 5.0),
        ]
    )
    out = backtest_metrics(compared)
    rows = {(r["method"], r["segment"]): r for r in out.to_dicts()}
    # INTERVAL SEG: Σ est 150 = Σ act 150 → bias 0; MAPE = mean(10/100, 10/50) = 15 %; WAPE = 20/150
    r = rows[("INTERVAL", SEG)]
    assert (r["registers"], r["register_days"], r["actual_volume"], r["estimated_volume"]) == (
        2,
        62,
        150.0,
        150.0,
    )
    assert (r["bias_pct"], r["mape_pct"], r["wape_pct"]) == (0.0, 15.0, 13.33)
    # generation: (20 − 10)/10 = +100 %
    assert rows[("BASIC", "RES|NSW|GENERATION")]["bias_pct"] == 100.0
    # register 4 has no actual: no MAPE term; its segment's bias divides by 0 → null
    assert rows[("BASIC", SEG)]["bias_pct"] is None and rows[("BASIC", SEG)]["mape_pct"] is None
    # portfolio rows leave generation out: ALL/ALL = registers 1, 2, 4: act 150, est 155 → +3.33 %;
    # MAPE over registers 1 and 2 only = 15 %; WAPE = (10 + 10 + 5)/150 = 16.67 %
    r = rows[("ALL", "ALL")]
    assert (r["registers"], r["actual_volume"], r["estimated_volume"]) == (3, 150.0, 155.0)
    assert (r["bias_pct"], r["mape_pct"], r["wape_pct"]) == (3.33, 15.0, 16.67)
    assert rows[("BASIC", "ALL")]["registers"] == 1
    # segment rows first, then the method's ALL rows, then ALL/ALL
    assert out["segment"].to_list()[-3:] == ["ALL", "ALL", "ALL"] and out["method"][-1] == "ALL"


def _registers(interval_minutes: int | None, start: dt.date = dt.date(2025, 1, 1)) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_register_id": [7],
            "account_id": [70],
            "nmi": ["NMI0000007"],
            "suffix": ["E1"],
            "service_type": ["ELECTRICITY"],
            "stream": ["CONSUMPTION"],
            "time_class": ["ANYTIME"],
            "unit": ["KWH"],
            "customer_class": ["RES"],
            "jurisdiction": ["NSW"],
            "tni": [None],
            "installation_type": ["COMMS4" if interval_minutes else "BASIC"],
            "interval_minutes": [interval_minutes],
            "dial_digits": [None if interval_minutes else 5],
            "multiplier": [1.0],
            "register_start": [start],
            "register_end": [None],
        },
        schema_overrides={
            "interval_minutes": pl.Int64,
            "dial_digits": pl.Int64,
            "tni": pl.Utf8,
            "register_end": pl.Date,
        },
    )


def _days(first: dt.date, n: int, value: float, quality: str = "A" * 48) -> list[dict]:
    return [
        {
            "nmi": "NMI0000007",
            "suffix": "E1",
            "read_date": first + dt.timedelta(days=i),
            "interval_minutes": 30,
            "values": [value] * 48,
            "quality": quality,
        }
        for i in range(n)
    ]


def _store(rows: list[dict]) -> pl.LazyFrame:
    schema = {"nmi": pl.Utf8, "suffix": pl.Utf8, "read_date": pl.Date, "interval_minutes": pl.Int16,
              "values": pl.List(pl.Float64), "quality": pl.Utf8}  # fmt: skip
    return pl.DataFrame(rows, schema=schema).lazy()


def _flat_fixed(lo: dt.date, hi: dt.date, value: float = 1.0) -> pl.DataFrame:
    days = pl.date_range(lo, hi, "1d", eager=True)
    return pl.DataFrame(
        {
            "segment": [SEG] * len(days),
            "read_date": days,
            "profile": [[value] * 48] * len(days),
            "registers": [20] * len(days),
            "source": ["OWN"] * len(days),
        },
        schema_overrides={"registers": pl.UInt32},
    )


def test_interval_backtest_by_hand() -> None:
    # profile P = 1 kWh per half hour every day; the 28 days before B read 2 kWh per half hour
    # (all actual) → s_r(B) = (2·48·28) / (1·48·28) = 2.
    # After B: day B all actual at 3 → actual 144, estimate 2·48 = 96; day B+1: 24 actual half
    # hours at 1 and 24 missing (N) → actual 24, estimate on the same 24 half hours = 2·24 = 48.
    # Total: actual 168, estimated 144, 2 days.
    history = _store(_days(B - dt.timedelta(days=28), 28, 2.0))
    window = _store(_days(B, 1, 3.0) + _days(B + dt.timedelta(days=1), 1, 1.0, "A" * 24 + "N" * 24))
    fixed = _flat_fixed(B - dt.timedelta(days=400), B + dt.timedelta(days=30))
    out = interval_compare(_registers(30), history, window, fixed, B, B + dt.timedelta(days=30))
    assert out.select("meter_register_id", "method", "segment", "days", "actual", "estimated").rows() == [
        (7, "INTERVAL", SEG, 2, 168.0, 144.0)
    ]
    # a register that started on or after B is not back-tested (the run at B did not know it)
    assert interval_compare(_registers(30, start=B), history, window, fixed, B, B).height == 0


def test_basic_backtest_by_hand() -> None:
    # reads: B−90 index 0, B−30 index 300, B+10 index 480 (all actual), dial 5 digits.
    # At B the register's only pair is (B−90, B−30): 300 over 60 days on a flat macro M = 1 per day
    # → scalar s_r = 300 / 60 = 5. Its last read before B is B−30; the pair (B−30, B+10) is now
    # measured: 180 over 40 days. The estimate as at B over those 40 days = 5 · 40 = 200.
    reads = pl.DataFrame(
        {
            "meter_register_id": [7, 7, 7],
            "read_date": [B - dt.timedelta(days=90), B - dt.timedelta(days=30), B + dt.timedelta(days=10)],
            "index_value": [0.0, 300.0, 480.0],
            "quality": ["A", "A", "A"],
        }
    )
    days = pl.date_range(B - dt.timedelta(days=400), B + dt.timedelta(days=30), "1d", eager=True)
    macro = pl.DataFrame({"segment": SEG, "read_date": days, "daily": 1.0, "w": 0.0, "wh": 0.0, "b": 1.0})
    gas = pl.DataFrame(
        schema={"jurisdiction": pl.Utf8, "read_date": pl.Date, "daily": pl.Float64, "w": pl.Float64}
    )
    out = basic_compare(_registers(None), reads, macro, gas, B, "scalar")
    assert out.select("meter_register_id", "method", "segment", "days", "actual").rows() == [
        (7, "BASIC", SEG, 40, 180.0)
    ]
    assert out["estimated"][0] == pytest.approx(200.0)
    # the next read is an estimate (E): no actual pair to compare with → nothing back-tested
    est_read = reads.with_columns(quality=pl.Series(["A", "A", "E"]))
    assert basic_compare(_registers(None), est_read, macro, gas, B, "scalar").height == 0


def _trueup_inputs() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    accounts = pl.DataFrame(
        {
            "account_id": [1, 2],
            "service_type": ["ELECTRICITY", "GAS"],
            "jurisdiction": ["NSW", "VIC"],
            "customer_class": ["RES", "BUS"],
            "journal_segment": ["RESIDENTIAL", "SME"],
            "unbilled_from": [dt.date(2026, 9, 16), dt.date(2026, 10, 1)],
            "unbilled_to": [dt.date(2026, 10, 31), dt.date(2026, 10, 31)],
        }
    )
    accrued = pl.DataFrame(
        {
            "account_id": [1, 1, 2],
            "year_mnth": [202609, 202610, 202610],
            "volume": [150.0, 310.0, 1000.0],
            "supply_net": [15.0, 31.0, 10.0],
            "usage_net": [30.0, 62.0, 40.0],
        }
    )
    billed = pl.DataFrame(
        {
            "account_id": [1, 1],
            "item_type": ["SUPPLY", "USAGE"],
            "period_start": [dt.date(2026, 9, 16)] * 2,
            "period_end": [dt.date(2026, 10, 15)] * 2,
            "quantity": [30.0, 300.0],
            "net_amount": [30.0, 60.0],
            "discount_amount": [0.0, 6.0],
        }
    )
    return accounts, accrued, billed


def test_trueup_by_hand_flat_days() -> None:
    # Account 1 accrued 16 Sep … 31 Oct; billed since up to 15 Oct → covered 16 Sep … 15 Oct (30 days).
    # Accrued for the covered days: September whole (150 kWh, 15 + 30 = 45 $) + October 15/31 of
    # (310 kWh, 31 + 62 $) = 150 kWh, 45 $ → 300 kWh, 90 $. Billed: both lines inside the covered
    # days: 300 kWh, 30 + (60 − 6) = 84 $. Difference 6 $ = 7.14 % of billed; total accrued 138 $.
    # Account 2 has no invoice since: no covered day, accrued total 50 $.
    out = trueup_rows(*_trueup_inputs())
    rows = {(r["fuel"], r["segment"]): r for r in out.to_dicts()}
    r = rows[("ELECTRICITY", "RESIDENTIAL")]
    assert (r["accounts"], r["accounts_billed"], r["covered_days"]) == (1, 1, 30)
    assert (r["accrued_volume"], r["billed_volume"], r["volume_difference"], r["volume_difference_pct"]) == (
        300.0, 300.0, 0.0, 0.0,
    )  # fmt: skip
    assert (r["accrued_net"], r["billed_net"], r["net_difference"], r["net_difference_pct"]) == (
        90.0, 84.0, 6.0, 7.14,
    )  # fmt: skip
    assert r["accrued_net_total"] == 138.0
    g = rows[("GAS", "SME")]
    assert (g["accounts_billed"], g["covered_days"], g["accrued_volume"], g["billed_volume"]) == (
        0,
        0,
        0.0,
        0.0,
    )
    assert g["volume_difference_pct"] is None and g["accrued_net_total"] == 50.0
    # portfolio: money adds across fuels, volumes (kWh + MJ) do not
    p = rows[("ALL", "ALL")]
    assert (p["accounts"], p["accrued_net"], p["billed_net"], p["accrued_net_total"]) == (
        2,
        90.0,
        84.0,
        188.0,
    )
    assert p["accrued_volume"] is None
    assert out["fuel"].to_list() == ["ELECTRICITY", "GAS", "ELECTRICITY", "GAS", "ALL"]


def test_trueup_spreads_usage_by_the_daily_shape() -> None:
    # One usage line 1 Oct … 29 Nov (60 days, 600 kWh, 120 $) against an accrual to 31 Oct:
    # covered days = 1 … 31 Oct. Flat: 600 · 31/60 = 310 kWh. With day weights 2 in October and 1 in
    # November: Σ line = 31·2 + 29·1 = 91, Σ overlap = 62 → 600 · 62/91 = 408.791 kWh,
    # 120 · 62/91 = 81.76 $. The supply line stays by days: 60 $ · 31/60 = 31 $.
    accounts, accrued, _ = _trueup_inputs()
    accounts = accounts.filter(pl.col("account_id") == 1).with_columns(unbilled_from=dt.date(2026, 10, 1))
    accrued = accrued.filter((pl.col("account_id") == 1) & (pl.col("year_mnth") == 202610))
    billed = pl.DataFrame(
        {
            "account_id": [1, 1],
            "item_type": ["USAGE", "SUPPLY"],
            "period_start": [dt.date(2026, 10, 1)] * 2,
            "period_end": [dt.date(2026, 11, 29)] * 2,
            "quantity": [600.0, 60.0],
            "net_amount": [120.0, 60.0],
            "discount_amount": [0.0, 0.0],
        }
    )
    flat = trueup_rows(accounts, accrued, billed).row(0, named=True)
    assert flat["billed_volume"] == 310.0 and flat["billed_net"] == 62.0 + 31.0
    days = pl.date_range(dt.date(2026, 9, 1), dt.date(2026, 11, 30), "1d", eager=True)
    shapes = pl.DataFrame(
        {
            "fuel": "ELECTRICITY",
            "jurisdiction": "NSW",
            "customer_class": "RES",
            "read_date": days,
            "weight": [2.0 if d.month == 10 else 1.0 for d in days],
        }
    )
    shaped = trueup_rows(accounts, accrued, billed, shapes).row(0, named=True)
    assert shaped["billed_volume"] == 408.791 and shaped["billed_net"] == 81.76 + 31.0
    # the accrual covers whole October: accrued unchanged by the shape
    assert shaped["accrued_volume"] == 310.0 and shaped["accrued_net"] == 93.0


def _insert(url: str, table: str, rows: list[dict]) -> None:
    from sql.schema import metadata
    from tasks.adapters.db import transaction

    with transaction(url) as c:
        c.execute(metadata.tables[table].insert(), rows)


def test_trueup_from_the_database_and_no_earlier_run(db_url: str) -> None:
    from tasks.adapters.db import engine_for, init_db

    init_db(db_url)
    r = dt.date(2026, 11, 1)
    # no earlier run: empty table, no error
    rows, previous = trueup_from_database(db_url, r)
    assert previous is None and rows.height == 0
    # the previous run (1 Oct) accrued account 1 (the flat hand example above) …
    accounts, accrued, _ = _trueup_inputs()
    _insert(db_url, "jurisdiction", [{"id": 1, "code": "NSW", "timezone": "Australia/Sydney"}])
    _insert(db_url, "journal_segment", [{"id": 1, "name": "RESIDENTIAL"}])
    _insert(db_url, "account", [{"id": 1, "account_number": "A1", "customer_class": "RES", "journal_segment_id": 1,
                                  "service_type": "ELECTRICITY", "billing_cycle_months": 1,
                                  "open_date": dt.date(2020, 1, 1)}])  # fmt: skip
    common = {"run_id": "prev", "run_date": dt.date(2026, 10, 1), "account_id": 1, "account_number": "A1"}
    _insert(db_url, "bua_account_summary", [{**common, "service_type": "ELECTRICITY", "jurisdiction": "NSW",
             "customer_class": "RES", "journal_segment": "RESIDENTIAL", "unbilled_from": dt.date(2026, 9, 16),
             "unbilled_to": dt.date(2026, 10, 31), "unbilled_days": 46, "ili_state": "UNBILLED_NOT_DUE",
             "estimation_method": "INTERVAL", "volume": 460, "volume_actual": 0, "volume_estimated": 460,
             "net_amount": 138, "discount_net": 0, "discount_net_propensity": 0, "net_amount_less_discount": 138,
             "exception_count": 0}])  # fmt: skip
    line = {**common, "ili_state": "UNBILLED_NOT_DUE", "discount_state": "NONE", "time_class_name": "ANYTIME",
            "quantity_actual": 0, "discount_net": 0, "discount_net_propensity": 0, "gst_amount": 0}  # fmt: skip
    _insert(db_url, "invoice_line_item_monthly", [
        {**line, "year_mnth": 202609, "plan_item_type_name": "DAILY_RETAIL", "feature_type_name": "SUPPLY",
         "unit": "DAY", "quantity": 15, "quantity_estimated": 15, "net_amount": 15},
        {**line, "year_mnth": 202609, "plan_item_type_name": "USAGE_RETAIL", "feature_type_name": "USAGE",
         "unit": "KWH", "quantity": 150, "quantity_estimated": 150, "net_amount": 30},
        {**line, "year_mnth": 202610, "plan_item_type_name": "DAILY_RETAIL", "feature_type_name": "SUPPLY",
         "unit": "DAY", "quantity": 31, "quantity_estimated": 31, "net_amount": 31},
        {**line, "year_mnth": 202610, "plan_item_type_name": "USAGE_RETAIL", "feature_type_name": "USAGE",
         "unit": "KWH", "quantity": 310, "quantity_estimated": 310, "net_amount": 62},
    ])  # fmt: skip
    # … and since then: one ISSUED invoice (issued 20 Oct) and a REVERSED one that must not count
    inv = {"account_id": 1, "period_start": dt.date(2026, 9, 16), "period_end": dt.date(2026, 10, 15),
           "net_amount": 84, "gst_amount": 8.4, "due_date": dt.date(2026, 11, 5)}  # fmt: skip
    _insert(db_url, "invoice", [
        {**inv, "id": 1, "invoice_number": "I1", "issue_date": dt.date(2026, 10, 20), "status": "ISSUED"},
        {**inv, "id": 2, "invoice_number": "I2", "issue_date": dt.date(2026, 10, 18), "status": "REVERSED"},
    ])  # fmt: skip
    il = {"period_start": dt.date(2026, 9, 16), "period_end": dt.date(2026, 10, 15), "time_class": "ANYTIME"}
    _insert(db_url, "invoice_line", [
        {**il, "invoice_id": i, "item_type": "SUPPLY", "quantity": 30, "rate": 1, "net_amount": 30, "discount_amount": 0}
        for i in (1, 2)
    ] + [
        {**il, "invoice_id": i, "item_type": "USAGE", "quantity": 300, "rate": 0.2, "net_amount": 60, "discount_amount": 6}
        for i in (1, 2)
    ])  # fmt: skip
    rows, previous = trueup_from_database(db_url, r)
    assert previous == dt.date(2026, 10, 1)
    got = rows.filter(pl.col("segment") == "RESIDENTIAL").row(0, named=True)
    # the flat hand example: 300 / 300 kWh, 90 / 84 $, 138 $ accrued in all
    assert (got["accrued_volume"], got["billed_volume"], got["accrued_net"], got["billed_net"]) == (
        300.0, 300.0, 90.0, 84.0,
    )  # fmt: skip
    assert got["accrued_net_total"] == 138.0 and got["accrual_run_date"] == dt.date(2026, 10, 1)
    # written and replaced by run date (twice → one copy)
    empty_bt = pl.DataFrame(schema={"backtest_date": pl.Date})
    for _ in range(2):
        counts = write_validation(db_url, "run", r, {"bua_backtest": empty_bt.head(0), "bua_trueup": rows})
    assert counts == {"bua_backtest": 0, "bua_trueup": rows.height}
    with engine_for(db_url).connect() as c:
        n = c.execute(sa.text("SELECT COUNT(*) FROM bua_trueup WHERE run_date = :d"), {"d": r}).scalar_one()
        net = c.execute(
            sa.text("SELECT billed_net FROM bua_trueup WHERE segment = 'RESIDENTIAL' AND run_date = :d"),
            {"d": r},
        ).scalar_one()
    assert n == rows.height and float(net) == 84.0


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tasks.generate import generate

    out = tmp_path_factory.mktemp("portfolio")
    generate(out, accounts=150, seed=11, months=13)
    return out


@pytest.mark.slow
def test_validation_phase_on_a_generated_portfolio(portfolio: Path, tmp_path: Path, harness: str) -> None:
    from tasks.adapters.db import engine_for
    from tasks.settings import Settings
    from tests.engine import accrue
    from tests.portfolio import load_generated

    s = Settings(
        database_url=f"sqlite:///{tmp_path}/bua.db",
        meter_store=str(tmp_path / "ms"),
        output_url=str(tmp_path / "out"),
        shards=2,
        slack_webhook_url=None,
    )
    load_generated(portfolio, s)
    first, second = dt.date(2026, 10, 1), dt.date(2026, 11, 1)
    accrue(s, first)
    csv1 = Path(s.output_url) / "export" / "csv" / first.isoformat()
    # no earlier run: the true-up CSV is a header only
    assert (csv1 / "bua_trueup.csv").read_text().startswith("run_id,run_date,accrual_run_date,fuel,segment,")
    assert pl.read_csv(csv1 / "bua_trueup.csv").height == 0
    result = accrue(s, second)
    csv = Path(s.output_url) / "export" / "csv" / second.isoformat()
    bt = pl.read_csv(csv / "bua_backtest.csv", try_parse_dates=True)
    tu = pl.read_csv(csv / "bua_trueup.csv", try_parse_dates=True)
    assert set(bt["run_id"]) == {result["run_id"]} and set(tu["run_id"]) == {result["run_id"]}
    assert set(bt["backtest_date"]) == {first} and set(bt["window_to"]) == {dt.date(2026, 10, 31)}
    # both methods are back-tested; ALL rows add up their methods' rows
    elec = bt.filter(pl.col("fuel") == "ELECTRICITY")
    by = {(r["method"], r["segment"]): r for r in elec.to_dicts()}
    assert by[("INTERVAL", "ALL")]["registers"] > 10 and by[("BASIC", "ALL")]["registers"] > 3
    assert (
        by[("ALL", "ALL")]["registers"]
        == by[("INTERVAL", "ALL")]["registers"] + by[("BASIC", "ALL")]["registers"]
    )
    assert by[("ALL", "ALL")]["actual_volume"] == pytest.approx(
        by[("INTERVAL", "ALL")]["actual_volume"] + by[("BASIC", "ALL")]["actual_volume"], abs=0.002
    )
    # true-up against the run of 1 Oct: its whole accrual is that run's net less propensity discount
    with engine_for(s.db_url).connect() as c:
        prev_net = c.execute(
            sa.text(
                "SELECT SUM(net_amount - discount_net_propensity) FROM invoice_line_item_monthly WHERE run_date = :d"
            ),
            {"d": first},
        ).scalar_one()
        prev_accounts = c.execute(
            sa.text("SELECT COUNT(*) FROM bua_account_summary WHERE run_date = :d"), {"d": first}
        ).scalar_one()
    total = tu.filter((pl.col("fuel") == "ALL") & (pl.col("segment") == "ALL")).row(0, named=True)
    assert set(tu["accrual_run_date"]) == {first}
    assert total["accounts"] == prev_accounts and 0 < total["accounts_billed"] <= prev_accounts
    assert total["accrued_net_total"] == pytest.approx(float(prev_net), abs=0.01)
    assert total["net_difference"] == pytest.approx(total["accrued_net"] - total["billed_net"], abs=0.011)
    # re-run → same bytes, one copy of the rows
    before = {
        p.name: p.read_bytes() for p in csv.iterdir() if p.name.startswith(("bua_backtest", "bua_trueup"))
    }
    accrue(s, second, refresh=True)
    after = {
        p.name: p.read_bytes() for p in csv.iterdir() if p.name.startswith(("bua_backtest", "bua_trueup"))
    }
    assert after == before and set(before) == {"bua_backtest.csv", "bua_trueup.csv"}
    with engine_for(s.db_url).connect() as c:
        n = c.execute(
            sa.text("SELECT COUNT(*) FROM bua_backtest WHERE run_date = :d"), {"d": second}
        ).scalar_one()
    assert n == bt.height


def test_validation_cache_key_follows_the_previous_runs_accrual(db_url: str, tmp_path: Path) -> None:
    """The true-up reads the previous run date's bua_account_summary, which no work file covers: it is
    the source dataset ``previous_accrual``, whose fingerprint (count and sums of those rows) is in the
    validation phase's cache key — re-running the earlier run date with another result makes a later
    run's validation recompute; no other phase reads it."""
    from flows.fingerprints import cache_key, source_fingerprints
    from flows.phase_tasks import inputs_of
    from tasks.adapters.db import init_db, transaction
    from tasks.adapters.validation_tables import previous_run_fingerprint
    from tasks.pipeline.graph import PHASES, phase_named, upstream
    from tasks.pipeline.spec import resolve_run
    from tasks.settings import Settings

    init_db(db_url)
    r = dt.date(2026, 11, 1)
    s = Settings(database_url=db_url, meter_store=str(tmp_path / "ms"), output_url=str(tmp_path / "out"))
    spec = resolve_run(s, r)
    deps = upstream(PHASES)
    assert [p.name for p in PHASES if "previous_accrual" in p.reads] == ["validation"]

    def key(phase: str) -> str:
        sources = source_fingerprints(spec, s)
        return cache_key(spec, s, phase, None, inputs_of(phase_named(phase), None, {}, sources, deps[phase]))

    no_earlier, report_key = key("validation"), key("report")
    assert previous_run_fingerprint(db_url, r) == []
    row = {"run_id": "prev", "run_date": dt.date(2026, 10, 1), "account_id": 1, "account_number": "A1",
           "service_type": "ELECTRICITY", "jurisdiction": "NSW", "customer_class": "RES",
           "journal_segment": "RESIDENTIAL", "unbilled_from": dt.date(2026, 9, 16),
           "unbilled_to": dt.date(2026, 10, 31), "unbilled_days": 46, "ili_state": "UNBILLED_NOT_DUE",
           "estimation_method": "INTERVAL", "volume": 460, "volume_actual": 0, "volume_estimated": 460,
           "net_amount": 138, "discount_net": 0, "discount_net_propensity": 0, "net_amount_less_discount": 138,
           "exception_count": 0}  # fmt: skip
    _insert(db_url, "bua_account_summary", [row])
    # one row of 1 Oct: count 1, and the sums are that row's own net 138, volume 460, 46 days
    assert previous_run_fingerprint(db_url, r) == ["2026-10-01", "1", "138.0", "460.0", "46"]
    with_earlier = key("validation")
    assert with_earlier != no_earlier and key("validation") == with_earlier  # stable while nothing changes
    assert key("report") == report_key  # only validation reads earlier runs
    # rows of the run date itself are not "previous": the key stays
    _insert(db_url, "bua_account_summary", [{**row, "run_id": "this", "run_date": r, "net_amount": 999}])
    assert key("validation") == with_earlier
    # 1 Oct re-run with another accrual (net 140): a later run's cached true-up must not be reused
    with transaction(db_url) as c:
        c.execute(sa.text("UPDATE bua_account_summary SET net_amount = 140 WHERE run_id = 'prev'"))
    assert previous_run_fingerprint(db_url, r)[2] == "140.0"
    assert key("validation") not in (with_earlier, no_earlier)
