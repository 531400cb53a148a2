"""The report's frames from the database: GROUP BYs computed there (rows never leave the database
but for the ~1,000-row accrual summary); tables that do not exist give None."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

import polars as pl

from tasks.pipeline import presentation as P

VALIDATION_TABLES = ("bua_backtest", "bua_trueup")
MONEY = ("net_amount", "discount_net_propensity", "net_amount_less_discount")


def _reflect(conn: Any, names: Sequence[str]) -> dict[str, Any]:
    """The tables of ``names`` the database has, with its columns, in its order, of its types.

    Only the columns are read (what ``autoload_with`` gives them), not keys, indexes, constraints
    and comments: full reflection costs PostgreSQL ~8 catalog queries per table, 18 tables a run
    (the report reads these frames three times), ~2 s of the report phase at 100k accounts on a
    busy machine (bench/scale.py --db postgresql).
    """
    import sqlalchemy as sa

    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    md = sa.MetaData()
    return {
        n: sa.Table(n, md, *(sa.Column(c["name"], c["type"]) for c in inspector.get_columns(n)))
        for n in names
        if n in present
    }


def _where(table: Any, run_date: dt.date, scenario: str) -> list[Any]:
    conds = [table.c.run_date == run_date]
    if "scenario" in table.c:  # the what-if column (SPEC §4.5); tables before it hold booked runs only
        conds.append(table.c.scenario == scenario)
    elif scenario:
        conds.append(False)  # no scenario column: no what-if rows
    return conds


def _frame(conn: Any, query: Any) -> pl.DataFrame:
    res = conn.execute(query)
    cols = list(res.keys())
    rows = res.fetchall()  # aggregates and the ~1,000-row summary, never per-account rows
    df = pl.DataFrame(
        {c: [r[i] for r in rows] for i, c in enumerate(cols)}, strict=False, infer_schema_length=None
    )
    return df.with_columns(pl.col(pl.Decimal).cast(pl.Float64))


REPORT_FRAMES = ("summary", "account_volumes", "exceptions", "backtest", "trueup", "prechecks", "comparison")


def read_report_frames(
    database_url: str, run_date: dt.date, scenario: str = "", only: Collection[str] = REPORT_FRAMES
) -> dict[str, pl.DataFrame | None]:
    """The frames :func:`render_report` takes, from the database (GROUP BYs; tables that do not
    exist give None): summary, account_volumes, exceptions, backtest, trueup, prechecks and, for a
    scenario, comparison (None when the booked run has no rows). ``only``: just those frames (the
    queries of the others are not run; the report, the Slack totals and the artifacts each read
    what they show)."""
    import sqlalchemy as sa

    from tasks.adapters.db import engine_for

    wanted = set(only)
    names = [
        name
        for name, frames in (
            ("accrual_summary", {"summary", "comparison"}),
            ("bua_account_summary", {"account_volumes"}),
            ("bua_exception", {"exceptions"}),
            ("bua_backtest", {"backtest", "trueup"}),
            ("bua_trueup", {"trueup"}),
            ("bua_precheck", {"prechecks"}),
        )
        if wanted & frames
    ]
    out: dict[str, pl.DataFrame | None] = {}
    with engine_for(database_url).connect() as conn:
        t = _reflect(conn, names)
        acc = t.get("accrual_summary")
        cols = (
            [c for c in acc.c if c.name not in ("run_id", "run_date", "scenario")] if acc is not None else []
        )
        if wanted & {"summary", "comparison"}:
            out["summary"] = _frame(
                conn, sa.select(*cols).where(*_where(acc, run_date, scenario)).order_by(*cols)
            )
        if "account_volumes" in wanted:
            summ = t["bua_account_summary"]
            keys = [
                summ.c.service_type,
                summ.c.jurisdiction,
                summ.c.journal_segment,
                summ.c.estimation_method,
            ]
            out["account_volumes"] = _frame(
                conn,
                sa.select(
                    summ.c.service_type.label("fuel"),
                    summ.c.jurisdiction.label("state"),
                    summ.c.journal_segment.label("segment"),
                    summ.c.estimation_method,
                    sa.func.count().label("accounts"),
                    sa.func.sum(summ.c.volume_actual).label("volume_actual"),
                    sa.func.sum(summ.c.volume_estimated).label("volume_estimated"),
                )
                .where(*_where(summ, run_date, scenario))
                .group_by(*keys)
                .order_by(*keys),
            )
        if "exceptions" in wanted:
            exc = t["bua_exception"]
            out["exceptions"] = _frame(
                conn,
                sa.select(exc.c.code, sa.func.count().label("count"))
                .where(*_where(exc, run_date, scenario))
                .group_by(exc.c.code)
                .order_by(exc.c.code),
            )
        for name, key in (
            ("bua_backtest", "backtest"),
            ("bua_trueup", "trueup"),
            ("bua_precheck", "prechecks"),
        ):
            if name not in names:
                continue
            table = t.get(name)
            if table is None:
                out[key] = None
                continue
            # ordered: the page must be the same bytes on a re-run, whatever order the database returns
            order = [c for c in table.c if c.name not in ("run_id", "run_date", "scenario")]
            df = _frame(conn, sa.select(table).where(*_where(table, run_date, scenario)).order_by(*order))
            df = df.drop("run_id", "run_date", "scenario", strict=False)
            # validation not run for this run date: None, so the report says so (not "no earlier run")
            out[key] = df if (df.height or key == "trueup") else None
        if out.get("trueup") is not None and out["trueup"].height == 0 and out.get("backtest") is None:
            out["trueup"] = None
        if "comparison" in wanted:
            out["comparison"] = None
            if scenario:
                booked = _frame(conn, sa.select(*cols).where(*_where(acc, run_date, "")).order_by(*cols))
                if booked.height:
                    out["comparison"] = P.compare_runs(out["summary"], booked)  # type: ignore[arg-type]
    return {k: out[k] for k in REPORT_FRAMES if k in wanted}


def figures(database_url: str, run_date: dt.date, scenario: str = "") -> dict[str, pl.DataFrame]:
    """The run's published accrual frames the report renders (summary, account_volumes,
    exceptions and, for a what-if, comparison), computed by the database. The pre-run checks come
    to the report as recorded (``prechecks``), the Slack totals from :func:`published_totals`."""
    f = read_report_frames(
        database_url, run_date, scenario, ("summary", "account_volumes", "exceptions", "comparison")
    )
    return {k: v for k, v in f.items() if v is not None}


def published_totals(database_url: str, run_date: dt.date, scenario: str = "") -> dict[str, pl.DataFrame]:
    """Only :func:`totals_frames` (the Slack "finished" message's), on a connection of its own."""
    from tasks.adapters.db import engine_for

    with engine_for(database_url).connect() as conn:
        return totals_frames(conn, run_date, scenario)


def account_count(database_url: str, run_date: dt.date, scenario: str = "") -> int | None:
    """How many accounts the run accrued (its bua_account_summary rows; None: no such table): the
    sum of :func:`read_report_frames`' account_volumes, without its GROUP BY."""
    import sqlalchemy as sa

    from tasks.adapters.db import engine_for

    with engine_for(database_url).connect() as conn:
        summ = _reflect(conn, ["bua_account_summary"]).get("bua_account_summary")
        if summ is None:
            return None
        return int(
            conn.execute(sa.select(sa.func.count()).where(*_where(summ, run_date, scenario))).scalar_one()
        )


def validation_figures(database_url: str, run_date: dt.date, scenario: str = "") -> dict[str, pl.DataFrame]:
    """The run date's bua_backtest and bua_trueup rows (absent: the validation phase did not run)."""
    f = read_report_frames(database_url, run_date, scenario, ("backtest", "trueup"))
    out: dict[str, pl.DataFrame] = {}
    if f["backtest"] is not None:
        out["bua_backtest"] = f["backtest"]
    if f["trueup"] is not None:
        out["bua_trueup"] = f["trueup"]
    return out


def totals_frames(conn: Any, run_date: dt.date, scenario: str = "") -> dict[str, pl.DataFrame]:
    """The run date's accrual by state and fuel, accounts by state and fuel and exceptions by code
    (the Slack "finished" message): aggregates computed by the database."""
    import sqlalchemy as sa

    from sql.schema import metadata

    acc = metadata.tables["accrual_summary"]
    summ = metadata.tables["bua_account_summary"]
    exc = metadata.tables["bua_exception"]
    out: dict[str, pl.DataFrame] = {}
    by = [acc.c.state, acc.c.fuel]
    out["by_state_fuel"] = _frame(
        conn,
        sa.select(
            *by, *(sa.func.sum(acc.c[m]).label(m) for m in MONEY), sa.func.sum(acc.c.volume).label("volume")
        )
        .where((acc.c.run_date == run_date) & (acc.c.scenario == scenario))
        .group_by(*by)
        .order_by(*by),
    )
    accounts_by = [summ.c.jurisdiction, summ.c.service_type]
    out["accounts_by_state_fuel"] = _frame(
        conn,
        sa.select(
            summ.c.jurisdiction.label("state"),
            summ.c.service_type.label("fuel"),
            sa.func.count().label("accounts"),
        )
        .where((summ.c.run_date == run_date) & (summ.c.scenario == scenario))
        .group_by(*accounts_by)
        .order_by(*accounts_by),
    )
    out["exceptions_by_code"] = _frame(
        conn,
        sa.select(exc.c.code, sa.func.count().label("count"))
        .where((exc.c.run_date == run_date) & (exc.c.scenario == scenario))
        .group_by(exc.c.code)
        .order_by(exc.c.code),
    )
    return out
