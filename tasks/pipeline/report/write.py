"""Writing the report (atomically, local or S3) and the report phase's render of its frames."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import polars as pl

from tasks.pipeline.report.data import read_report_frames
from tasks.pipeline.report.locations import csv_dir_url, relative_link, report_links, report_url
from tasks.pipeline.report.page import ReportRun, render_report
from tasks.settings import Settings

if TYPE_CHECKING:
    from tasks.pipeline.datasets import PhaseContext as Ctx


def write_report(
    settings: Settings,
    run: ReportRun,
    frames: Mapping[str, pl.DataFrame | None] | None = None,
    presign_seconds: int = 0,
) -> str:
    """Render the run's report and write it atomically (local or S3); returns its URL. ``frames``
    as :func:`render_report` takes them (default: :func:`read_report_frames`); the links go to the
    CSVs found under the run's CSV folder."""
    from tasks.adapters import storage

    url = report_url(settings, run.run_date, run.scenario)
    f = (
        dict(frames)
        if frames is not None
        else read_report_frames(settings.db_url, run.run_date, run.scenario)
    )
    csv_dir = csv_dir_url(settings, run.run_date, run.scenario)
    files = [
        u
        for u in storage.list_files(csv_dir, settings, suffix=".csv")
        if run.scenario or "/scenario=" not in u
    ]
    links = report_links(settings, url, files, presign_seconds)
    summary = f.get("summary")
    page = render_report(
        run,
        summary if summary is not None else pl.DataFrame(),
        account_volumes=f.get("account_volumes"),
        exceptions=f.get("exceptions"),
        backtest=f.get("backtest"),
        trueup=f.get("trueup"),
        prechecks=f.get("prechecks"),
        comparison=f.get("comparison"),
        links=links,
    )
    storage.write_bytes_atomic(page.encode(), url, settings)
    return url


def render(ctx: Ctx, frames: Mapping[str, pl.DataFrame]) -> str:
    """The report page of the run ``ctx`` from :func:`figures` and :func:`validation_figures` frames
    (a pure function of them; the links go to the run's CSV folder, which is known without I/O)."""
    run = ReportRun.of(ctx.spec if hasattr(ctx, "spec") else ctx)
    page_url = report_url(ctx.settings, run.run_date, run.scenario)
    folder = csv_dir_url(ctx.settings, run.run_date, run.scenario)
    links = frames.get("links")
    return render_report(
        run,
        frames.get("summary", pl.DataFrame()),
        account_volumes=frames.get("account_volumes"),
        exceptions=frames.get("exceptions"),
        backtest=frames.get("bua_backtest"),
        trueup=frames.get("bua_trueup"),
        prechecks=frames.get("prechecks"),
        comparison=frames.get("comparison"),
        links=[tuple(r) for r in links.iter_rows()] if links is not None else [],
        csv_folder=relative_link(page_url, folder) + "/",
    )
