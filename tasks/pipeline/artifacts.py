"""What a run publishes in the Prefect UI, in finance's language (SPEC §5, docs/REPORT.md).

Pure functions: frames → table rows (``list[dict[str, str]]`` for ``create_table_artifact``) or
markdown (``create_markdown_artifact``). Figures are text formatted like the report (money to the
cent, usage to the unit, thousands separators) so the UI shows them whole; headers are human;
every table has its total, and the accrual table subtotals by month. The flow creates the
artifacts (it owns the Prefect calls and the keys); see docs/REPORT.md for the keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import polars as pl

from tasks.pipeline import presentation as P

if TYPE_CHECKING:
    from tasks.pipeline.report import ReportRun


def table_rows(df: pl.DataFrame) -> list[dict[str, str]]:
    """A display frame as artifact rows: one dict per row, header → formatted text (``row`` kind
    dropped: subtotal and total rows say so in their label)."""
    show = df.drop("row", strict=False)
    return [dict(zip(show.columns, cells, strict=True)) for cells in P.display_rows(show)]


def summary_rows(summary: pl.DataFrame) -> list[dict[str, str]]:
    """The accrual by month, state, fuel and segment (Month, State, Fuel, Segment, Usage (kWh),
    Usage (MJ), Charges ($), Discounts ($), Accrual ($)); a subtotal after each month, the total last."""
    if summary.height == 0:
        return []
    t = P.accrual_by(summary, ["month", "state", "fuel", "segment"])
    return table_rows(P.with_totals(t, ["Month", "State", "Fuel", "Segment"], subtotal_by="Month"))


def exceptions_rows(exceptions_by_code: Mapping[str, int] | pl.DataFrame) -> list[dict[str, str]]:
    """Code, Meaning, Count — most frequent first, the total last (empty: no exceptions)."""
    df = (
        exceptions_by_code
        if isinstance(exceptions_by_code, pl.DataFrame)
        else pl.DataFrame(
            {"code": list(exceptions_by_code), "count": list(exceptions_by_code.values())},
            schema={"code": pl.String, "count": pl.Int64},
        )
    )
    return table_rows(P.exceptions_table(df)) if df.height else []


def prechecks_rows(prechecks: pl.DataFrame) -> list[dict[str, str]]:
    """Check, Status, Figure, Threshold, Detail (FAIL first)."""
    return table_rows(P.prechecks_table(prechecks))


def backtest_rows(backtest: pl.DataFrame) -> list[dict[str, str]]:
    """The back-test per fuel, method and segment with human headers (units per row's fuel)."""
    from tasks.pipeline.report import backtest_labelled

    if backtest.height == 0:
        return []
    b = backtest_labelled(backtest)
    df = b.select(
        P.fuel_label("fuel").alias("Fuel"),
        "Method",
        "Customer class",
        "State",
        "Register",
        pl.col("registers").cast(pl.Int64).alias("Registers"),
        pl.col("unit").str.replace("KWH", "kWh").alias("Unit"),
        pl.col("actual_volume").map_elements(P.quantity, return_dtype=pl.String).alias("Actual"),
        pl.col("estimated_volume").map_elements(P.quantity, return_dtype=pl.String).alias("Estimated"),
        pl.col("bias_pct").alias("Bias (%)"),
        pl.col("mape_pct").alias("MAPE (%)"),
        pl.col("wape_pct").alias("WAPE (%)"),
    )
    return table_rows(df)


def comparison_rows(comparison: pl.DataFrame) -> dict[str, list[dict[str, str]]]:
    """A what-if run against the booked run: one table each by state, fuel, segment and month."""
    return {
        dim: table_rows(P.comparison_by(comparison, dim)) for dim in ("state", "fuel", "segment", "month")
    }


def markdown_table(rows: Sequence[Mapping[str, str]], numeric: Sequence[str] = ()) -> str:
    """Rows as a GitHub-flavoured markdown table (columns in ``numeric`` right-aligned)."""
    if not rows:
        return "_none_"
    cols = list(rows[0])

    def esc(v: str) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(esc(c) for c in cols) + " |"
    rule = "| " + " | ".join("---:" if c in numeric else "---" for c in cols) + " |"
    body = ["| " + " | ".join(esc(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def _numeric(df: pl.DataFrame) -> list[str]:
    return [c for c, t in df.drop("row", strict=False).schema.items() if t.is_numeric()]


def run_note(
    run: ReportRun,
    summary: pl.DataFrame,
    *,
    accounts: int | None,
    exceptions_by_code: Mapping[str, int],
    links: Sequence[tuple[str, str]] = (),
    report_link: str | None = None,
    prechecks: pl.DataFrame | None = None,
    status: str = "COMPLETED",
) -> str:
    """The run note (markdown): what ran, the totals (accrual, charges, discounts, usage by unit,
    accounts, exceptions), the accrual by fuel and by state with totals, the pre-run checks'
    verdict, and links to the report and the exported files."""
    kind = f"what-if scenario `{run.scenario}` (not booked)" if run.scenario else "booked run"
    lines = [
        f"# Month-end accrual as at {run.run_date.isoformat()} — {status}",
        "",
        f"{kind.capitalize() if not run.scenario else kind}; period {run.period_start.isoformat()} to "
        f"{run.period_end.isoformat()}"
        + (f"; basic meter method `{run.basic_method}`" if run.basic_method else "")
        + f"; run `{run.run_id}`"
        + (f"; code `{run.code_version}`" if run.code_version else "")
        + ".",
        "",
        "Money in AUD excluding GST; discounts weighted by the likelihood they are earned; "
        "accrual = charges − discounts; usage in kWh (electricity) and MJ (gas), never added together.",
        "",
        "## Totals",
        "",
    ]
    n_exc = sum(exceptions_by_code.values())
    if summary.height:
        total = P.accrual_by(summary, []).row(0, named=True)
        facts = [
            ("Accrual ($)", P.money(total[P.ACCRUAL])),
            ("Charges ($)", P.money(total[P.CHARGES])),
            ("Discounts ($)", P.money(total[P.DISCOUNTS])),
            (P.USAGE_KWH, P.quantity(total[P.USAGE_KWH])),
            (P.USAGE_MJ, P.quantity(total[P.USAGE_MJ])),
            ("Accounts", P.count(accounts)),
            ("Exceptions", P.count(n_exc)),
        ]
        lines.append(markdown_table([{"Figure": k, "Value": v} for k, v in facts], numeric=["Value"]))
        for dim, title in (("fuel", "By fuel"), ("state", "By state")):
            t = P.with_totals(P.accrual_by(summary, [dim]), [P.DIMENSIONS[dim][1]])
            lines += ["", f"## {title}", "", markdown_table(table_rows(t), numeric=_numeric(t))]
    else:
        lines.append("No unbilled accounts: the accrual is empty.")
    lines += ["", "## Pre-run checks", ""]
    if prechecks is None:
        lines.append("Not run for this run.")
    else:
        statuses = prechecks["status"].cast(pl.String).to_list()
        lines.append(
            f"{statuses.count('PASS')} passed, {statuses.count('WARN')} warned, {statuses.count('FAIL')} failed."
        )
        flagged = prechecks.filter(pl.col("status").cast(pl.String) != "PASS")
        if flagged.height:
            lines += ["", markdown_table(prechecks_rows(flagged))]
    if exceptions_by_code:
        lines += [
            "",
            "## Exceptions by code",
            "",
            markdown_table(exceptions_rows(exceptions_by_code), ["Count"]),
        ]
    lines += ["", "## Outputs", ""]
    if report_link:
        lines.append(f"- [Accrual report]({report_link})")
    lines += [f"- [{name}]({href})" for name, href in links]
    if not report_link and not links:
        lines.append("(none)")
    return "\n".join(lines) + "\n"
