"""The console summary of `bua run` / `bua demo` in finance's language (docs/REPORT.md).

:func:`print_run_summary` is a function of the run's ``accrual_summary`` frame, the row counts,
the exceptions by code, the output locations (with the files actually there) and the measured
elapsed time; no I/O but the console (:func:`csv_files` lists the CSV folder for the caller).

- Figures are never cut: number columns never wrap and are at least as wide as their widest
  figure; only text columns (fuel, month, state) give way on a narrow terminal, and they fold
  onto a second line rather than end in ``…``.
- Months as ``2026-10``; usage in two columns, ``Usage (kWh)`` and ``Usage (MJ)``; subtotals by
  fuel and a total (kWh added to kWh and MJ to MJ only).
- The count of files written is the count of files found, and the time is the caller's wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from tasks.pipeline import presentation as P


def fuel_first(summary: pl.DataFrame, dim: str) -> pl.DataFrame:
    """The accrual by fuel and ``dim`` (month or state), fuel blocks each with a subtotal, then the
    total: Fuel, Month|State, Usage (kWh), Usage (MJ), Charges ($), Discounts ($), Accrual ($), row."""
    t = P.accrual_by(summary, ["fuel", dim])
    header = P.DIMENSIONS[dim][1]
    out = P.with_totals(t, ["Fuel", header], subtotal_by="Fuel")
    return out.with_columns(
        pl.when(pl.col("row") == "subtotal").then(pl.lit("all")).otherwise(pl.col(header)).alias(header),
        pl.when(pl.col("row") == "subtotal")
        .then(pl.col("Fuel") + " subtotal")
        .otherwise(pl.col("Fuel"))
        .alias("Fuel"),
    )


def rich_table(df: pl.DataFrame, title: str) -> Table:
    """A rich table of a display frame whose figures are never truncated (see the module doc)."""
    show = df.drop("row", strict=False)
    kinds = df["row"].to_list() if "row" in df.columns else ["detail"] * df.height
    rows = P.display_rows(show)
    table = Table(title=title, title_justify="left")
    for i, (col, dtype) in enumerate(show.schema.items()):
        widest = max([len(r[i]) for r in rows] + [1])
        if dtype.is_numeric():
            # the header may wrap (at its spaces), a figure never: the column is as wide as the widest
            table.add_column(col, justify="right", no_wrap=True, min_width=widest, overflow="fold")
        else:
            table.add_column(col, overflow="fold")
    for kind, cells in zip(kinds, rows, strict=True):
        style = {"subtotal": "italic", "total": "bold"}.get(kind)
        table.add_row(*cells, style=style, end_section=kind == "subtotal")
    return table


def print_table(console: Console, df: pl.DataFrame, title: str) -> None:
    """Print the table so that no figure is cut: as is when it fits the console; on a narrower
    terminal as two tables (usage, then money) with the same labels; wider than the console when even
    those do not fit, or when the output is a file or a pipe (no width to respect there)."""
    labels = [c for c, t in df.drop("row", strict=False).schema.items() if not t.is_numeric()]
    table = rich_table(df, title)
    needed = _width(console, table)
    if needed <= console.width:
        console.print(table)
        return
    if not console.is_terminal:
        _print_wide(console, table, needed)
        return
    usage = [c for c in df.columns if c.startswith("Usage")]
    money = [c for c in df.columns if c not in labels and c not in usage and c != "row"]
    keep = ["row"] if "row" in df.columns else []
    for part, name in ((usage, "usage"), (money, "money")):
        t = rich_table(df.select(*labels, *part, *keep), f"{title}: {name}")
        _print_wide(console, t, _width(console, t))


def _print_wide(console: Console, table: Table, width: int) -> None:
    """Print at ``width`` columns even past the console's width (rich's print(width=) only narrows)."""
    before = console.width
    console.width = max(before, width)
    try:
        console.print(table)
    finally:
        console.width = before


def _width(console: Console, table: Table) -> int:
    """The width the table takes with no limit (every cell on one line)."""
    return table.__rich_measure__(console, console.options.update_width(100_000)).maximum


def csv_files(settings: Any, run_date: Any, scenario: str = "") -> list[str]:
    """The CSV files in the run's export folder (what was written, counted rather than assumed)."""
    from tasks.adapters.storage import list_files
    from tasks.pipeline.report import csv_dir_url

    files = list_files(csv_dir_url(settings, run_date, scenario), settings, suffix=".csv")
    return [f for f in files if scenario or "/scenario=" not in f]


def print_run_summary(
    console: Console,
    summary: pl.DataFrame,
    *,
    run_date: str,
    run_id: str,
    status: str,
    counts: Mapping[str, int],
    exceptions_by_code: Mapping[str, int],
    elapsed_seconds: float,
    database: str,
    csv_dir: str,
    csv_files: Sequence[str],
    report: str | None = None,
    nem12_dir: str | None = None,
    nem12_files: int = 0,
    scenario: str = "",
) -> None:
    """Print the run's accrual by month and by state (fuel subtotals, total), counts and where the
    outputs are. ``database`` must be redacted already (tasks.adapters.db.redact_url)."""
    what = f"what-if “{scenario}” (not booked)" if scenario else "booked"
    if summary.height:
        note = "ex GST; discounts weighted by the likelihood they are earned; accrual = charges − discounts"
        print_table(
            console, fuel_first(summary, "month"), f"Accrual as at {run_date}, {what}, by month ({note})"
        )
        print_table(console, fuel_first(summary, "state"), f"Accrual as at {run_date}, {what}, by state")
    else:
        console.print("no unbilled accounts: the accrual is empty")
    rows = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    console.print(f"run {run_id} {status}; rows written: {rows}", soft_wrap=True)
    if exceptions_by_code:
        total = sum(exceptions_by_code.values())
        console.print(
            f"exceptions: {total:,} ("
            + ", ".join(
                f"{k} {v:,}" for k, v in sorted(exceptions_by_code.items(), key=lambda kv: (-kv[1], kv[0]))
            )
            + ")",
            soft_wrap=True,
        )
    # paths are copied from the terminal: never wrapped
    console.print(
        f"tables: {database} (run_date {run_date}{', scenario ' + scenario if scenario else ''})",
        soft_wrap=True,
    )
    n = len(csv_files)
    console.print(f"CSV: {csv_dir}/ ({n} file{'s' if n != 1 else ''})", soft_wrap=True)
    if nem12_dir and nem12_files:
        console.print(
            f"NEM12 estimates: {nem12_dir}/ ({nem12_files:,} file{'s' if nem12_files != 1 else ''})",
            soft_wrap=True,
        )
    if report:
        console.print(f"report: {report}", soft_wrap=True)
    console.print(f"took {elapsed_seconds:.1f} s")


def _get(result: Any, key: str, default: Any = None) -> Any:
    if isinstance(result, Mapping):
        return result.get(key, default)
    return getattr(result, key, default)


def print_from_result(
    console: Console, result: Any, settings: Any, elapsed_seconds: float, scenario: str = ""
) -> None:
    """:func:`print_run_summary` of a finished run as today's runners return it (``RunResult`` or
    ``bua_monthly``'s dict: run_id, run_date, status, counts, exceptions_by_code, nem12_files) —
    the accrual summary's rows (read from the database when the result has none, as
    ``bua_monthly``'s has not), the CSV files and the report are looked up where they are."""
    import datetime as dt
    import json

    from tasks.adapters.db import redact_url
    from tasks.adapters.storage import exists
    from tasks.pipeline.report import csv_dir_url, report_url

    run_date = _get(result, "run_date")
    day = run_date if isinstance(run_date, dt.date) else dt.date.fromisoformat(str(run_date))
    rows = _get(result, "accrual_summary")
    if rows is None:  # bua_monthly's report: the rows are in the table, not in the flow's result
        from tasks.pipeline.sinks import summary_rows

        rows = json.loads(json.dumps(summary_rows(settings.db_url, day, scenario), default=str))
    summary = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    report = report_url(settings, day, scenario)
    nem12 = [f for f in (_get(result, "nem12_files") or []) if str(f).endswith(".csv")]
    print_run_summary(
        console,
        summary,
        run_date=day.isoformat(),
        run_id=str(_get(result, "run_id", "")),
        status=str(_get(result, "status", "COMPLETED")),
        counts=_get(result, "counts") or {},
        exceptions_by_code=_get(result, "exceptions_by_code") or {},
        elapsed_seconds=elapsed_seconds,
        database=redact_url(settings.db_url),
        csv_dir=csv_dir_url(settings, day, scenario),
        csv_files=csv_files(settings, day, scenario),
        report=report if exists(report, settings) else None,
        nem12_dir=f"{settings.output_url}/nem12/{day.isoformat()}",
        nem12_files=len(nem12),
        scenario=scenario,
    )
