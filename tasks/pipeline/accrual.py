"""The month-end accrual pipeline (SPEC §4, §5) as phase functions with explicit inputs and outputs.

Each phase reads the billing database / meter store (extract and the meter-data phases) or the work
files of earlier phases, and writes parquet under ``{output_url}/work/{run_date}/{phase}/`` (per
shard: ``…/{phase}/shard=NNN/``), atomically and with sorted rows so that the same inputs give the
same bytes. ``fn(ctx)`` runs once, ``fn(ctx, shard)`` once per shard; both return what they wrote.
``ctx`` is a :class:`RunContext` or anything with the same attributes (the Prefect flow's RunSpec).
:func:`run_accrual` runs them in order, shard by shard, and records the run in ``bua_run``; the
Prefect flow (flows/monthly.py) maps the same functions over shards. The pure computations live in
their own modules (unbilled, profiles, segments, macro, scalars, interval/basic estimation, rating);
this module only wires files to them.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from tasks.adapters import storage
from tasks.domain.account_summary import account_totals
from tasks.domain.discounts import pay_on_time_propensity
from tasks.domain.exceptions import NO_REGISTER, NO_SITE, combine, counts_by_account, exception_rows
from tasks.settings import Settings, join_url

USAGE_COLUMNS = [
    "account_id", "meter_register_id", "nmi", "suffix", "stream", "register_time_class", "unit", "read_date",
    "interval_minutes", "values", "estimated", "method",
]  # fmt: skip
EBR_COLUMNS = ["meter_register_id", "read_date", "index_value", "consumption", "method", "method_flag"]
RUN_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-4e0f-9b57-2a1c0d9e7b11")


class Ctx(Protocol):
    settings: Settings
    run_date: dt.date
    period_start: dt.date
    period_end: dt.date
    basic_method: str
    run_id: str


@dataclass(frozen=True)
class RunContext:
    """The parameters of one run (what every phase needs)."""

    settings: Settings
    run_date: dt.date
    period_start: dt.date
    period_end: dt.date
    basic_method: str
    run_id: str

    @classmethod
    def create(
        cls,
        settings: Settings,
        run_date: dt.date,
        period_start: dt.date | None = None,
        period_end: dt.date | None = None,
        basic_method: str | None = None,
        run_id: str | None = None,
    ) -> RunContext:
        """SPEC §4 defaults: period_start = the 1st of the month 12 months before R, period_end = R − 1."""
        start = period_start or default_period_start(run_date)
        end = period_end or run_date - dt.timedelta(days=1)
        if start > end:
            raise ValueError(f"period_start {start} is after period_end {end}")
        if end >= run_date:
            raise ValueError(f"period_end {end} must be before the run date {run_date}")
        method = basic_method or settings.basic_method
        rid = run_id or str(uuid.uuid5(RUN_NAMESPACE, f"{run_date}|{start}|{end}|{method}|{settings.shards}"))
        return cls(settings, run_date, start, end, method, rid)


def default_period_start(run_date: dt.date) -> dt.date:
    return dt.date(run_date.year - 1, run_date.month, 1)


# ---------------------------------------------------------------- work files


def work_url(ctx: Ctx, phase: str, name: str, shard: int | None = None) -> str:
    parts = (
        ["work", ctx.run_date.isoformat(), phase]
        + ([f"shard={shard:03d}"] if shard is not None else [])
        + [name]
    )
    return join_url(ctx.settings.output_url, *parts)


def _put(ctx: Ctx, df: pl.DataFrame, phase: str, name: str, shard: int | None = None) -> str:
    url = work_url(ctx, phase, f"{name}.parquet", shard)
    storage.write_parquet_atomic(df, url, ctx.settings)
    return url


# Run-once work files (extract, windows, segments, ...) are read by every shard of the per-shard
# phases: decoded once per process and shared (polars frames are immutable through the API the
# phases use). Keyed by local path, modification time and size, so a rewritten file (a re-run, a
# resumed run) is read again; s3:// files are not kept. At most _ONCE_MAX frames, then cleared.
_ONCE: dict[tuple[str, int, int], pl.DataFrame] = {}
_ONCE_LOCK = threading.Lock()
_ONCE_MAX = 32


def _get(ctx: Ctx, phase: str, name: str, shard: int | None = None) -> pl.DataFrame:
    url = work_url(ctx, phase, f"{name}.parquet", shard)
    if shard is not None or storage.is_s3(url):
        return pl.read_parquet(io.BytesIO(storage.read_bytes(url, ctx.settings)))
    st = os.stat(url)
    key = (url, st.st_mtime_ns, st.st_size)
    with _ONCE_LOCK:
        hit = _ONCE.get(key)
    if hit is not None:
        return hit
    df = pl.read_parquet(io.BytesIO(storage.read_bytes(url, ctx.settings)))
    with _ONCE_LOCK:
        if len(_ONCE) >= _ONCE_MAX:
            _ONCE.clear()
        _ONCE[key] = df
    return df


def _get_all_shards(ctx: Ctx, phase: str, name: str) -> pl.DataFrame:
    frames = [_get(ctx, phase, name, s) for s in range(ctx.settings.shards)]
    frames = [f for f in frames if f.width]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def _shard_of(df: pl.DataFrame, shard: int) -> pl.DataFrame:
    return df.filter(pl.col("shard") == shard)


def _exc(df: pl.DataFrame | None) -> pl.DataFrame:
    return combine([df] if df is not None else [])


def _windows_for_estimation(windows: pl.DataFrame) -> pl.DataFrame:
    return windows.select("account_id", "unbilled_from", "unbilled_to")


# ---------------------------------------------------------------- phases


def extract(ctx: Ctx) -> list[str]:
    """Billing DB → extract/{dataset}.parquet (accounts, registers, reads with their shard)."""
    from tasks.adapters.extract import read_datasets, shape

    raw = read_datasets(ctx.settings.database_url, ctx.run_date, ctx.period_start, ctx.period_end)
    data, exceptions = shape(raw, ctx.settings.shards)
    urls = [_put(ctx, df, "extract", name) for name, df in sorted(data.items())]
    urls.append(_put(ctx, exceptions, "extract", "exceptions"))
    return urls


def windows(ctx: Ctx) -> list[str]:
    """Unbilled windows (SPEC §4.1) and pay-on-time propensity of every account."""
    from tasks.domain.unbilled import unbilled_windows

    accounts = _get(ctx, "extract", "accounts")
    invoices = _get(ctx, "extract", "invoices")
    registers = _get(ctx, "extract", "registers")
    w, exc = unbilled_windows(
        accounts, invoices, ctx.run_date, ctx.period_start, ctx.period_end, ctx.settings.grace_days
    )
    w = w.join(pay_on_time_propensity(accounts, invoices, ctx.run_date), on="account_id", how="left")
    no_site = w.filter(pl.col("nmi").is_null())
    no_register = w.filter(pl.col("nmi").is_not_null()).join(
        registers.select("account_id").unique(), on="account_id", how="anti"
    )
    exc = combine(
        [
            exc,
            exception_rows(
                no_site, NO_SITE, pl.lit("account has no site before the run date; only supply is accrued")
            ),
            exception_rows(
                no_register,
                NO_REGISTER,
                pl.format(
                    "site {} has no meter register in the unbilled window; only supply is accrued", "nmi"
                ),
            ),
        ]
    )
    return [_put(ctx, w.sort("account_id"), "windows", "windows"), _put(ctx, exc, "windows", "exceptions")]


def _interval_scan(ctx: Ctx, shard: int, date_from: dt.date, date_to: dt.date) -> pl.LazyFrame:
    from tasks.adapters.meter_store import scan_interval

    return scan_interval(ctx.settings, shard, date_from, date_to)


def _history_start(ctx: Ctx) -> dt.date:
    from tasks.adapters.extract import HISTORY_DAYS

    return ctx.run_date - dt.timedelta(days=HISTORY_DAYS)


def profiles_partial(ctx: Ctx, shard: int) -> list[str]:
    """One shard's segment-profile partial sums over the history window."""
    from tasks.adapters.meter_store import interval_month_scans
    from tasks.domain.interval_estimate import window_keys
    from tasks.domain.profiles import profile_read
    from tasks.domain.scalars import MIN_SHORT_DAYS, reference_windows

    regs = _shard_of(_get(ctx, "extract", "registers"), shard)
    lo, hi = _history_start(ctx), ctx.run_date - dt.timedelta(days=1)
    lf = _interval_scan(ctx, shard, lo, hi)
    short_from, long_from = reference_windows(ctx.run_date)
    w = _windows_for_estimation(_shard_of(_get(ctx, "windows", "windows"), shard))
    partial, day_grid, window_data = profile_read(
        regs, lf, ctx.settings.segment_with_tni, lo, hi,
        grid_from=long_from, short_from=short_from, min_short_days=MIN_SHORT_DAYS,
        months=interval_month_scans(ctx.settings, shard, lo, hi), keep=window_keys(regs, w),
    )  # fmt: skip
    # read by interval_estimates (same shard) instead of the store: the store rows of its
    # unbilled-window days from history start on, store order. Arrow IPC with lz4: about half
    # zstd parquet's CPU to write and read back (0.3 vs 0.55 s a 100k-account shard), twice the size
    window_url = work_url(ctx, "profiles", "window_data.arrow", shard)
    buf = io.BytesIO()
    window_data.write_ipc(buf, compression="lz4")
    storage.write_bytes_atomic(buf.getvalue(), window_url, ctx.settings)
    return [
        _put(ctx, partial.sort("segment", "read_date"), "profiles", "partial", shard),
        # read by scalars (same shard) instead of the store: rows in read order, deterministic
        _put(ctx, day_grid, "profiles", "day_grid", shard),
        window_url,
    ]


def profiles_combine(ctx: Ctx) -> list[str]:
    from tasks.domain.profiles import combine_profiles

    partials = [_get(ctx, "profiles", "partial", s) for s in range(ctx.settings.shards)]
    return [_put(ctx, combine_profiles(partials), "profiles", "profiles")]


def segments(ctx: Ctx) -> list[str]:
    """Check and fix the segment profiles (SPEC §4.2); the macro (daily) profile."""
    from tasks.domain.macro import macro_profile
    from tasks.domain.profiles import segment_key
    from tasks.domain.segments import check_and_fix

    regs = _get(ctx, "extract", "registers")
    keys = (
        regs.filter(pl.col("service_type") == "ELECTRICITY")
        .select(segment_key(ctx.settings.segment_with_tni))
        .unique()["segment"]
        .drop_nulls()
        .sort()
        .to_list()
    )
    fixed, fills = check_and_fix(
        _get(ctx, "profiles", "profiles"),
        keys,
        _history_start(ctx),
        ctx.period_end,
        ctx.settings.min_registers,
    )
    macro = macro_profile(fixed)
    return [
        _put(ctx, fixed.sort("segment", "read_date"), "segments", "fixed"),
        _put(ctx, fills.sort("segment", "read_date"), "segments", "fills"),
        _put(ctx, macro.sort("segment", "read_date"), "segments", "macro"),
    ]


def read_pairs(ctx: Ctx, shard: int) -> list[str]:
    """Basic read pairs (rollovers, BAD_READ) of one shard."""
    from tasks.domain.basic_estimate import read_pairs as pairs_of

    regs = _shard_of(_get(ctx, "extract", "registers"), shard)
    reads = _shard_of(_get(ctx, "extract", "basic_reads"), shard)
    pairs, exc = pairs_of(regs, reads)
    return [
        _put(ctx, pairs.sort("meter_register_id", "start"), "basic", "pairs", shard),
        _put(ctx, _exc(exc), "basic", "exceptions", shard),
    ]


def gas_shape(ctx: Ctx) -> list[str]:
    """The gas macro profile per jurisdiction, fitted on all shards' gas read pairs."""
    from tasks.domain.macro import gas_shape as fit_gas

    regs = _get(ctx, "extract", "registers")
    gas_regs = (
        regs.filter(pl.col("service_type") == "GAS")
        .select("meter_register_id", "jurisdiction")
        .unique("meter_register_id")
    )
    pairs = _get_all_shards(ctx, "basic", "pairs")
    gas_pairs = pairs.join(gas_regs, on="meter_register_id", how="inner") if pairs.width else pairs
    jurisdictions = sorted(regs["jurisdiction"].drop_nulls().unique().to_list())
    gas_macro, gas_fit = fit_gas(
        gas_pairs,
        jurisdictions,
        _history_start(ctx),
        ctx.period_end,
        macro=_get(ctx, "segments", "macro"),
        fixed=_get(ctx, "segments", "fixed"),
        temperature=_temperature(ctx),
    )
    return [_put(ctx, gas_macro, "segments", "gas_macro"), _put(ctx, gas_fit, "segments", "gas_fit")]


def scalars(ctx: Ctx, shard: int) -> list[str]:
    """Interval register scalars (SPEC §4.3) of one shard."""
    from tasks.domain.interval_estimate import scalars_from_grid, scalars_shard

    regs = _shard_of(_get(ctx, "extract", "registers"), shard)
    lf = _interval_scan(
        ctx, shard, ctx.run_date - dt.timedelta(days=365), ctx.run_date - dt.timedelta(days=1)
    )
    fixed = _get(ctx, "segments", "fixed")
    grid_url = work_url(ctx, "profiles", "day_grid.parquet", shard)
    if storage.exists(grid_url, ctx.settings):  # written by profiles_partial of this run
        day_grid = _get(ctx, "profiles", "day_grid", shard)
        sc, exc = scalars_from_grid(regs, day_grid, lf, fixed, ctx.run_date, ctx.settings.segment_with_tni)
    else:  # a partial from an older bua (e.g. a cached flow task): read the store
        sc, exc = scalars_shard(regs, lf, fixed, ctx.run_date, ctx.settings.segment_with_tni)
    return [
        _put(ctx, sc.sort("meter_register_id"), "scalars", "scalars", shard),
        _put(ctx, _exc(exc), "scalars", "exceptions", shard),
    ]


def basic_estimates(ctx: Ctx, shard: int) -> list[str]:
    """Basic register usage over the unbilled windows and the estimated index at period end."""
    from tasks.domain.basic_estimate import estimate_basic

    regs = _shard_of(_get(ctx, "extract", "registers"), shard)
    w = _shard_of(_get(ctx, "windows", "windows"), shard)
    usage, ebr, exc = estimate_basic(
        regs,
        _windows_for_estimation(w),
        _shard_of(_get(ctx, "extract", "basic_reads"), shard),
        _get(ctx, "segments", "macro"),
        _get(ctx, "segments", "gas_macro"),
        ctx.run_date,
        ctx.period_end,
        ctx.basic_method,  # type: ignore[arg-type]
        pairs=_get(ctx, "basic", "pairs", shard),
        temperature=_temperature(ctx),
    )
    return [
        _put(
            ctx,
            usage.select(USAGE_COLUMNS).sort("account_id", "meter_register_id", "read_date"),
            "estimates",
            "basic_usage",
            shard,
        ),
        _put(
            ctx,
            ebr.select(EBR_COLUMNS).sort("meter_register_id", "read_date"),
            "estimates",
            "estimated_basic_read",
            shard,
        ),
        _put(ctx, _exc(exc), "estimates", "basic_exceptions", shard),
    ]


def _temperature(ctx: Ctx) -> pl.DataFrame | None:
    """The extract's daily temperature per jurisdiction (weather_daily), or None without weather."""
    url = work_url(ctx, "extract", "temperature.parquet")
    if not ctx.settings.use_weather or not storage.exists(url, ctx.settings):
        return None
    return _get(ctx, "extract", "temperature")


def interval_estimates(ctx: Ctx, shard: int) -> list[str]:
    """Interval register usage (actual + scalar × profile) and the shard's NEM12 estimate files."""
    from tasks.adapters.estimate_nem12 import write_estimate_nem12
    from tasks.adapters.meter_store import interval_month_scans
    from tasks.domain.interval_estimate import estimate_interval

    regs = _shard_of(_get(ctx, "extract", "registers"), shard)
    w = _shard_of(_get(ctx, "windows", "windows"), shard)
    lo, hi = (
        min(w["unbilled_from"].min() or ctx.period_start, ctx.period_start),
        ctx.run_date - dt.timedelta(days=1),
    )
    # the window's store rows kept by profiles_partial of this run (it reads from history start
    # on); a window reaching further back, or a partial from an older bua: read the store
    kept_url = work_url(ctx, "profiles", "window_data.arrow", shard)
    kept = lo >= _history_start(ctx) and storage.exists(kept_url, ctx.settings)
    usage, exc = estimate_interval(
        regs,
        _windows_for_estimation(w),
        _interval_scan(ctx, shard, lo, hi),
        _get(ctx, "segments", "fixed"),
        _get(ctx, "scalars", "scalars", shard),
        ctx.settings.segment_with_tni,
        months=interval_month_scans(ctx.settings, shard, lo, hi),
        data=pl.read_ipc(io.BytesIO(storage.read_bytes(kept_url, ctx.settings))) if kept else None,
    )
    usage = usage.select(USAGE_COLUMNS).sort("account_id", "meter_register_id", "read_date")
    nem12_dir = join_url(ctx.settings.output_url, "nem12", ctx.run_date.isoformat(), f"shard={shard:03d}")
    storage.delete(storage.list_files(nem12_dir, ctx.settings), ctx.settings)
    created = dt.datetime.combine(ctx.run_date, dt.time(0, 0))
    nem12 = write_estimate_nem12(usage, ctx.settings, ctx.run_date, shard, created)
    return [
        _put(ctx, usage, "estimates", "interval_usage", shard),
        _put(ctx, _exc(exc), "estimates", "interval_exceptions", shard),
        *nem12,
    ]


def rating(ctx: Ctx, shard: int) -> list[str]:
    """Rate the shard's unbilled usage (SPEC §4.4); account-level totals for the summary."""
    from tasks.domain.rating import rate_unbilled, register_day_sums
    from tasks.domain.unbilled import account_days

    w = _shard_of(_get(ctx, "windows", "windows"), shard)  # decoded once per process (_get)
    usage = pl.concat(
        [_get(ctx, "estimates", "interval_usage", shard), _get(ctx, "estimates", "basic_usage", shard)],
        how="vertical_relaxed",
    )
    lines, exc = rate_unbilled(
        w,
        account_days(w),
        usage,
        _get(ctx, "extract", "account_plans"),
        _get(ctx, "extract", "plans"),
        _get(ctx, "extract", "plan_rates"),
        _get(ctx, "extract", "tou_windows"),
        _get(ctx, "extract", "discounts"),
        w.select("account_id", "propensity"),
        ctx.settings.gst_rate,
        row_sums=(sums := register_day_sums(usage)),
    )
    return [
        _put(ctx, lines, "rating", "lines", shard),
        _put(ctx, account_totals(w, lines, usage, sums), "rating", "accounts", shard),
        _put(ctx, exc, "rating", "exceptions", shard),
    ]


def exceptions(ctx: Ctx) -> list[str]:
    """Every phase's exception rows in one sorted frame."""
    parts = [_get(ctx, "extract", "exceptions"), _get(ctx, "windows", "exceptions")]
    for s in range(ctx.settings.shards):
        parts += [
            _get(ctx, "basic", "exceptions", s),
            _get(ctx, "scalars", "exceptions", s),
            _get(ctx, "estimates", "basic_exceptions", s),
            _get(ctx, "estimates", "interval_exceptions", s),
            _get(ctx, "rating", "exceptions", s),
        ]
    return [_put(ctx, combine(parts), "exceptions", "bua_exception")]


def output_frames(ctx: Ctx) -> dict[str, pl.DataFrame]:
    """The run's rows of the four row tables, assembled from the work files (as prepare writes them)."""
    exc = _get(ctx, "exceptions", "bua_exception")
    accounts = (
        _get_all_shards(ctx, "rating", "accounts")
        .join(counts_by_account(exc), on="account_id", how="left")
        .with_columns(pl.col("exception_count").fill_null(0))
        .sort("account_id")
    )
    return {
        # the shards' lines by account (a stable sort: each account's lines keep their order, so the
        # database's index order (run_date, account_id, rowid) and every sum over it are the same):
        # the index is then written in order, not in 16 interleaved runs (~20% less insert CPU)
        "invoice_line_item_monthly": _get_all_shards(ctx, "rating", "lines").sort(
            "account_id", maintain_order=True
        ),
        "bua_account_summary": accounts,
        "bua_exception": exc,
        "estimated_basic_read": _get_all_shards(ctx, "estimates", "estimated_basic_read"),
    }


def prepare(ctx: Ctx) -> dict[str, Any]:
    """Write the output tables of the run date in one transaction (SPEC §4.5)."""
    from tasks.adapters.prepare import read_outputs, write_outputs

    frames = output_frames(ctx)
    counts = write_outputs(ctx.settings.database_url, ctx.run_id, ctx.run_date, frames)
    summary = read_outputs(ctx.settings.database_url, ctx.run_date, ("accrual_summary",))["accrual_summary"]
    exc = frames["bua_exception"]
    return {
        "files": [],
        "stats": {
            "counts": counts,
            "exceptions_by_code": dict(sorted(exc.group_by("code").len().iter_rows())),
            "accrual_summary": summary.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
            .drop("run_id")
            .to_dicts(),
        },
    }


EXPORT_TABLES = (
    "invoice_line_item_monthly",
    "bua_account_summary",
    "accrual_summary",
    "bua_exception",
    "estimated_basic_read",
)


def export(ctx: Ctx) -> list[str]:
    """CSV files of the run date's output tables (SPEC §6).

    The row tables are the frames prepare wrote (from the work files, typed like the table columns:
    money with 2 decimals, quantities with 3); ``accrual_summary``, computed by the database, is
    read back from it.
    """
    from tasks.adapters.export import accrual_export_url, export_tables
    from tasks.adapters.prepare import read_outputs, typed_like_table

    frames = {
        name: typed_like_table(
            name, df.with_columns(pl.lit(ctx.run_id).alias("run_id"), pl.lit(ctx.run_date).alias("run_date"))
        )
        for name, df in output_frames(ctx).items()
    }
    frames["accrual_summary"] = read_outputs(ctx.settings.database_url, ctx.run_date, ("accrual_summary",))[
        "accrual_summary"
    ]
    frames = {name: _export_order(name, frames[name]) for name in EXPORT_TABLES}
    return export_tables(frames, accrual_export_url(ctx.settings, ctx.run_date), ctx.settings)


def _export_order(name: str, df: pl.DataFrame) -> pl.DataFrame:
    keys = {
        "invoice_line_item_monthly": [
            "account_id",
            "year_mnth",
            "plan_item_type_name",
            "feature_type_name",
            "time_class_name",
        ],
        "bua_account_summary": ["account_id"],
        "accrual_summary": [
            "year_mnth",
            "state",
            "fuel",
            "segment",
            "ili_state",
            "discount_state",
            "feature_type_name",
            "time_class_name",
        ],
        "bua_exception": ["account_id", "meter_register_id", "code", "detail"],
        "estimated_basic_read": ["meter_register_id", "read_date"],
    }[name]
    return df.sort(keys, nulls_last=True, maintain_order=True)


def report(ctx: Ctx) -> list[str]:
    """The self-contained HTML report of the run date (SPEC §6, tasks/pipeline/report.py)."""
    from tasks.pipeline.report import write_report

    return [write_report(ctx)]


def notify(ctx: Ctx) -> dict[str, Any]:
    """The Slack "finished" message with totals by state and fuel (SPEC §6, tasks/pipeline/notify.py).

    The phase composes the message from the run date's outputs; it is cached like every phase, so a
    re-run that changes nothing is all cache hits. Posting is the runner's (``bua_monthly`` after the
    last phase, ``bua run``'s sequential path after ``run_accrual``): a re-run still says it finished.
    """
    from tasks.pipeline.notify import finished_text

    return {"files": [], "stats": {"message": finished_text(ctx)}}


def validation(ctx: Ctx) -> dict[str, Any]:
    """Back-test and true-up (SPEC §4.6, tasks/pipeline/validation.py): bua_backtest, bua_trueup and their CSVs."""
    from tasks.pipeline.validation import run_validation

    return run_validation(ctx)


PHASES: list[tuple[str, Callable[..., Any], bool]] = [
    ("extract", extract, False),
    ("windows", windows, False),
    ("profiles_partial", profiles_partial, True),
    ("profiles_combine", profiles_combine, False),
    ("segments", segments, False),
    ("read_pairs", read_pairs, True),
    ("gas_shape", gas_shape, False),
    ("scalars", scalars, True),
    ("basic_estimates", basic_estimates, True),
    ("interval_estimates", interval_estimates, True),
    ("rating", rating, True),
    ("exceptions", exceptions, False),
    ("prepare", prepare, False),
    ("export", export, False),
    ("validation", validation, False),
    ("report", report, False),
    ("notify", notify, False),
]


# ---------------------------------------------------------------- sequential run (tasks/pipeline/sequential.py)
from tasks.pipeline.sequential import RunResult, code_version, run_accrual  # noqa: E402 — re-exported, imports this module lazily

__all__ = ["PHASES", "RunContext", "RunResult", "code_version", "run_accrual"]
