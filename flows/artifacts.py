"""The run's artifacts in the Prefect UI (SPEC §5): the accrual summary, exceptions by code, the
back-test metrics, a link to the report and a run note linking the exported files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.pipeline.spec import RunSpec
from tasks.settings import Settings


def link(url: str, settings: Settings) -> str:
    if url.startswith("s3://"):
        bucket, _, key = url[len("s3://") :].partition("/")
        return f"https://{bucket}.s3.{settings.aws_region}.amazonaws.com/{key}"
    return Path(url).resolve().as_uri()


def publish(spec: RunSpec, settings: Settings, report: dict[str, Any]) -> None:
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    day = spec.label
    if report["accrual_summary"]:
        create_table_artifact(report["accrual_summary"], key="bua-accrual-summary", description=f"Accrual summary as at {day}")
    rows = [{"code": k, "count": v} for k, v in sorted(report["exceptions_by_code"].items())]
    create_table_artifact(rows, key="bua-exceptions-by-code", description=f"Exceptions by code, {day}")
    if report["report"]:
        create_link_artifact(link(report["report"], settings), link_text=f"Accrual report {day}", key="bua-report")
    if report["backtest"]:
        create_table_artifact(report["backtest"], key="bua-backtest", description=f"Back-test metrics, {day}")
    links = "".join(f"\n- [{u.rsplit('/', 1)[-1]}]({link(u, settings)})" for u in sorted(report["exports"]))
    create_markdown_artifact(
        f"# bua_monthly {day}\n\nrun_id `{spec.run_id}`, code `{spec.code_version}`, {spec.shards} shards, "
        f"basic method `{spec.basic_method}`, period {spec.period_start} … {spec.period_end}.\n\n"
        f"## Exported files{links or ' (none)'}",
        key="bua-run",
    )


def prechecks(spec: RunSpec, checks: Any) -> None:
    """The pre-run checks as a table artifact (before any phase runs)."""
    from prefect.artifacts import create_table_artifact

    create_table_artifact(checks.to_dicts(), key="bua-prechecks", description=f"Pre-run checks, {spec.label}")
