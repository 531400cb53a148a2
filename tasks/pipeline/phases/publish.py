"""The report and the Slack "finished" message of a run (SPEC §6): pure functions of the run's
published aggregates (tasks/pipeline/report.py, tasks/pipeline/notify.py)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tasks.domain.comparison import COLUMNS, compare
from tasks.pipeline.datasets import PhaseContext
from tasks.pipeline.notify import finished_message, run_totals
from tasks.pipeline.report import render


def comparison(
    ctx: PhaseContext, accrual_summary: pl.DataFrame, booked_summary: pl.DataFrame | None
) -> dict[str, Any]:
    """A what-if run against the booked run of its run date (nothing for the booked run itself)."""
    if booked_summary is None:
        return {"comparison": pl.DataFrame(schema=dict.fromkeys(COLUMNS, pl.Utf8))}
    frame = compare(accrual_summary, booked_summary)
    return {"comparison": frame, "comparison_export": frame}


def report(
    ctx: PhaseContext,
    published_accrual: dict[str, pl.DataFrame],
    validation_figures: dict[str, pl.DataFrame],
    prechecks: pl.DataFrame,
    comparison: pl.DataFrame,
) -> dict[str, Any]:
    """The self-contained HTML report of the run: the accrual, the pre-run checks, the validation
    and, for a what-if, its comparison with the booked run."""
    frames = {**published_accrual, **validation_figures, "prechecks": prechecks}
    frames["comparison"] = None if ctx.spec.booked else comparison
    return {"report": render(ctx, frames)}


def notify(ctx: PhaseContext, published_totals: dict[str, pl.DataFrame]) -> dict[str, Any]:
    """The "finished" message with totals by state and fuel. Composed here (cached with the outputs
    it describes) and posted by the flow after the last phase, so a re-run that recomputes nothing
    still tells Slack the run finished."""
    message = finished_message(ctx, run_totals(published_totals))
    return {"finished_message": {"message": message}, "stats": {"message": message}}
