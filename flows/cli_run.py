"""`bua run --run-date YYYY-MM-DD [--period-start] [--period-end] [--basic-method] [--backtest-months]`:
the month-end accrual."""

from __future__ import annotations

from typing import Any

import typer

from flows.cli_app import app, fail, parse_date_option, quiet_prefect_errors, settings_from
from tasks.settings import Settings


def run_month_end(settings: Settings, console: Any = None, **parameters: Any) -> dict[str, Any]:
    """``bua run``/``bua demo``: the ``bua_monthly`` flow (the deployments' code path) with a progress
    display, against PREFECT_API_URL or a temporary Prefect server that dies with this process."""
    import logging

    from rich.console import Console

    from flows.local_server import temporary_server
    from flows.monthly import bua_monthly
    from flows.progress import display
    from flows.runtime import use_settings

    console = console or Console(stderr=True)
    quiet = logging.getLogger("prefect")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the progress bars say what the per-task INFO lines would
    # Prefect's console handlers print a failed run's traceback; the CLI prints one `error:` line
    # instead (the Prefect UI and its API log handler still get everything)
    muted = [
        (h, h.level)
        for name in ("prefect", *(n for n in logging.root.manager.loggerDict if n.startswith("prefect.")))
        for h in logging.getLogger(name).handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]
    for handler, _ in muted:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        with console.status("starting Prefect (a temporary local server: set PREFECT_API_URL to use yours)"):
            server = temporary_server()
            server.__enter__()
        try:
            with use_settings(settings), display(console), quiet_prefect_errors():
                return bua_monthly(**parameters)
        finally:
            _drain_api_logs()  # send the run's logs while the server (maybe a temporary one) is up
            server.__exit__(None, None, None)
    finally:
        quiet.setLevel(level)
        for handler, old in muted:
            handler.setLevel(old)


def _drain_api_logs() -> None:
    from prefect.logging.handlers import APILogWorker

    try:
        APILogWorker.drain_all(timeout=10)
    except Exception:  # noqa: BLE001 - logs that cannot be sent must not hide the run's outcome
        pass


def print_summary(result: dict[str, Any], settings: Settings, elapsed: float) -> None:
    """The accrual summary (flows/summary.py): by fuel and month, by fuel and state, with subtotals
    and totals, never truncated; counts; where the outputs are; the true elapsed time."""
    from rich.console import Console

    from flows.summary import print_from_result

    print_from_result(Console(), result, settings, elapsed, scenario=result.get("scenario", ""))


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    run_date: str = typer.Option(..., "--run-date", help="accrue as at this date (data dated before it)"),
    period_start: str | None = typer.Option(
        None, help="first day accrued (default: the 1st of the month 12 months before)"
    ),
    period_end: str | None = typer.Option(None, help="last day accrued (default: run date - 1)"),
    basic_method: str | None = typer.Option(
        None, help="basic register method: scalar or seasonal (default BUA_BASIC_METHOD)"
    ),
    scenario: str | None = typer.Option(
        None,
        help="a what-if run's name: its outputs never replace the booked run's (default: the booked run)",
    ),
    backtest_months: int | None = typer.Option(
        None,
        min=1,
        max=11,
        help="back-test the estimator as at run date minus this many months (default BUA_BACKTEST_MONTHS, 1)",
    ),
    refresh: bool = typer.Option(False, "--refresh", help="recompute every phase, ignoring cached results"),
    force: bool = typer.Option(
        False, "--force", help="book even when a pre-run check FAILs (recorded in bua_run)"
    ),
    strict: bool = typer.Option(
        False, "--strict", help="stop on a pre-run check WARN too (accept_warnings=False)"
    ),
) -> None:
    """Run the month-end accrual on the configured database and meter store; write tables and CSVs."""
    import time

    from flows.monthly import PrecheckFailed
    from flows.phase_tasks import PhaseFailedError
    from flows.runs import require_schema
    from tasks.adapters.db import DatabaseError
    from tasks.adapters.meter_store import MeterStoreError
    from tasks.adapters.run_lock import RunLocked
    from tasks.pipeline.spec import RunParameterError, resolve_run

    settings = settings_from(ctx)
    r = parse_date_option(run_date, "--run-date")
    assert r is not None
    params = {
        "run_date": r,
        "period_start": parse_date_option(period_start, "--period-start"),
        "period_end": parse_date_option(period_end, "--period-end"),
        "basic_method": basic_method,
        "scenario": scenario,
        "backtest_months": backtest_months,
    }
    try:  # the parameters and the database are checked before any Prefect machinery starts
        resolve_run(settings, **params)
        require_schema(settings.db_url)
    except RunParameterError as exc:
        fail(str(exc))
    except DatabaseError as exc:
        fail(str(exc), 1)
    started = time.perf_counter()
    try:
        result = run_month_end(settings, **params, refresh=refresh, force=force, accept_warnings=not strict)
    except PhaseFailedError as exc:
        cause = exc.cause
        if isinstance(cause, DatabaseError | MeterStoreError):
            fail(str(cause), 1)
        fail(str(exc), 1)
        return
    except (DatabaseError, MeterStoreError, RunLocked, RunParameterError, PrecheckFailed) as exc:
        fail(str(exc), 1)
        return
    print_summary(result, settings, time.perf_counter() - started)


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    run_date: str = typer.Option(..., "--run-date", help="the run date to check the inputs of"),
) -> None:
    """The pre-run checks of a run date (SPEC §4.0) as a table; exit 1 when one FAILs. Writes nothing."""
    from rich.console import Console
    from rich.table import Table

    from tasks.adapters.db import DatabaseError
    from tasks.adapters.meter_store import MeterStoreError
    from tasks.pipeline.prechecks import run_prechecks
    from tasks.pipeline.spec import RunParameterError, resolve_run

    settings = settings_from(ctx)
    r = parse_date_option(run_date, "--run-date")
    try:
        spec = resolve_run(settings, r)
        checks = run_prechecks(spec, settings)
    except RunParameterError as exc:
        fail(str(exc))
        return
    except (DatabaseError, MeterStoreError) as exc:
        fail(str(exc), 1)
        return
    table = Table(title=f"Pre-run checks as at {spec.run_date}")
    for col in ("check", "status", "figure", "threshold", "detail"):
        table.add_column(col, overflow="fold")
    colour = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}
    for row in checks.to_dicts():
        table.add_row(
            row["check"],
            f"[{colour[row['status']]}]{row['status']}[/]",
            row["figure"],
            row["threshold"],
            row["detail"],
        )
    Console().print(table)
    if (checks["status"] == "FAIL").any():
        raise typer.Exit(1)
