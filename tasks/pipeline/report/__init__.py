"""The run's self-contained HTML report (SPEC §6) in finance's language (docs/REPORT.md).

By role:

- :mod:`.page`: :func:`render_report`, a pure function of small frames (no I/O): the run's facts
  (:class:`ReportRun`), its ``accrual_summary`` rows, the accounts' actual and estimated usage, the
  exceptions by code, the back-test and true-up rows, the pre-run checks and, for a what-if
  scenario, the comparison against the booked run.
- :mod:`.tables` and :mod:`.charts`: the display frames (human headers, months as ``2026-10``,
  kWh and MJ apart, money to the cent, subtotals and totals) and the charts (Vega-Altair rendered
  to static SVG, inlined: no script, no external asset).
- :mod:`.data`: the frames from the database (GROUP BYs), the phase graph's published figures and
  the Slack totals.
- :mod:`.locations`: where the page and the CSVs are, relative links or pre-signed S3 URLs.
- :mod:`.write`: the atomic write (local or S3) and the report phase's render.

The page holds no clock time and no customer identifier: a re-run with the same figures writes the
same bytes.
"""

from tasks.pipeline.report.charts import (
    BIAS_CLIP,
    CHART_FONT,
    CHART_WIDTH,
    backtest_chart,
    chart_svg,
    comparison_chart,
    exceptions_chart,
    month_segment_chart,
    share_chart,
    state_fuel_chart,
    trueup_chart,
)
from tasks.pipeline.report.data import (
    MONEY,
    VALIDATION_TABLES,
    account_count,
    figures,
    published_totals,
    read_report_frames,
    totals_frames,
    validation_figures,
)
from tasks.pipeline.report.locations import (
    absolute_links,
    csv_dir_url,
    relative_link,
    report_links,
    report_url,
)
from tasks.pipeline.report.page import STYLE, ReportRun, render_report
from tasks.pipeline.report.tables import (
    CLASSES,
    METHODS,
    STREAMS,
    backtest_labelled,
    backtest_table,
    html_table,
    month_segment_table,
    state_fuel_table,
    trueup_tables,
)
from tasks.pipeline.report.write import render, write_report

__all__ = [
    "BIAS_CLIP",
    "CHART_FONT",
    "CHART_WIDTH",
    "CLASSES",
    "METHODS",
    "MONEY",
    "STREAMS",
    "STYLE",
    "VALIDATION_TABLES",
    "ReportRun",
    "absolute_links",
    "backtest_chart",
    "backtest_labelled",
    "backtest_table",
    "chart_svg",
    "comparison_chart",
    "csv_dir_url",
    "exceptions_chart",
    "figures",
    "html_table",
    "month_segment_chart",
    "month_segment_table",
    "read_report_frames",
    "account_count",
    "published_totals",
    "relative_link",
    "render",
    "render_report",
    "report_links",
    "report_url",
    "share_chart",
    "state_fuel_chart",
    "state_fuel_table",
    "totals_frames",
    "trueup_chart",
    "trueup_tables",
    "validation_figures",
    "write_report",
]
