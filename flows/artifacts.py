"""The run's artifacts in the Prefect UI (SPEC §5): the accrual summary (month, state, fuel, segment,
subtotals, total), exceptions by code, the back-test, the pre-run checks, a what-if's comparison, a
link to the report and a run note with totals and links to the exported files. Their content is
tasks/pipeline/artifacts.py (pure); a what-if's keys carry its name so it never shadows the booked run."""

from __future__ import annotations

from typing import Any

from tasks.pipeline.spec import RunSpec
from tasks.settings import Settings


def publish(spec: RunSpec, settings: Settings, report: dict[str, Any]) -> None:
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    from flows.summary import csv_files
    from tasks.pipeline import artifacts as A
    from tasks.pipeline.report import ReportRun, absolute_links, account_count, read_report_frames

    run, day = ReportRun.of(spec), spec.label
    sfx = "" if spec.booked else f"-{spec.scenario}"
    f = read_report_frames(
        settings.db_url, spec.run_date, spec.scenario, ("summary", "backtest", "prechecks", "comparison")
    )
    if f["summary"] is not None and f["summary"].height:
        create_table_artifact(A.summary_rows(f["summary"]), key=f"bua-accrual-summary{sfx}",
                              description=f"Accrual as at {day}, GST exclusive")  # fmt: skip
    create_table_artifact(A.exceptions_rows(report["exceptions_by_code"]), key=f"bua-exceptions-by-code{sfx}",
                          description=f"Exceptions by code, {day}")  # fmt: skip
    if f["backtest"] is not None:
        create_table_artifact(A.backtest_rows(f["backtest"]), key=f"bua-backtest{sfx}",
                              description=f"Back-test of the estimator, {day}")  # fmt: skip
    if not spec.booked and f["comparison"] is not None:
        for dim, rows in A.comparison_rows(f["comparison"]).items():
            create_table_artifact(
                rows, key=f"bua-comparison-{dim}{sfx}", description=f"What-if vs booked by {dim}, {day}"
            )
    links = absolute_links(settings, csv_files(settings, spec.run_date, spec.scenario))
    report_link = absolute_links(settings, [report["report"]])[0][1] if report["report"] else None
    if report_link:
        create_link_artifact(report_link, link_text=f"Accrual report {day}", key=f"bua-report{sfx}")
    accounts = account_count(settings.db_url, spec.run_date, spec.scenario)
    create_markdown_artifact(
        A.run_note(run, f["summary"], accounts=accounts, exceptions_by_code=report["exceptions_by_code"],
                   links=links, report_link=report_link, prechecks=f["prechecks"], status="COMPLETED"),
        key=f"bua-run{sfx}",
    )  # fmt: skip


def prechecks(spec: RunSpec, checks: Any) -> None:
    """The pre-run checks as a table artifact (before any phase runs)."""
    from prefect.artifacts import create_table_artifact

    from tasks.pipeline import artifacts as A

    sfx = "" if spec.booked else f"-{spec.scenario}"
    create_table_artifact(
        A.prechecks_rows(checks), key=f"bua-prechecks{sfx}", description=f"Pre-run checks, {spec.label}"
    )
