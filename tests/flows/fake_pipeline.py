"""A tiny stand-in for the engine's phases with the same names, shapes and file layout.

It follows the contract of DESIGN.md "Pipeline phases": ``fn(spec)`` / ``fn(spec, shard)``, reads
the meter store and earlier phases' work files, writes sorted parquet under
``{output_url}/work/{run_date}/…`` and returns the URLs it wrote. The arithmetic is trivial; what
matters is that every byte depends on the inputs, so resume and runner tests compare real bytes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from flows.glue import RunSpec
from tasks.adapters import storage
from tasks.settings import Settings, join_url


def make_source(settings: Settings, accounts: int = 40, days: int = 10) -> None:
    """Accounts and per-shard interval data in the meter store (deterministic)."""
    rng = np.random.default_rng(7)
    acc = pl.DataFrame(
        {
            "account_id": np.arange(1, accounts + 1, dtype=np.int64),
            "shard": (np.arange(accounts) % settings.shards).astype(np.int64),
            "segment": np.where(np.arange(accounts) % 3 == 0, "BUS", "RES"),
            "basic": np.arange(accounts) % 4 == 0,
        }
    )
    storage.write_parquet_atomic(acc, join_url(settings.meter_store, "accounts.parquet"), settings)
    start = dt.date(2026, 10, 1)
    for shard in range(settings.shards):
        ids = acc.filter(pl.col("shard") == shard)["account_id"].to_numpy()
        n = len(ids) * days
        data = pl.DataFrame(
            {
                "account_id": np.repeat(ids, days),
                "read_date": [start + dt.timedelta(days=int(d)) for d in np.tile(np.arange(days), len(ids))],
                "kwh": np.round(rng.gamma(2.0, 5.0, n), 3),
            }
        )
        url = join_url(
            settings.meter_store, "interval", f"shard={shard:03d}", "month=2026-10", "data.parquet"
        )
        storage.write_parquet_atomic(data, url, settings)


def _w(spec: RunSpec, *parts: str) -> str:
    return join_url(spec.settings.output_url, "work", spec.run_date.isoformat(), *parts)


def _write(spec: RunSpec, df: pl.DataFrame, url: str) -> str:
    storage.write_parquet_atomic(df.sort(df.columns), url, spec.settings)
    return url


def _read(spec: RunSpec, url: str) -> pl.DataFrame:
    return pl.read_parquet(storage.read_bytes(url, spec.settings))


def _shard(shard: int) -> str:
    return f"shard={shard:03d}"


def _all_shards(spec: RunSpec, *parts: str) -> pl.DataFrame:
    return pl.concat([_read(spec, _w(spec, parts[0], _shard(s), *parts[1:])) for s in range(spec.shards)])


def _interval(spec: RunSpec, shard: int) -> pl.DataFrame:
    files = storage.list_files(join_url(spec.settings.meter_store, "interval", _shard(shard)), spec.settings)
    return pl.concat([_read(spec, f) for f in files]).filter(pl.col("read_date") < spec.run_date)


def _accounts(spec: RunSpec, shard: int | None = None) -> pl.DataFrame:
    df = _read(spec, _w(spec, "extract", "accounts.parquet"))
    return df if shard is None else df.filter(pl.col("shard") == shard)


def extract(spec: RunSpec) -> list[str]:
    acc = pl.read_parquet(Path(spec.settings.meter_store) / "accounts.parquet")
    return [_write(spec, acc, _w(spec, "extract", "accounts.parquet"))]


def windows(spec: RunSpec) -> list[str]:
    days = (spec.period_end - spec.period_start).days + 1
    win = _accounts(spec).select("account_id", pl.lit(days).alias("unbilled_days"))
    return [_write(spec, win, _w(spec, "windows", "windows.parquet"))]


def profiles_partial(spec: RunSpec, shard: int) -> list[str]:
    data = _interval(spec, shard).join(_accounts(spec, shard), on="account_id")
    part = data.group_by("segment").agg(pl.col("kwh").sum().alias("kwh"), pl.len().alias("n"))
    return [_write(spec, part, _w(spec, "profiles", _shard(shard), "partial.parquet"))]


def profiles_combine(spec: RunSpec) -> list[str]:
    prof = _all_shards(spec, "profiles", "partial.parquet").group_by("segment").agg(pl.col("kwh", "n").sum())
    return [_write(spec, prof, _w(spec, "profiles", "profiles.parquet"))]


def segments(spec: RunSpec) -> list[str]:
    prof = _read(spec, _w(spec, "profiles", "profiles.parquet"))
    fixed = prof.select("segment", (pl.col("kwh") / pl.col("n")).round(6).alias("mean"))
    return [_write(spec, fixed, _w(spec, "segments", "fixed.parquet"))]


def read_pairs(spec: RunSpec, shard: int) -> list[str]:
    pairs = (
        _accounts(spec, shard)
        .filter("basic")
        .select("account_id", (pl.col("account_id") * 11.5).alias("kwh"))
    )
    return [_write(spec, pairs, _w(spec, "basic", _shard(shard), "pairs.parquet"))]


def gas_shape(spec: RunSpec) -> list[str]:
    mean = _read(spec, _w(spec, "segments", "fixed.parquet"))["mean"].sum()
    total = _all_shards(spec, "basic", "pairs.parquet").select(
        (pl.col("kwh").sum() + mean).alias("gas_total")
    )
    return [_write(spec, total, _w(spec, "segments", "gas_macro.parquet"))]


def scalars(spec: RunSpec, shard: int) -> list[str]:
    fixed = _read(spec, _w(spec, "segments", "fixed.parquet"))
    acc = _accounts(spec, shard).join(fixed, on="segment")
    per = _interval(spec, shard).group_by("account_id").agg(pl.col("kwh").mean().alias("daily"))
    sc = acc.join(per, on="account_id", how="left").select(
        "account_id", (pl.col("daily").fill_null(pl.col("mean")) / pl.col("mean")).round(6).alias("scalar")
    )
    return [_write(spec, sc, _w(spec, "scalars", _shard(shard), "scalars.parquet"))]


def basic_estimates(spec: RunSpec, shard: int) -> list[str]:
    pairs = _read(spec, _w(spec, "basic", _shard(shard), "pairs.parquet"))
    gas = _read(spec, _w(spec, "segments", "gas_macro.parquet"))["gas_total"][0]
    win = _read(spec, _w(spec, "windows", "windows.parquet"))
    usage = pairs.join(win, on="account_id").select(
        "account_id", (pl.col("kwh") / 90 * pl.col("unbilled_days") + gas * 1e-6).round(3).alias("kwh")
    )
    return [_write(spec, usage, _w(spec, "estimates", _shard(shard), "basic_usage.parquet"))]


def interval_estimates(spec: RunSpec, shard: int) -> list[str]:
    sc = _read(spec, _w(spec, "scalars", _shard(shard), "scalars.parquet"))
    fixed = _read(spec, _w(spec, "segments", "fixed.parquet"))
    win = _read(spec, _w(spec, "windows", "windows.parquet"))
    acc = _accounts(spec, shard).filter(~pl.col("basic")).join(fixed, on="segment").join(sc, on="account_id")
    usage = acc.join(win, on="account_id").select(
        "account_id", (pl.col("scalar") * pl.col("mean") * pl.col("unbilled_days")).round(3).alias("kwh")
    )
    return [_write(spec, usage, _w(spec, "estimates", _shard(shard), "interval_usage.parquet"))]


def rating(spec: RunSpec, shard: int) -> list[str]:
    usage = pl.concat(
        [
            _read(spec, _w(spec, "estimates", _shard(shard), f"{k}_usage.parquet"))
            for k in ("basic", "interval")
        ]
    )
    lines = usage.join(_accounts(spec, shard), on="account_id").select(
        "account_id", "segment", "kwh", (pl.col("kwh") * 0.31).round(2).alias("net_amount")
    )
    return [_write(spec, lines, _w(spec, "rating", _shard(shard), "lines.parquet"))]


def exceptions(spec: RunSpec) -> list[str]:
    sc = _all_shards(spec, "scalars", "scalars.parquet")
    exc = sc.filter(pl.col("scalar") > 1.2).select("account_id", pl.lit("HIGH_SCALAR").alias("code"))
    return [_write(spec, exc, _w(spec, "exceptions", "bua_exception.parquet"))]


def prepare(spec: RunSpec) -> dict:
    lines = _all_shards(spec, "rating", "lines.parquet")
    summary = lines.group_by("segment").agg(pl.col("net_amount").sum().round(2), pl.len().alias("accounts"))
    exc = _read(spec, _w(spec, "exceptions", "bua_exception.parquet"))
    tables = join_url(spec.settings.output_url, "tables", spec.run_date.isoformat())
    files = [
        _write(
            spec, lines.with_columns(pl.lit(spec.run_id).alias("run_id")), join_url(tables, "lines.parquet")
        ),
        _write(spec, summary, join_url(tables, "accrual_summary.parquet")),
    ]
    by_code = {r["code"]: r["len"] for r in exc.group_by("code").len().to_dicts()}
    return {
        "files": files,
        "stats": {"accrual_summary": summary.sort("segment").to_dicts(), "exceptions_by_code": by_code},
    }


def export(spec: RunSpec) -> dict:
    tables = join_url(spec.settings.output_url, "tables", spec.run_date.isoformat())
    summary = _read(spec, join_url(tables, "accrual_summary.parquet")).sort("segment")
    url = join_url(
        spec.settings.output_url, "export", "csv", spec.run_date.isoformat(), "accrual_summary.csv"
    )
    storage.write_bytes_atomic(summary.write_csv().encode(), url, spec.settings)
    return {"files": [url]}


PHASES = [
    "extract",
    "windows",
    "profiles_partial",
    "profiles_combine",
    "segments",
    "read_pairs",
    "gas_shape",
    "scalars",
    "basic_estimates",
    "interval_estimates",
    "rating",
    "exceptions",
    "prepare",
    "export",
]
PER_SHARD = {"profiles_partial", "read_pairs", "scalars", "basic_estimates", "interval_estimates", "rating"}
