"""The run's self-contained HTML report (SPEC §6): one file, inline SVG charts, no external assets.

Sections: the run (from the run record's parameters), totals by state and fuel, accrual by month
and segment, estimated vs actual share of the volume by fuel and segment, exceptions by code, and
the validation phase's back-test and true-up (tables ``bua_backtest`` / ``bua_trueup`` when that
phase has written rows for the run date; "no validation results" otherwise).

Figures are aggregated by the database (GROUP BY over the run date's output rows, never the rows
themselves in Python) and laid out with polars; the charts are plain SVG built from those small
frames. Written atomically to ``{output_url}/report/{run_date}/report.html``. The page holds no
clock time and no customer identifier: a re-run of the same run date writes the same bytes.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa

from tasks.settings import Settings, join_url

if TYPE_CHECKING:
    from tasks.pipeline.datasets import PhaseContext as Ctx

VALIDATION_TABLES = ("bua_backtest", "bua_trueup")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")  # fmt: skip


def report_url(settings: Settings, run_date: dt.date) -> str:
    """``{output_url}/report/{run_date}/report.html``."""
    return join_url(settings.output_url, "report", run_date.isoformat(), "report.html")


# ---------------------------------------------------------------- figures (database GROUP BYs)


MONEY = ("net_amount", "discount_net_propensity", "net_amount_less_discount")


def _frame(conn: sa.Connection, query: sa.Select) -> pl.DataFrame:
    res = conn.execute(query)
    cols = list(res.keys())
    rows = res.fetchall()
    # a few dozen aggregated rows: columns from the row tuples, numbers as float for display
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    df = pl.DataFrame(data, strict=False, infer_schema_length=None)
    return df.with_columns(pl.col(pl.Decimal).cast(pl.Float64))


def totals_frames(conn: sa.Connection, run_date: dt.date) -> dict[str, pl.DataFrame]:
    """The run date's accrual by state and fuel, accounts by state and fuel and exceptions by code
    (the report's totals and the Slack "finished" message): aggregates computed by the database."""
    from sql.schema import metadata

    acc = metadata.tables["accrual_summary"]
    summ = metadata.tables["bua_account_summary"]
    exc = metadata.tables["bua_exception"]
    out: dict[str, pl.DataFrame] = {}
    by = [acc.c.state, acc.c.fuel]
    out["by_state_fuel"] = _frame(
        conn,
        sa.select(
            *by,
            *(sa.func.sum(acc.c[m]).label(m) for m in MONEY),
            sa.func.sum(acc.c.volume).label("volume"),
        )
        .where(acc.c.run_date == run_date)
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
        .where(summ.c.run_date == run_date)
        .group_by(*accounts_by)
        .order_by(*accounts_by),
    )
    out["exceptions_by_code"] = _frame(
        conn,
        sa.select(exc.c.code, sa.func.count().label("count"))
        .where(exc.c.run_date == run_date)
        .group_by(exc.c.code)
        .order_by(exc.c.code),
    )
    return out


def figures(database_url: str, run_date: dt.date) -> dict[str, pl.DataFrame]:
    """The report's accrual frames for ``run_date``: small aggregates computed by the database."""
    from sql.schema import metadata
    from tasks.adapters.db import engine_for

    acc = metadata.tables["accrual_summary"]
    summ = metadata.tables["bua_account_summary"]
    with engine_for(database_url).connect() as conn:
        out = totals_frames(conn, run_date)
        by = [acc.c.year_mnth, acc.c.segment]
        out["by_month_segment"] = _frame(
            conn,
            sa.select(*by, *(sa.func.sum(acc.c[m]).label(m) for m in MONEY))
            .where(acc.c.run_date == run_date)
            .group_by(*by)
            .order_by(*by),
        )
        by = [summ.c.service_type, summ.c.journal_segment]
        out["estimated_share"] = _frame(
            conn,
            sa.select(
                summ.c.service_type.label("fuel"),
                summ.c.journal_segment.label("segment"),
                sa.func.sum(summ.c.volume_actual).label("volume_actual"),
                sa.func.sum(summ.c.volume_estimated).label("volume_estimated"),
            )
            .where(summ.c.run_date == run_date)
            .group_by(*by)
            .order_by(*by),
        )
    return out


def validation_figures(database_url: str, run_date: dt.date) -> dict[str, pl.DataFrame]:
    """The run date's bua_backtest and bua_trueup rows (the report's validation section)."""
    from tasks.adapters.db import engine_for

    out: dict[str, pl.DataFrame] = {}
    with engine_for(database_url).connect() as conn:
        present = set(sa.inspect(conn).get_table_names())
        for name in VALIDATION_TABLES:
            if name in present:
                table = sa.Table(name, sa.MetaData(), autoload_with=conn)
                query = sa.select(table)
                if "run_date" in table.c:
                    query = query.where(table.c.run_date == run_date)
                cols = [c for c in table.c if c.name not in ("run_id", "run_date")]
                out[name] = _frame(conn, query.order_by(*cols)).drop(["run_id", "run_date"], strict=False)
    return out


# ---------------------------------------------------------------- SVG


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def bar_chart(categories: list[str], series: dict[str, list[float]], title: str, unit: str = "") -> str:
    """Grouped vertical bars (negative values below a zero line) as an inline SVG element."""
    if not categories or not series:
        return ""
    values = [v for vs in series.values() for v in vs]
    top, bottom = max(0.0, *values), min(0.0, *values)
    span = (top - bottom) or 1.0
    width, height, left, right, head, foot = 760, 300, 90, 20, 30, 60
    plot_w, plot_h = width - left - right, height - head - foot
    y = lambda v: head + (top - v) / span * plot_h  # noqa: E731
    group_w = plot_w / len(categories)
    bar_w = max(1.0, group_w * 0.8 / len(series))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        v = bottom + frac * span
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_num(y(v))}" y2="{_num(y(v))}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{_num(y(v) + 4)}" font-size="11" text-anchor="end">'
            f"{html.escape(_short(v))}{html.escape(unit)}</text>"
        )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{_num(y(0))}" y2="{_num(y(0))}" stroke="#333"/>'
    )
    for i, cat in enumerate(categories):
        x0 = left + i * group_w + group_w * 0.1
        for j, (name, vs) in enumerate(series.items()):
            v = vs[i]
            y0, y1 = sorted((y(0), y(v)))
            parts.append(
                f'<rect x="{_num(x0 + j * bar_w)}" y="{_num(y0)}" width="{_num(bar_w)}" '
                f'height="{_num(max(y1 - y0, 0.5))}" fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{html.escape(f'{cat} {name}: {v:,.2f}{unit}')}</title></rect>"
            )
        if len(categories) <= 24 or i % max(1, len(categories) // 24) == 0:
            cx = left + (i + 0.5) * group_w
            parts.append(
                f'<text x="{_num(cx)}" y="{height - foot + 16}" font-size="11" text-anchor="end" '
                f'transform="rotate(-35 {_num(cx)} {height - foot + 16})">{html.escape(cat)}</text>'
            )
    if len(series) > 1 or next(iter(series)) != "":
        for j, name in enumerate(series):
            lx = left + j * 130
            parts.append(
                f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
                f'<text x="{lx + 14}" y="{height - 5}" font-size="11">{html.escape(name)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _short(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.1f}M"
    if a >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.1f}" if a < 10 else f"{v:.0f}"


# ---------------------------------------------------------------- HTML


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return html.escape(str(v))


def html_table(df: pl.DataFrame, caption: str = "") -> str:
    """An HTML table of a small frame (numbers right-aligned, 2 decimals)."""
    if df.height == 0:
        return f"<p>{html.escape(caption)}: no rows.</p>" if caption else "<p>no rows.</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    numeric = [dtype.is_numeric() for dtype in df.dtypes]
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_cell(v)}</td>' if n else f"<td>{_cell(v)}</td>"
            for v, n in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in df.iter_rows()  # a few dozen aggregated rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _month_segment_chart(df: pl.DataFrame) -> str:
    if df.height == 0:
        return ""
    wide = (
        df.with_columns(pl.col("segment").fill_null("(none)"), pl.col("year_mnth").cast(pl.String))
        .pivot(on="segment", index="year_mnth", values="net_amount_less_discount", aggregate_function="sum")
        .sort("year_mnth")
        .fill_null(0.0)
    )
    segments = sorted(c for c in wide.columns if c != "year_mnth")
    return bar_chart(
        wide["year_mnth"].to_list(),
        {s: wide[s].cast(pl.Float64).to_list() for s in segments},
        "Accrual (net less propensity-weighted discount, $) by month and segment",
    )


def _share(df: pl.DataFrame) -> pl.DataFrame:
    total = pl.col("volume_actual") + pl.col("volume_estimated")
    return df.with_columns(
        pl.when(total != 0).then((100 * pl.col("volume_actual") / total).round(1)).alias("actual_pct"),
        pl.when(total != 0).then((100 * pl.col("volume_estimated") / total).round(1)).alias("estimated_pct"),
    )


# the columns charted for each validation table (first matches; the table shows every column)
CHARTED = {"bua_backtest": ("bias", "mape"), "bua_trueup": ("accrued_net", "billed_net", "difference")}


def _validation_section(frames: dict[str, pl.DataFrame]) -> str:
    present = {n: frames[n] for n in VALIDATION_TABLES if n in frames and frames[n].height}
    if not present:
        return "<h2>Validation</h2><p>no validation results for this run date.</p>"
    parts = ["<h2>Validation</h2>"]
    titles = {
        "bua_backtest": "Back-test (estimated vs actual)",
        "bua_trueup": "True-up (accrued vs since billed)",
    }
    for name, df in present.items():
        parts.append(f"<h3>{titles[name]}</h3>")
        labels = [c for c, t in df.schema.items() if t == pl.String][:3]
        floats = [c for c, t in df.schema.items() if t.is_float() and not c.endswith("_id")]
        values = ([c for c in floats if any(k in c for k in CHARTED[name])] or floats)[:3]
        if labels and values and df.height <= 60:
            cats = df.select(pl.concat_str([pl.col(c).fill_null("-") for c in labels], separator=" "))
            parts.append(
                bar_chart(
                    cats.to_series().to_list(),
                    {v: df[v].fill_null(0.0).to_list() for v in values},
                    f"{titles[name]}: {', '.join(values)}",
                )
            )
        parts.append(html_table(df))
    return "".join(parts)


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 8px}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}"
    "caption{text-align:left;font-weight:bold;margin-bottom:4px}svg{display:block;margin:1em 0}"
)


def render(ctx: Ctx, frames: dict[str, pl.DataFrame]) -> str:
    """The report page for the run ``ctx`` from the :func:`figures` frames."""
    shards = getattr(ctx, "shards", None) or ctx.settings.shards
    run = pl.DataFrame(
        {
            "run_id": [ctx.run_id],
            "run_date": [ctx.run_date.isoformat()],
            "period_start": [ctx.period_start.isoformat()],
            "period_end": [ctx.period_end.isoformat()],
            "basic_method": [ctx.basic_method],
            "shards": [shards],
        }
    )
    sf = frames["by_state_fuel"].join(
        frames["accounts_by_state_fuel"], on=["state", "fuel"], how="full", coalesce=True
    )
    sf = sf.sort(["state", "fuel"], nulls_last=True).fill_null(0).select(
        "state", "fuel", "accounts", "net_amount", "discount_net_propensity", "net_amount_less_discount",
        "volume",
    ) if sf.height else sf  # fmt: skip
    money = list(MONEY)
    totals = (
        sf.select(pl.lit("total").alias("state"), pl.lit("").alias("fuel"), pl.col("accounts", *money).sum())
        if sf.height
        else pl.DataFrame()
    )
    ms = frames["by_month_segment"].with_columns(pl.col("year_mnth").cast(pl.String))
    share = _share(frames["estimated_share"])
    exc = frames["exceptions_by_code"]
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>bua accrual as at {ctx.run_date.isoformat()}</title><style>{STYLE}</style></head><body>",
        f"<h1>Bottom-up accrual as at {ctx.run_date.isoformat()}</h1>",
        "<p>Unbilled energy, GST exclusive; discounts weighted by the propensity to earn them. "
        "Volumes: electricity kWh, gas MJ.</p>",
        html_table(run, "Run"),
        "<h2>Totals by state and fuel</h2>",
        html_table(sf),
        html_table(totals, "Total") if totals.height else "",
        "<h2>Accrual by month and segment</h2>",
        _month_segment_chart(ms),
        html_table(ms),
        "<h2>Estimated vs actual share of the volume</h2>",
        bar_chart(
            [
                f"{f or '-'} {s or '-'}"
                for f, s in zip(share["fuel"].to_list(), share["segment"].to_list(), strict=True)
            ],
            {
                "actual %": share["actual_pct"].fill_null(0.0).to_list(),
                "estimated %": share["estimated_pct"].fill_null(0.0).to_list(),
            },
            "Share of the unbilled volume, by fuel and segment",
            "%",
        )
        if share.height
        else "",
        html_table(share),
        "<h2>Exceptions by code</h2>",
        bar_chart(exc["code"].to_list(), {"": exc["count"].cast(pl.Float64).to_list()}, "Exceptions by code")
        if exc.height
        else "<p>no exceptions.</p>",
        html_table(exc) if exc.height else "",
        _validation_section(frames),
        "</body></html>\n",
    ]
    return "".join(parts)
