"""The report page (HTML) of one run: a pure function of small frames, no I/O, no clock time and no
customer identifier (a re-run with the same figures gives the same bytes)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from collections.abc import Sequence
from typing import Any

import polars as pl

from tasks.pipeline import presentation as P
from tasks.pipeline.report.charts import (
    backtest_chart,
    chart_svg,
    comparison_chart,
    exceptions_chart,
    month_segment_chart,
    share_chart,
    state_fuel_chart,
    trueup_chart,
)
from tasks.pipeline.report.tables import (
    backtest_table,
    html_table,
    month_segment_table,
    state_fuel_table,
    trueup_tables,
)


@dataclasses.dataclass(frozen=True)
class ReportRun:
    """What the report says about the run itself (no settings, no secrets)."""

    run_id: str
    run_date: dt.date
    period_start: dt.date
    period_end: dt.date
    scenario: str = ""  # '' = the booked run
    basic_method: str | None = None
    code_version: str | None = None
    shards: int | None = None

    @classmethod
    def of(cls, ctx: Any, scenario: str | None = None) -> ReportRun:
        """From a run context (RunContext, the flow's RunSpec or anything with those attributes)."""
        return cls(
            run_id=str(ctx.run_id),
            run_date=ctx.run_date,
            period_start=ctx.period_start,
            period_end=ctx.period_end,
            scenario=scenario if scenario is not None else (getattr(ctx, "scenario", "") or ""),
            basic_method=getattr(ctx, "basic_method", None),
            code_version=getattr(ctx, "code_version", None),
            shards=getattr(ctx, "shards", None),
        )


# ---------------------------------------------------------------- the page

STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:1.5em auto;max-width:1100px;"
    "padding:0 1em;color:#222;font-size:14px}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:2px solid #ddd;padding-bottom:.2em}"
    "table{border-collapse:collapse;margin:.8em 0;font-size:13px;max-width:100%}"
    "th,td{border:1px solid #ccc;padding:3px 7px;vertical-align:top}"
    "th{background:#f3f3f3;text-align:left}th.n{text-align:right}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "tr.subtotal td{background:#f7f7f7;font-style:italic}tr.total td{background:#eee;font-weight:bold}"
    "caption{text-align:left;font-weight:bold;margin-bottom:4px}"
    "svg{display:block;margin:1em 0;max-width:100%;height:auto}"
    ".note{color:#555}.banner{background:#fff3cd;border:1px solid #e0c36b;padding:.6em 1em;font-weight:bold}"
    ".status-FAIL{color:#b00020;font-weight:bold}.status-WARN{color:#8a5a00;font-weight:bold}"
    ".status-PASS{color:#1b6e1b}"
    "@media print{body{max-width:none;font-size:11px}h2{page-break-after:avoid}table,svg{page-break-inside:avoid}}"
)


def _kpis(
    run: ReportRun, summary: pl.DataFrame, volumes: pl.DataFrame | None, exceptions: pl.DataFrame | None
) -> str:
    total = P.accrual_by(summary, []) if summary.height else None
    accounts = int(volumes["accounts"].sum()) if volumes is not None and volumes.height else None
    n_exc = int(exceptions["count"].sum()) if exceptions is not None and exceptions.height else 0
    row = {
        "Accrual ($)": [float(total[P.ACCRUAL][0]) if total is not None else 0.0],
        "Charges ($)": [float(total[P.CHARGES][0]) if total is not None else 0.0],
        "Discounts ($)": [float(total[P.DISCOUNTS][0]) if total is not None else 0.0],
        P.USAGE_KWH: [total[P.USAGE_KWH][0] if total is not None else None],
        P.USAGE_MJ: [total[P.USAGE_MJ][0] if total is not None else None],
        "Accounts": [accounts],
        "Exceptions": [n_exc],
    }
    df = pl.DataFrame(
        row,
        schema={
            "Accrual ($)": pl.Float64,
            "Charges ($)": pl.Float64,
            "Discounts ($)": pl.Float64,
            P.USAGE_KWH: pl.Float64,
            P.USAGE_MJ: pl.Float64,
            "Accounts": pl.Int64,
            "Exceptions": pl.Int64,
        },
    )
    return html_table(df, "Headline figures", cls="kpi")


def _run_facts(run: ReportRun) -> str:
    facts = [
        ("Run date (accrual as at)", run.run_date.isoformat()),
        ("Period accrued", f"{run.period_start.isoformat()} to {run.period_end.isoformat()}"),
        ("Run", "booked" if not run.scenario else f"what-if scenario “{run.scenario}” (not booked)"),
    ]
    if run.basic_method:
        facts.append(("Basic meter method", run.basic_method))
    facts.append(("Run id", run.run_id))
    if run.code_version:
        facts.append(("Code version", run.code_version))
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    return f"<table><caption>Run</caption><tbody>{rows}</tbody></table>"


def _prechecks_section(prechecks: pl.DataFrame | None) -> str:
    parts = ['<h2 id="prechecks">Pre-run checks</h2>']
    if prechecks is None:
        parts.append('<p class="note">Pre-run checks: not run for this run.</p>')
        return "".join(parts)
    t = P.prechecks_table(prechecks)
    counts = {s: int((t["Status"] == s).sum()) for s in ("PASS", "WARN", "FAIL")}
    parts.append(
        f"<p>{counts['PASS']} passed, {counts['WARN']} warned, {counts['FAIL']} failed "
        f"(a FAIL stops the run before anything is written; a WARN is reported and recorded).</p>"
    )
    table = html_table(t)
    # the status cell coloured by its value
    table = re.sub(r"<td>(PASS|WARN|FAIL)</td>", r'<td class="status-\1">\1</td>', table)
    parts.append(table)
    return "".join(parts)


def _section(title: str, anchor: str, *body: str) -> str:
    return f'<h2 id="{anchor}">{html.escape(title)}</h2>' + "".join(body)


def render_report(
    run: ReportRun,
    summary: pl.DataFrame,
    account_volumes: pl.DataFrame | None = None,
    exceptions: pl.DataFrame | None = None,
    backtest: pl.DataFrame | None = None,
    trueup: pl.DataFrame | None = None,
    prechecks: pl.DataFrame | None = None,
    comparison: pl.DataFrame | None = None,
    links: Sequence[tuple[str, str]] = (),
    trueup_note: str | None = None,
    csv_folder: str | None = None,
) -> str:
    """The report page (HTML) of one run: a pure function of its frames.

    - ``summary``: the run's ``accrual_summary`` rows (SPEC §4.5).
    - ``account_volumes``: accounts, ``volume_actual``, ``volume_estimated`` by ``fuel``, ``state``,
      ``segment``, ``estimation_method`` (:func:`tasks.pipeline.presentation.account_volumes` of
      ``bua_account_summary``).
    - ``exceptions``: ``code``, ``count``.
    - ``backtest`` / ``trueup``: the run's ``bua_backtest`` / ``bua_trueup`` rows (None: the
      validation phase did not run; empty true-up: no earlier run, ``trueup_note`` says why).
    - ``prechecks``: check, status (PASS/WARN/FAIL), figure, threshold, detail (None: "not run").
    - ``comparison``: for a what-if run, :func:`tasks.pipeline.presentation.compare_runs` of its
      summary and the booked run's (None: no booked run to compare with).
    - ``links``: ``(file name, href)`` of the exported CSVs (:func:`report_links`).
    - ``csv_folder``: the href of the run's CSV folder, shown when ``links`` is empty.
    """
    what_if = bool(run.scenario)
    parts = [
        _head(run),
        _run_facts(run),
        _kpis(run, summary, account_volumes, exceptions),
        _prechecks_section(prechecks),
        *_accrual_sections(summary, account_volumes),
        _share_section(account_volumes),
        _exceptions_section(exceptions),
        _backtest_section(backtest),
        _trueup_section(run, trueup, trueup_note),
    ]
    if what_if:
        parts.append(_comparison_section(run, comparison))
    parts.append(_files_section(links, csv_folder))
    parts.append("</body></html>\n")
    return "".join(parts)


def _head(run: ReportRun) -> str:
    """The document's head, the title, the what-if banner and the note on units."""
    what_if = bool(run.scenario)
    title = f"Bottom-up accrual as at {run.run_date.isoformat()}" + (
        f" — what-if “{run.scenario}”" if what_if else ""
    )
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if what_if:
        parts.append(
            f'<p class="banner">What-if scenario “{html.escape(run.scenario)}”: these figures are NOT the booked '
            f"accrual of {run.run_date.isoformat()}; the comparison with the booked run is at the end.</p>"
        )
    parts.append(
        '<p class="note">Unbilled energy consumed before the run date, valued through each customer\'s tariff. '
        "Money in Australian dollars excluding GST; discounts weighted by the likelihood that the customer "
        "earns them; accrual = charges − discounts. Usage: electricity in kWh, gas in MJ, never added together. "
        "Months are calendar months of consumption.</p>"
    )
    return "".join(parts)


def _accrual_sections(summary: pl.DataFrame, account_volumes: pl.DataFrame | None) -> list[str]:
    if not summary.height:
        return [_section("Accrual", "month-segment", "<p>No unbilled accounts: the accrual is empty.</p>")]
    return [
        _section(
            "Accrual by month and segment",
            "month-segment",
            chart_svg(month_segment_chart(summary), "chart-month-segment"),
            html_table(month_segment_table(summary)),
        ),
        _section(
            "Accrual by state and fuel",
            "state-fuel",
            chart_svg(state_fuel_chart(summary), "chart-state-fuel"),
            html_table(state_fuel_table(summary, account_volumes)),
        ),
    ]


def _share_section(account_volumes: pl.DataFrame | None) -> str:
    """Estimated vs actual usage ('' without account volumes: the section is left out)."""
    if account_volumes is None or not account_volumes.height:
        return ""
    tables = [
        html_table(P.estimated_share(account_volumes, fuel), f"{P.FUELS[fuel]} ({P.UNITS[fuel]})")
        for fuel in ("ELECTRICITY", "GAS")
        if (account_volumes["fuel"] == fuel).any()
    ]
    return _section(
        "Estimated vs actual share of the unbilled usage",
        "share",
        '<p class="note">Actual: usage measured by interval meters or between actual reads. '
        "Estimated: profiled or projected usage of the days not yet read.</p>",
        chart_svg(share_chart(account_volumes), "chart-share"),
        *tables,
    )


def _exceptions_section(exceptions: pl.DataFrame | None) -> str:
    if exceptions is None or not exceptions.height:
        return _section("Exceptions by code", "exceptions", "<p>No exceptions.</p>")
    return _section(
        "Exceptions by code",
        "exceptions",
        '<p class="note">Accounts and registers accrued as far as they safely could be; the '
        "exceptions CSV names each one.</p>",
        chart_svg(exceptions_chart(exceptions), "chart-exceptions"),
        html_table(P.exceptions_table(exceptions)),
    )


def _backtest_section(backtest: pl.DataFrame | None) -> str:
    if backtest is None:
        return _section("Back-test", "backtest", "<p>The validation phase did not run for this run.</p>")
    if backtest.height == 0:
        return _section(
            "Back-test", "backtest", "<p>No registers could be back-tested for this run date.</p>"
        )
    b = backtest.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
    first = b.row(0, named=True)
    intro = (
        f'<p class="note">The estimator re-run as at {first["backtest_date"]} with only the data known then, '
        f"compared with the actuals since received up to {first['window_to']}. Bias = (estimated − actual) / "
        "actual; MAPE = mean of each register's absolute error; WAPE = absolute errors / actual usage. "
        "Subtotal rows: one method, all segments; total row: the fuel's portfolio.</p>"
    )
    tables = [
        html_table(backtest_table(b, fuel), f"{P.FUELS[fuel]} ({P.UNITS[fuel]})")
        for fuel in ("ELECTRICITY", "GAS")
        if (b["fuel"] == fuel).any()
    ]
    return _section("Back-test", "backtest", intro, chart_svg(backtest_chart(b), "chart-backtest"), *tables)


def _trueup_section(run: ReportRun, trueup: pl.DataFrame | None, note: str | None) -> str:
    if trueup is None:
        return _section("True-up", "trueup", "<p>The validation phase did not run for this run.</p>")
    if trueup.height == 0:
        text = note or (
            f"No earlier run before {run.run_date.isoformat()} to true up: the true-up of this "
            "accrual against what is billed since will be in the next run's report."
        )
        return _section("True-up", "trueup", f"<p>{html.escape(text)}</p>")
    t = trueup.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
    previous = t["accrual_run_date"][0] if "accrual_run_date" in t.columns else None
    intro = (
        f'<p class="note">The accrual of the previous run ({previous}) against what has been billed since for '
        "the same days (covered days: from the account's unbilled start to the end of its newest bill since). "
        "Difference = accrued − billed; positive: the accrual was higher than the bills.</p>"
    )
    money, usage = trueup_tables(t)
    tables = [html_table(money, "Money ($, ex GST)")] + [
        html_table(u, f"Usage, {P.FUELS[fuel]} ({P.UNITS[fuel]})") for fuel, u in usage.items()
    ]
    return _section("True-up", "trueup", intro, chart_svg(trueup_chart(t), "chart-trueup"), *tables)


def _comparison_section(run: ReportRun, comparison: pl.DataFrame | None) -> str:
    title = "What-if vs booked"
    if comparison is None:
        return _section(
            title,
            "comparison",
            f"<p>No booked run of {run.run_date.isoformat()} to compare with: run the booked accrual "
            "(without a scenario) first.</p>",
        )
    parts = [
        f'<p class="note">This what-if run (“{html.escape(run.scenario)}”) against the booked run of the same run '
        "date. Difference = what-if − booked; a key in one run only counts 0 in the other.</p>",
        chart_svg(comparison_chart(comparison), "chart-comparison"),
    ]
    for dim, caption in (
        ("state", "By state"),
        ("fuel", "By fuel"),
        ("segment", "By segment"),
        ("month", "By month"),
    ):
        t = P.comparison_by(comparison, dim)
        # usage columns of a fuel-less view only where that fuel is there
        t = t.select([c for c in t.columns if not (t[c].dtype.is_numeric() and t[c].is_null().all())])
        parts.append(html_table(t, caption))
    return _section(title, "comparison", *parts)


def _files_section(links: Sequence[tuple[str, str]], csv_folder: str | None = None) -> str:
    if not links and csv_folder:
        return _section(
            "Exported files",
            "files",
            f'<p>The CSVs (per-account detail, every exception) are in <a href="{html.escape(csv_folder)}">'
            f"{html.escape(csv_folder)}</a>.</p>",
        )
    if not links:
        return _section("Exported files", "files", "<p>No exported files listed.</p>")
    items = "".join(f'<li><a href="{html.escape(href)}">{html.escape(name)}</a></li>' for name, href in links)
    return _section(
        "Exported files",
        "files",
        '<p class="note">CSV, one row per line, ISO dates; the per-account detail and every exception.</p>',
        f"<ul>{items}</ul>",
    )
