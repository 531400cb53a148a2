"""The report and the Slack "finished" message of a run (SPEC §6): pure functions of the run's
published aggregates (tasks/pipeline/report.py, tasks/pipeline/notify.py)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tasks.pipeline.datasets import PhaseContext
from tasks.pipeline.notify import finished_message, run_totals
from tasks.pipeline.report import render


def report(
    ctx: PhaseContext, published_accrual: dict[str, pl.DataFrame], validation_figures: dict[str, pl.DataFrame]
) -> dict[str, Any]:
    """The self-contained HTML report of the run."""
    return {"report": render(ctx, {**published_accrual, **validation_figures})}


def notify(ctx: PhaseContext, published_accrual: dict[str, pl.DataFrame]) -> dict[str, Any]:
    """The "finished" message with totals by state and fuel. Composed here (cached with the outputs
    it describes) and posted by the flow after the last phase, so a re-run that recomputes nothing
    still tells Slack the run finished."""
    message = finished_message(ctx, run_totals(published_accrual))
    return {"finished_message": {"message": message}, "stats": {"message": message}}
