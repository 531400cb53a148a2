"""Where a run's datasets come from outside the run and where its results are published: the
loaders and savers of the source and sink datasets (tasks/pipeline/graph.py names them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tasks.adapters import storage
from tasks.adapters.estimate_nem12 import nem12_folder, write_estimate_nem12
from tasks.adapters.export import accrual_export_url, csv_bytes, export_tables
from tasks.adapters.extract import read_datasets
from tasks.adapters.meter_store import MeterData
from tasks.adapters.prepare import read_outputs, typed_like_table, write_outputs
from tasks.adapters.validation_tables import read_previous_accrual, write_validation
from tasks.pipeline.report import figures, published_totals, report_url, validation_figures
from tasks.settings import join_url

if TYPE_CHECKING:
    from tasks.pipeline.datasets import Datasets


# ---------------------------------------------------------------- sources


def billing_source(io: Datasets, shard: int | None) -> dict[str, pl.DataFrame]:
    """The billing database's datasets of the run (sql/*.sql)."""
    s = io.spec
    threads = io.settings.read_threads or io.settings.max_workers
    return read_datasets(io.settings.db_url, s.run_date, s.period_start, s.period_end, threads)


def meter_data(io: Datasets, shard: int | None) -> MeterData | list[MeterData]:
    """The meter store of one shard (a run-once phase: every shard's, in order)."""
    if shard is None:
        return [MeterData(io.settings, s) for s in range(io.spec.shards)]
    return MeterData(io.settings, shard)


def previous_accrual(io: Datasets, shard: int | None) -> Any:
    return read_previous_accrual(io.settings.db_url, io.spec.run_date)


def accrual_summary(io: Datasets, shard: int | None) -> pl.DataFrame:
    s = io.spec
    return read_outputs(io.settings.db_url, s.run_date, ("accrual_summary",), s.scenario)["accrual_summary"]


def prechecks(io: Datasets, shard: int | None) -> pl.DataFrame:
    """The run's pre-run checks as bua_monthly recorded them before the first phase."""
    from tasks.pipeline.prechecks import recorded

    return recorded(io.settings, io.spec)


def booked_summary(io: Datasets, shard: int | None) -> pl.DataFrame | None:
    """The booked run's accrual_summary of the run date (what a what-if is compared with); None for
    the booked run itself."""
    s = io.spec
    if s.booked:
        return None
    return read_outputs(io.settings.db_url, s.run_date, ("accrual_summary",), "")["accrual_summary"]


def published_accrual(io: Datasets, shard: int | None) -> dict[str, pl.DataFrame]:
    return figures(io.settings.db_url, io.spec.run_date, io.spec.scenario)


def slack_totals(io: Datasets, shard: int | None) -> dict[str, pl.DataFrame]:
    """The run's totals by state and fuel and exceptions by code (what the "finished" message shows)."""
    return published_totals(io.settings.db_url, io.spec.run_date, io.spec.scenario)


def published_validation(io: Datasets, shard: int | None) -> dict[str, pl.DataFrame]:
    return validation_figures(io.settings.db_url, io.spec.run_date, io.spec.scenario)


# ---------------------------------------------------------------- sinks


def nem12_estimates(io: Datasets, usage: pl.DataFrame, shard: int | None) -> list[str]:
    """The shard's NEM12 estimate files (stale files of the shard removed first)."""
    assert shard is not None
    s = io.spec
    folder = nem12_folder(io.settings, s.run_date, shard, s.scenario)
    storage.sweep_temporaries(folder, io.settings)  # a killed run's half-written files
    storage.delete(storage.list_files(folder, io.settings), io.settings)
    created = dt.datetime.combine(s.run_date, dt.time(0, 0))
    return write_estimate_nem12(usage, io.settings, s.run_date, shard, created, scenario=s.scenario)


def output_tables(io: Datasets, frames: dict[str, pl.DataFrame], shard: int | None) -> list[str]:
    """The run's output tables in one transaction (accrual_summary computed by the database)."""
    s = io.spec
    counts = write_outputs(io.settings.db_url, s.run_id, s.run_date, frames, scenario=s.scenario)
    exc = frames["bua_exception"]
    io.stats.update(
        counts=counts,
        exceptions_by_code=dict(sorted(exc.group_by("code").len().iter_rows())),
        accrual_summary_sha256=summary_digest(summary_rows(io.settings.db_url, s.run_date, s.scenario)),
    )
    return [f"table:{name}" for name in sorted(counts)]


def summary_rows(url: str, run_date: dt.date, scenario: str = "") -> list[dict[str, Any]]:
    """The run date's accrual_summary rows as a finished run reports them (money as floats, no
    run_id/scenario), in the export's order. Read from the table, not carried in the prepare task's
    result: a 100k month end has thousands of rows, which Prefect would pickle, persist, and walk
    in every task that waits for prepare (docs/ORCHESTRATION.md "Task results")."""
    from tasks.pipeline.phases.outputs import EXPORT_ORDER

    summary = read_outputs(url, run_date, ("accrual_summary",), scenario)["accrual_summary"]
    return (
        summary.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
        .drop("run_id", "scenario")
        .sort(EXPORT_ORDER["accrual_summary"], nulls_last=True, maintain_order=True)
        .to_dicts()
    )


def summary_digest(rows: list[dict[str, Any]]) -> str:
    """sha256 of the summary rows: in the prepare task's stats, so its fingerprint (and every key
    downstream) changes whenever a figure does, though the rows are not in the result."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()


def csv_exports(io: Datasets, frames: dict[str, pl.DataFrame], shard: int | None) -> list[str]:
    return export_tables(
        frames, accrual_export_url(io.settings, io.spec.run_date, io.spec.scenario), io.settings
    )


def validation_tables(io: Datasets, frames: dict[str, pl.DataFrame], shard: int | None) -> list[str]:
    """bua_backtest and bua_trueup: the run date's rows replaced, and their CSVs."""
    s = io.spec
    counts = write_validation(io.settings.db_url, s.run_id, s.run_date, frames, s.scenario)
    typed = {name: typed_like_table(name, stamped(io, df)) for name, df in frames.items()}

    def rows(df: pl.DataFrame) -> list[dict[str, Any]]:
        return (
            df.drop("run_id", "run_date", "scenario", strict=False)
            .with_columns(pl.col(pl.Decimal).cast(pl.Float64))
            .to_dicts()
        )

    io.stats.update(backtest=rows(typed["bua_backtest"]), trueup=rows(typed["bua_trueup"]), rows=counts)
    files = export_tables(typed, accrual_export_url(io.settings, s.run_date, s.scenario), io.settings)
    return [*files, *(f"table:{name}" for name in sorted(counts))]


def stamped(io: Datasets, df: pl.DataFrame) -> pl.DataFrame:
    """The run's id, date and scenario on every row (as the tables hold them)."""
    s = io.spec
    return df.with_columns(
        pl.lit(s.run_id).alias("run_id"),
        pl.lit(s.run_date).alias("run_date"),
        pl.lit(s.scenario).alias("scenario"),
    )


def comparison(io: Datasets, frame: pl.DataFrame, shard: int | None) -> list[str]:
    """A what-if's comparison with the booked run, as CSV beside its other exports."""
    s = io.spec
    url = join_url(accrual_export_url(io.settings, s.run_date, s.scenario), "comparison_with_booked.csv")
    storage.write_bytes_atomic(csv_bytes(frame), url, io.settings)
    return [url]


def report(io: Datasets, page: str, shard: int | None) -> list[str]:
    url = report_url(io.settings, io.spec.run_date, io.spec.scenario)
    if not storage.is_s3(url):
        storage.sweep_temporaries(str(Path(url).parent), io.settings)  # a killed run's half-written page
    storage.write_bytes_atomic(page.encode(), url, io.settings)
    return [url]
