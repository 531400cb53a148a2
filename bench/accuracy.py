"""Accuracy benchmark of the estimation (issue 4): estimated unbilled volume vs the generator's truth.

    .venv/bin/python bench/accuracy.py --accounts 3000 --seed 7301 [--work DIR] [--shards 4]

Generates a portfolio with a seed the tests do not use (``bua generate … --load``, then ingests its
NEM12/NEM13 files), runs the accrual with each basic method (``--engine pipeline``, the default:
``tasks.pipeline.accrual.run_accrual`` — the month end ``bua run`` runs — and its usage work files; ``--engine functions``: the estimation
functions called shard by shard by bench/estimation_driver.py), and compares the unbilled volume of every account-month
(consumption + controlled load registers; solar generation is a credit and is left out) with
``truth/register_day.parquet``. Metrics: portfolio NMBE = Σ(est − true) / Σ true; account-month
CV(RMSE) = √mean((est − true)²) / mean(true); MAPE = mean(|est − true| / true) over account-months
with true ≥ 1 kWh (gas MJ are converted to kWh, ÷ 3.6, so that mixed groups add up) — by fuel, meter type and segment, and side by side the naive method (last
issued invoice's daily usage × unbilled days; never-billed accounts get their segment's mean).
Prints a table and writes bench/results/accuracy.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.estimation_driver import Inputs, load_inputs, run_estimation, usage_daily, windows_for  # noqa: E402
from tasks.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VOLUME_STREAMS = ("CONSUMPTION", "CONTROLLED_LOAD")
JOURNAL = {
    1: "RESIDENTIAL",
    2: "SME",
    3: "C&I",
}  # the generator's journal_segment ids (tasks/generate/reference.py)
METHODS = ("scalar", "seasonal", "weather")


def _bua(args: list[str]) -> None:
    exe = REPO / ".venv" / "bin" / "bua"
    subprocess.run([str(exe), *args], check=True, cwd=REPO)


def prepare(
    work: Path, accounts: int, seed: int, months: int, shards: int, variant: Path | None = None
) -> tuple[Settings, Path]:
    """Generate (with the generator variant, if any), load and ingest once — NEM12, NEM13 and the
    weather files (reused when the work folder already holds them)."""
    gen = work / "gen"
    settings = Settings(
        database_url=f"sqlite:///{work / 'bua.db'}", meter_store=str(work / "store"), output_url=str(work / "out"),
        shards=shards,
    )  # fmt: skip
    common = [
        "--database-url",
        settings.db_url,
        "--meter-store",
        settings.meter_store,
        "--shards",
        str(shards),
    ]
    if not (gen / "manifest.json").exists():
        work.mkdir(parents=True, exist_ok=True)
        _bua([*common, "db", "init"])
        _bua([*common, "generate", "--accounts", str(accounts), "--seed", str(seed), "--months", str(months),
              "--out", str(gen), "--load", *(["--variant", str(variant)] if variant else [])])  # fmt: skip
        if not any((work / "store").rglob("*.parquet")):
            _bua([*common, "ingest", "nem12", str(gen / "nem12")])
        if (gen / "nem13").exists() and any((gen / "nem13").iterdir()):
            _bua([*common, "ingest", "nem13", str(gen / "nem13")])
        if (gen / "weather").exists() and any((gen / "weather").iterdir()):
            _bua(
                [*common, "--output-url", str(work / "out-ingest"), "ingest", "weather", str(gen / "weather")]
            )
    return settings, gen


def pipeline_daily(
    settings: Settings, work: Path, run_date: dt.date, method: str
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Run the month end's phase graph (tasks/pipeline/graph.py, the phases ``bua run`` runs, walked
    without Prefect: accuracy, not time, is measured here) with one basic method; read back its
    usage work files. ``weather`` is ``seasonal`` with the weather_daily observations
    (BUA_USE_WEATHER); ``scalar`` and ``seasonal`` run without them."""
    from tasks.pipeline.datasets import Datasets
    from tasks.pipeline.graph import REGISTRY
    from tasks.pipeline.spec import resolve_run
    from tasks.pipeline.walk import walk_graph

    basic = "seasonal" if method == "weather" else method
    s = settings.model_copy(
        update={"output_url": str(work / f"out-{method}"), "use_weather": method == "weather"}
    )
    spec = resolve_run(s, run_date, basic_method=basic)
    t0, c0 = time.perf_counter(), time.process_time()
    runs = walk_graph(spec, s)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    io = Datasets(spec, s, REGISTRY)
    usage = pl.concat([*io.load("interval_usage"), *io.load("basic_usage")], how="vertical_relaxed")
    exc = io.load("bua_exception")
    phases: dict[str, float] = {}
    for (phase, _), r in runs.items():
        phases[f"phase_{phase}"] = phases.get(f"phase_{phase}", 0.0) + r.seconds
    return usage_daily(usage), exc, {"month_end": seconds, "month_end_cpu": cpu, **phases}


def run_date_of(gen: Path) -> dt.date:
    manifest = json.loads((gen / "manifest.json").read_text())
    args = manifest.get("arguments", manifest)
    end = args.get("end") or manifest.get("end")
    return dt.date.fromisoformat(str(end)[:10]) + dt.timedelta(days=1)


def naive_daily(inputs: Inputs, run_date: dt.date) -> pl.DataFrame:
    """account_id → daily usage of its last issued invoice (segment mean when never billed)."""
    inv = inputs.invoices.filter((pl.col("status") == "ISSUED") & (pl.col("issue_date") < run_date))
    last = (
        inv.sort("issue_date", "period_end")
        .group_by("account_id")
        .agg(
            pl.col("id").last().alias("invoice_id"),
            pl.col("period_start").last(),
            pl.col("period_end").last(),
        )
    )
    qty = (
        inputs.invoice_lines.filter(pl.col("item_type").is_in(["USAGE", "CONTROLLED_LOAD"]))
        .group_by("invoice_id")
        .agg(pl.col("quantity").sum())
    )
    daily = last.join(qty, on="invoice_id", how="left").select(
        "account_id",
        (
            pl.col("quantity").fill_null(0.0)
            / ((pl.col("period_end") - pl.col("period_start")).dt.total_days() + 1)
        ).alias("naive_daily"),
    )
    acc = inputs.accounts.select("account_id", "customer_class", "jurisdiction", "service_type").join(
        daily, on="account_id", how="left"
    )
    return acc.with_columns(
        pl.col("naive_daily").fill_null(
            pl.col("naive_daily").mean().over("customer_class", "jurisdiction", "service_type")
        )
    ).select("account_id", pl.col("naive_daily").fill_null(0.0))


def account_months(
    daily: pl.DataFrame, truth: pl.DataFrame, inputs: Inputs, naive: pl.DataFrame, exceptions: pl.DataFrame
) -> pl.DataFrame:
    vol = daily.filter(pl.col("stream").is_in(VOLUME_STREAMS)).join(
        truth, on=["meter_register_id", "read_date"], how="left"
    )
    am = (
        vol.with_columns(year_mnth=pl.col("read_date").dt.strftime("%Y%m"))
        .group_by("account_id", "year_mnth")
        .agg(
            est=pl.col("volume").sum(),
            est_estimated=pl.col("volume_estimated").sum(),
            true=pl.col("truth").fill_null(0.0).sum(),
            days=pl.col("read_date").n_unique(),
            meter_type=pl.when(pl.col("method").n_unique() > 1)
            .then(pl.lit("MIXED"))
            .otherwise(pl.col("method").first()),
        )
    )
    acc = inputs.accounts.select(
        "account_id",
        pl.col("service_type").alias("fuel"),
        pl.concat_str(["customer_class", "jurisdiction"], separator="|").alias("segment"),
        pl.col("journal_segment_id")
        .replace_strict(JOURNAL, default="?", return_dtype=pl.String)
        .alias("journal")
        if "journal_segment_id" in inputs.accounts.columns
        else pl.lit("?").alias("journal"),
    )
    bad = exceptions.filter(pl.col("code") == "BAD_READ")["account_id"].unique().implode()
    return (
        am.join(acc, on="account_id")
        .with_columns(bad_read=pl.col("account_id").is_in(bad))
        .join(naive, on="account_id", how="left")
        .with_columns(naive=pl.col("naive_daily").fill_null(0.0) * pl.col("days"))
    )


def metrics(df: pl.DataFrame, est: str) -> dict[str, float]:
    if df.height == 0:
        return {"n": 0}
    t, e = df["true"], df[est]
    mean_t = t.mean() or math.nan
    err = e - t
    pos = df.filter(pl.col("true") >= 1.0)
    return {
        "n": df.height,
        # sums, so that several portfolios' metrics can be pooled (bench/accuracy_table.py)
        "sum_err": float(err.sum()),
        "sum_sq_err": float((err**2).sum()),
        "n_pos": pos.height,
        "sum_ape": float(((pos[est] - pos["true"]).abs() / pos["true"]).sum()) if pos.height else 0.0,
        "true": float(t.sum()),
        "nmbe_pct": 100.0 * float(err.sum()) / float(t.sum()) if t.sum() else math.nan,
        "cvrmse_pct": 100.0 * math.sqrt(float((err**2).mean())) / mean_t,
        "mape_pct": 100.0 * float(((pos[est] - pos["true"]).abs() / pos["true"]).mean())
        if pos.height
        else math.nan,
    }


def table(am: dict[str, pl.DataFrame]) -> list[dict]:
    rows = []
    base = am.get("seasonal", next(iter(am.values())))
    groups: list[tuple[str, pl.Expr]] = [("portfolio", pl.lit(True))]
    groups += [(f"fuel={f}", pl.col("fuel") == f) for f in sorted(base["fuel"].unique())]
    groups += [(f"meter={m}", pl.col("meter_type") == m) for m in sorted(base["meter_type"].unique())]
    groups += [
        (f"{f}/{m}", (pl.col("fuel") == f) & (pl.col("meter_type") == m))
        for f in sorted(base["fuel"].unique())
        for m in sorted(base["meter_type"].unique())
    ]
    # the largest errors of basic electricity come from a handful of very large registers; show the
    # group without the account-months of its 1% largest absolute errors (default method) too
    big = base.filter((pl.col("fuel") == "ELECTRICITY") & (pl.col("meter_type") == "BASIC"))
    if big.height:
        key = pl.concat_str([pl.col("account_id").cast(pl.String), pl.col("year_mnth")], separator="|")
        cut = (big["est"] - big["true"]).abs().quantile(0.99)
        top = big.filter((pl.col("est") - pl.col("true")).abs() > cut).select(key.alias("k"))["k"].implode()
        groups.append(
            (
                "ELECTRICITY/BASIC w/o top 1% err",
                (pl.col("fuel") == "ELECTRICITY") & (pl.col("meter_type") == "BASIC") & ~key.is_in(top),
            )
        )
    groups += [(f"journal={s}", pl.col("journal") == s) for s in sorted(base["journal"].unique())]
    groups += [
        (
            f"{f}/BASIC/{s}",
            (pl.col("fuel") == f) & (pl.col("meter_type") == "BASIC") & (pl.col("journal") == s),
        )
        for f in sorted(base["fuel"].unique())
        for s in sorted(base["journal"].unique())
    ]
    groups += [(f"segment={s}", pl.col("segment") == s) for s in sorted(base["segment"].unique())]
    for name, cond in groups:
        row: dict = {"group": name}
        for method, df in am.items():
            sub = df.filter(cond)
            if sub.height == 0:
                continue
            row[method] = metrics(sub, "est")
        sub = base.filter(cond)
        if sub.height:
            row["naive"] = metrics(sub, "naive")
            rows.append(row)
    return rows


def print_table(rows: list[dict], methods: list[str]) -> None:
    cols = [*methods, "naive"]
    head = f"{'group':<32}{'n':>6}" + "".join(
        f"{c + ' NMBE':>15}{c + ' CV':>13}{c + ' MAPE':>15}" for c in cols
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        line = f"{r['group']:<32}{r['naive']['n']:>6}"
        for c in cols:
            m = r.get(c, {})
            line += f"{m.get('nmbe_pct', math.nan):>14.2f}%{m.get('cvrmse_pct', math.nan):>12.2f}%{m.get('mape_pct', math.nan):>14.2f}%"
        print(line)


def _arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=7301)
    ap.add_argument("--months", type=int, default=13)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--work", type=Path, default=REPO / ".bua" / "bench-accuracy")
    ap.add_argument("--run-date", type=dt.date.fromisoformat, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "accuracy.json")
    ap.add_argument(
        "--variant",
        type=Path,
        default=None,
        help="generator settings JSON (bench/variants/*.json, tasks/generate/variant.py); default: the standard generator",
    )
    ap.add_argument(
        "--dump",
        type=Path,
        default=None,
        help="folder to write each method's account-months (account_months-METHOD.parquet) for diagnosis",
    )
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated: scalar, seasonal, weather")
    ap.add_argument(
        "--engine",
        choices=["pipeline", "functions"],
        default="pipeline",
        help="pipeline: `bua run` per method (the real month end); functions: call the estimation directly",
    )
    return ap.parse_args()


def main() -> None:
    a = _arguments()
    vname = a.variant.stem if a.variant else "default"
    work = a.work / f"a{a.accounts}-s{a.seed}-m{a.months}" / vname
    t0 = time.perf_counter()
    settings, gen = prepare(work, a.accounts, a.seed, a.months, a.shards, a.variant)
    t_prep = time.perf_counter() - t0
    run_date = a.run_date or run_date_of(gen)
    inputs = load_inputs(settings.db_url, a.shards)
    windows = windows_for(inputs, run_date)
    truth = pl.read_parquet(gen / "truth" / "register_day.parquet")
    value_col = "consumption" if "consumption" in truth.columns else truth.columns[-1]
    truth = truth.select(
        "meter_register_id",
        pl.col("read_date").cast(pl.Date),
        pl.col(value_col).cast(pl.Float64).alias("truth"),
    )
    naive = naive_daily(inputs, run_date)
    cache: dict = {}
    am: dict[str, pl.DataFrame] = {}
    timings: dict[str, dict[str, float]] = {}
    methods = [m for m in a.methods.split(",") if m]
    for method in methods:
        if a.engine == "pipeline":
            daily, exc, timings[method] = pipeline_daily(settings, work, run_date, method)
        else:
            daily, exc, timings[method] = run_estimation(inputs, windows, settings, run_date, method, cache)  # type: ignore[arg-type]
        am[method] = account_months(daily, truth, inputs, naive, exc)
        if a.dump:
            a.dump.mkdir(parents=True, exist_ok=True)
            am[method].write_parquet(a.dump / f"account_months-{method}.parquet")
    rows = table(am)
    print(
        f"run_date {run_date}, {a.accounts} accounts, seed {a.seed}, variant {vname}, engine {a.engine}; "
        f"account-months {next(iter(am.values())).height}"
    )
    print_table(rows, list(am))
    port = {r["group"]: r for r in rows}["portfolio"]
    best = min(methods, key=lambda m: port[m]["cvrmse_pct"])
    basic_rows = {r["group"]: r for r in rows}.get("meter=BASIC", {})
    print("\nbasic CV(RMSE): " + ", ".join(f"{m} {basic_rows.get(m, {}).get('cvrmse_pct', math.nan):.2f}%" for m in methods)
          + f" -> better overall: {best}")  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps(
            {
                "arguments": {
                    "accounts": a.accounts,
                    "seed": a.seed,
                    "months": a.months,
                    "shards": a.shards,
                    "run_date": run_date.isoformat(),
                    "variant": vname,
                },  # fmt: skip
                "variant_settings": json.loads(a.variant.read_text()) if a.variant else None,
                "account_months": next(iter(am.values())).height,
                "engine": a.engine,
                "exceptions": exc.group_by("code").len().sort("code").rows(),
                "fills": cache["fills"].group_by("source").len().sort("source").rows() if cache else None,
                "gas_fit": cache["gas_fit"].to_dicts() if cache else None,
                "prepare_seconds": round(t_prep, 1),
                "timings_seconds": {m: {k: round(v, 2) for k, v in t.items()} for m, t in timings.items()},
                "load_average": list(os.getloadavg()),
                "better_method": best,
                "rows": rows,
            },
            indent=1,
            default=str,
        )
    )
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
