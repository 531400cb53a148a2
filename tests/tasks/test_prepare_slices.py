"""Prepare writes the account-ordered output tables in slices (issue 14): the same rows in the same order
as the one sort of every shard's rows, on SQLite, MariaDB and PostgreSQL; a failing slice leaves the
tables as they were."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
import sqlalchemy as sa

from tasks.adapters.db import engine_for, init_db
from tasks.adapters.prepare import read_outputs, write_outputs
from tasks.adapters.row_slices import ShardRows, read_slices, spill
from tasks.pipeline.datasets import PhaseContext
from tasks.pipeline.phases import outputs

R = dt.date(2026, 11, 1)

# Two shards whose accounts interleave (shards are hash partitioned): shard 0 holds accounts 1, 3, 6
# (account 3 has two lines, $3.10 then $3.20), shard 1 accounts 2, 4, 5; neither shard is sorted.
SHARD_ACCOUNTS = [[3, 1, 3, 6], [5, 2, 4]]
SHARD_AMOUNTS = [[3.1, 1.0, 3.2, 6.0], [5.0, 2.0, 4.0]]
# By hand: sorted by account, each account's lines in their shard's order.
EXPECTED = [(1, 1.0), (2, 2.0), (3, 3.1), (3, 3.2), (4, 4.0), (5, 5.0), (6, 6.0)]


def _lines(
    accounts: list[int], amounts: list[float], ili_state: str | None = "UNBILLED_NOT_DUE"
) -> pl.DataFrame:
    n = len(accounts)
    return pl.DataFrame(
        {
            "account_id": accounts,
            "account_number": [f"A{a}" for a in accounts],
            "year_mnth": [202610] * n,
            "ili_state": [ili_state] * n,
            "discount_state": ["NONE"] * n,
            "plan_item_type_name": ["USAGE_RETAIL"] * n,
            "feature_type_name": ["USAGE"] * n,
            "time_class_name": ["ANYTIME"] * n,
            "unit": ["KWH"] * n,
            "quantity": [10.0] * n,
            "quantity_actual": [10.0] * n,
            "quantity_estimated": [0.0] * n,
            "net_amount": amounts,
            "discount_net": [0.0] * n,
            "discount_net_propensity": [0.0] * n,
            "gst_amount": [0.0] * n,
        },
        schema_overrides={"ili_state": pl.String},
    )


def _totals(accounts: list[int]) -> pl.DataFrame:
    n = len(accounts)
    return pl.DataFrame(
        {
            "account_id": accounts,
            "account_number": [f"A{a}" for a in accounts],
            "service_type": ["ELECTRICITY"] * n,
            "jurisdiction": ["NSW"] * n,
            "journal_segment": ["RESIDENTIAL"] * n,
            "unbilled_days": [31] * n,
            "ili_state": ["UNBILLED_NOT_DUE"] * n,
            "estimation_method": ["INTERVAL"] * n,
            "volume": [10.0] * n,
            "volume_actual": [10.0] * n,
            "volume_estimated": [0.0] * n,
            "net_amount": [1.0] * n,
            "discount_net": [0.0] * n,
            "discount_net_propensity": [0.0] * n,
            "net_amount_less_discount": [1.0] * n,
        }
    )


def _exceptions() -> pl.DataFrame:
    # account 3: two exceptions → exception_count 2; every other account 0
    return pl.DataFrame(
        {
            "account_id": [3, 3],
            "meter_register_id": [None, None],
            "code": ["NO_PLAN", "NO_RATE"],
            "detail": ["x", "y"],
        },
        schema_overrides={"meter_register_id": pl.Int64},
    )


def _frames(lines: list[pl.DataFrame]) -> dict:
    totals = [_totals([1, 3, 6]), _totals([2, 4, 5])]
    # slices of 2 accounts: {1, 2}, {3, 4}, {5, 6}
    out = outputs.prepare(
        PhaseContext(None, None), _exceptions(), totals, lines, [pl.DataFrame()], slice_accounts=2
    )  # type: ignore[arg-type]
    return out["output_tables"]


def _shard_lines() -> list[pl.DataFrame]:
    return [_lines(a, m) for a, m in zip(SHARD_ACCOUNTS, SHARD_AMOUNTS, strict=True)]


def _stored_order(url: str, table: str, cols: str) -> list[tuple]:
    """The table's rows in storage order: SQLite's rowid, PostgreSQL's ctid, InnoDB's clustered
    (insertion) order of a table without a primary key."""
    order = {"sqlite": " ORDER BY rowid", "postgresql": " ORDER BY ctid"}
    with engine_for(url).connect() as c:
        order_by = order.get(c.dialect.name, "")
        return [tuple(r) for r in c.execute(sa.text(f"SELECT {cols} FROM {table}{order_by}"))]


def test_slices_are_the_sorted_rows_split_by_account(tmp_path) -> None:  # noqa: ANN001
    rows = ShardRows(_shard_lines(), by="account_id", bounds=pl.Series([3, 5]))
    got = [df.select("account_id", "net_amount").rows() for df in read_slices(spill(rows, str(tmp_path)))]
    # by hand: bounds 3 and 5 → accounts below 3, 3–4, 5 and up
    assert got == [EXPECTED[:2], EXPECTED[2:5], EXPECTED[5:]]
    # the unsliced order (the one stable sort of both shards, as export and the old prepare do)
    whole = outputs.output_frames(_exceptions(), [_totals([1, 3, 6]), _totals([2, 4, 5])], _shard_lines(), [])
    assert whole["invoice_line_item_monthly"].select("account_id", "net_amount").rows() == EXPECTED


def test_sliced_write_keeps_the_account_order(db_url: str) -> None:
    init_db(db_url)
    counts = write_outputs(db_url, "run-1", R, _frames(_shard_lines()))
    assert counts["invoice_line_item_monthly"] == 7 and counts["bua_account_summary"] == 6
    stored = _stored_order(db_url, "invoice_line_item_monthly", "account_id, net_amount")
    assert [(a, float(m)) for a, m in stored] == EXPECTED
    # bua_account_summary: accounts 1..6 in order; exception_count 2 for account 3 (two exceptions)
    summary = _stored_order(db_url, "bua_account_summary", "account_id, exception_count")
    assert summary == [(1, 0), (2, 0), (3, 2), (4, 0), (5, 0), (6, 0)]
    # accrual_summary: one group (NSW, USAGE): net 1+2+3.1+3.2+4+5+6 = 24.30 over 6 accounts
    s = read_outputs(db_url, R, ("accrual_summary",))["accrual_summary"]
    assert s.height == 1 and float(s["net_amount"][0]) == 24.30 and s["accounts"][0] == 6


def test_a_failing_slice_leaves_the_tables_as_they_were(db_url: str) -> None:
    init_db(db_url)
    write_outputs(db_url, "run-1", R, _frames(_shard_lines()))
    before = {t: _stored_order(db_url, t, "*") for t in ("invoice_line_item_monthly", "bua_account_summary")}
    # account 4's line (shard 1) breaks NOT NULL: the middle slice {3, 4} fails after slice {1, 2} went in
    bad = [_lines(SHARD_ACCOUNTS[0], SHARD_AMOUNTS[0]), pl.concat([
        _lines([5, 2], [5.0, 2.0]), _lines([4], [4.0], ili_state=None)])]  # fmt: skip
    with pytest.raises(Exception):  # noqa: B017 — the driver's own integrity error type differs per database
        write_outputs(db_url, "run-2", R, _frames(bad))
    after = {t: _stored_order(db_url, t, "*") for t in before}
    assert after == before and {r[0] for r in after["invoice_line_item_monthly"]} == {"run-1"}
    s = read_outputs(db_url, R, ("accrual_summary",))["accrual_summary"]
    assert s.height == 1 and set(s["run_id"]) == {"run-1"}


def test_every_slice_has_the_whole_concatenations_columns_and_types(tmp_path) -> None:  # noqa: ANN001
    # shard 0: account 1 with an integer amount; shard 1: account 2 with a float amount and a note.
    # Concatenated whole ("diagonal_relaxed"), amount is Float64 and note exists (null for account 1);
    # the slice of account 1 alone (bounds [2]) must be typed the same, not Int64 without a note.
    shards = [pl.DataFrame({"account_id": [1], "amount": [3]}),
              pl.DataFrame({"account_id": [2], "amount": [2.5], "note": ["x"]})]  # fmt: skip
    got = list(read_slices(spill(ShardRows(shards, by="account_id", bounds=pl.Series([2])), str(tmp_path))))
    assert [df.schema for df in got] == [
        {"account_id": pl.Int64, "amount": pl.Float64, "note": pl.String}
    ] * 2
    assert [df.rows() for df in got] == [[(1, 3.0, None)], [(2, 2.5, "x")]]


def _export_files(tmp_path, slice_rows: int, max_rows: int, integration: bool = False) -> dict[str, str]:  # noqa: ANN001
    """The export phase's CSV files (name → text) for the two shards above, written by its sink."""
    from tasks.adapters.export import export_tables
    from tasks.pipeline.spec import resolve_run
    from tasks.settings import Settings

    settings = Settings(
        output_url=str(tmp_path / "out"), integration_url=str(tmp_path / "int") if integration else None
    )
    ctx = PhaseContext(resolve_run(settings, R), settings)
    reads = [
        pl.DataFrame({"meter_register_id": [m], "read_date": [R], "read_value": [float(m)]}) for m in (7, 5)
    ]
    summary = pl.DataFrame(
        {**{k: ["x"] for k in outputs.EXPORT_ORDER["accrual_summary"]}, "net_amount": [24.3]}
    )
    out = outputs.export(ctx, _exceptions(), [_totals([1, 3, 6]), _totals([2, 4, 5])], _shard_lines(), reads,
                         summary, slice_rows=slice_rows)  # fmt: skip
    dest = str(tmp_path / "out" / "csv")
    files = export_tables(out["csv_exports"], dest, settings, max_rows)
    return {f[len(str(tmp_path)) :]: open(f).read() for f in files}


def test_export_in_slices_writes_the_files_of_the_whole_sort(tmp_path) -> None:  # noqa: ANN001
    # slices of 2 accounts ({1, 2}, {3, 4}, {5, 6}) and files of 3 rows: the line items' 7 rows are
    # files of rows 1-3, 4-6, 7, crossing the slices' edges (rows 1-2 | 3-5 | 6-7 by slice)
    sliced = _export_files(tmp_path / "a", slice_rows=2, max_rows=3)
    whole = _export_files(tmp_path / "b", slice_rows=1_000, max_rows=3)  # one slice: the sort at once
    assert sliced == whole
    lines = [sliced[f"/out/csv/invoice_line_item_monthly-000{i}.csv"].splitlines() for i in (1, 2, 3)]
    assert [len(part) for part in lines] == [4, 4, 2]  # a header and 3, 3, 1 rows
    header = lines[0][0].split(",")
    account, amount = header.index("account_id"), header.index("net_amount")
    rows = [r.split(",") for part in lines for r in part[1:]]
    assert [(int(r[account]), float(r[amount])) for r in rows] == EXPECTED
    # the account summary: accounts 1..6 (3 + 3 rows), account 3's two exceptions counted
    summary = [sliced[f"/out/csv/bua_account_summary-000{i}.csv"].splitlines() for i in (1, 2)]
    col = summary[0][0].split(",").index("exception_count")
    assert [r.split(",")[col] for part in summary for r in part[1:]] == ["0", "0", "2", "0", "0", "0"]
    # estimated basic reads sorted by register: 5 (shard 1) before 7 (shard 0)
    reads = sliced["/out/csv/estimated_basic_read.csv"].splitlines()
    mrid = reads[0].split(",").index("meter_register_id")
    assert [r.split(",")[mrid] for r in reads[1:]] == ["5", "7"]
    # with an integration copy: the same bytes in both places
    copied = _export_files(tmp_path / "c", slice_rows=2, max_rows=3, integration=True)
    assert {k: v for k, v in copied.items() if k.startswith("/out/")} == sliced
    assert {k.replace("/int/", "/out/", 1): v for k, v in copied.items() if k.startswith("/int/")} == sliced


def test_export_of_no_rows_is_each_tables_header(tmp_path) -> None:  # noqa: ANN001
    from tasks.adapters.export import SlicedRows, export_tables
    from tasks.settings import Settings

    settings = Settings(output_url=str(tmp_path))
    empty = SlicedRows(ShardRows([pl.DataFrame({"account_id": [], "x": []}, schema={"account_id": pl.Int64, "x": pl.String})],
                                 by="account_id", bounds=pl.Series([], dtype=pl.Int64)), lambda df: df.sort("account_id"))  # fmt: skip
    written = export_tables({"t": empty}, str(tmp_path / "e"), settings, 2)
    assert [open(w).read() for w in written] == ["account_id,x\n"]
