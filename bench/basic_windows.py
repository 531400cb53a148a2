"""Where a portfolio's basic-register error comes from: each register's estimate over the days after
its last read (its unbilled window up to period end) against the generator's truth, by model.

    .venv/bin/python bench/basic_windows.py --work .bua/bench-accuracy/a2000-s6421-m13/dev [--top 15]

``--work`` is a portfolio folder that bench/accuracy.py prepared (bua.db, store, gen/truth). The
estimation is called directly on all registers at once (bench/estimation_driver.py's profiles and
gas shape, the temperature of ``weather_daily``, the pooled balance points over every register), so
its figures are close to, not equal to, the month end's (``--dump`` of bench/accuracy.py gives
those per account-month). Prints, per fuel, customer class and model (SEASONAL, SCALAR, WEATHER
HEAT / COOL / BOTH): registers, NMBE and share of the squared error of the windows, how many
windows' mean degree days lie above every fitted pair's (``above``: extrapolated), and the
registers with the largest squared errors. ``--out`` writes the per-register table (parquet).
Used for issue 15's diagnosis (docs/ACCURACY.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import polars as pl
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.estimation_driver import load_inputs, run_estimation, windows_for  # noqa: E402
from tasks.domain import basic_estimate as be  # noqa: E402
from tasks.domain.basic_fit import _with_weather_sums  # noqa: E402
from tasks.domain.basic_macro import _with_pair_sums, keyed_macro  # noqa: E402
from tasks.domain.basic_pairs import basic_registers, read_pairs  # noqa: E402
from tasks.domain.weather import daily_temperature  # noqa: E402
from tasks.settings import Settings  # noqa: E402


def _temperature(db_url: str) -> pl.DataFrame:
    eng = sa.create_engine(db_url)
    w = pl.read_database(
        "select w.date, w.min_temp_c, w.max_temp_c, j.code as jurisdiction "
        "from weather_daily w join jurisdiction j on j.id = w.jurisdiction_id",
        eng,
    )
    return daily_temperature(
        w.with_columns(
            pl.col("date").cast(pl.String).str.to_date(),
            pl.col("min_temp_c").cast(pl.Float64),
            pl.col("max_temp_c").cast(pl.Float64),
        )
    )


def register_windows(work: Path, run_date: dt.date, shards: int, weather: bool = True) -> pl.DataFrame:
    """One row per basic register with a last read before period end: model, weather kind and
    balance points, window days, estimate (``est``) and truth (``true``) over the days after its
    last read up to period end, and the largest mean degree days of its fitted pairs (h_hi, c_hi)
    against the window's (h_win, c_win)."""
    settings = Settings(
        database_url=f"sqlite:///{work / 'bua.db'}",
        meter_store=str(work / "store"),
        output_url=str(work / "windows-out"),
        shards=shards,
    )
    period_end = run_date - dt.timedelta(days=1)
    inputs = load_inputs(settings.db_url, shards)
    windows = windows_for(inputs, run_date)
    cache: dict = {}
    run_estimation(inputs, windows, settings, run_date, "scalar", cache)
    temp = _temperature(settings.db_url) if weather else None
    regs = basic_registers(inputs.registers)
    macro, gas_macro = cache["macro"], cache["gas_macro"]
    bp = be.weather_balance_points(regs, inputs.reads, macro, gas_macro, run_date, period_end, temp)
    _, ebr, _ = be.estimate_basic(
        regs, windows, inputs.reads, macro, gas_macro, run_date, period_end, "seasonal",
        temperature=temp, class_scalars=cache["class_scalars"], balance_points=bp,
    )  # fmt: skip
    pairs, _ = read_pairs(regs, inputs.reads)
    rm = keyed_macro(regs, macro, gas_macro)
    models, dd, _ = be._models(
        regs, inputs.reads, pairs, _with_pair_sums(pairs, rm), rm, run_date, period_end, "seasonal", temp, None, bp
    )  # fmt: skip
    jur = regs.select("meter_register_id", "jurisdiction").unique("meter_register_id")
    last = pairs.group_by("meter_register_id").agg(pl.col("last_read_date").max())
    out = (
        models.select("meter_register_id", "model", "h_bp", "c_bp")
        .join(
            regs.select(
                "meter_register_id", "service_type", "customer_class", "jurisdiction", "dial_digits"
            ).unique("meter_register_id"),
            on="meter_register_id",
        )
        .join(last, on="meter_register_id")
        .filter(pl.col("last_read_date") < period_end)
        .with_columns(days=(pl.lit(period_end) - pl.col("last_read_date")).dt.total_days())
        .join(ebr.select("meter_register_id", est="consumption"), on="meter_register_id", how="left")
    )
    truth = pl.read_parquet(work / "gen" / "truth" / "register_day.parquet")
    value = "consumption" if "consumption" in truth.columns else truth.columns[-1]
    tw = (
        truth.select("meter_register_id", pl.col("read_date").cast(pl.Date), pl.col(value).cast(pl.Float64))
        .join(last, on="meter_register_id")
        .filter((pl.col("read_date") > pl.col("last_read_date")) & (pl.col("read_date") <= period_end))
        .group_by("meter_register_id")
        .agg(true=pl.col(value).sum())
    )
    out = out.join(tw, on="meter_register_id", how="left").with_columns(
        kind=pl.when(pl.col("model") != "WEATHER")
        .then(pl.col("model"))
        .when(pl.col("h_bp").is_null())
        .then(pl.lit("WEATHER COOL"))
        .when(pl.col("c_bp").is_null())
        .then(pl.lit("WEATHER HEAT"))
        .otherwise(pl.lit("WEATHER BOTH"))
    )
    if dd is None:
        return out
    fit = be._fit_pairs(regs, inputs.reads, pairs, rm, None).filter(
        (pl.col("end") < run_date) & (pl.col("days") > 0)
    )
    bps = models.filter(pl.col("model") == "WEATHER").select("meter_register_id", "h_bp", "c_bp")
    fw = _with_weather_sums(
        fit.join(bps, on="meter_register_id").with_columns(_f=pl.col("start") + pl.duration(days=1)),
        "_f",
        "end",
        dd,
        jur,
    )
    top = fw.group_by("meter_register_id").agg(
        h_hi=(pl.col("sum_hdd") / pl.col("days")).max(), c_hi=(pl.col("sum_cdd") / pl.col("days")).max()
    )
    win = _with_weather_sums(
        last.join(bps, on="meter_register_id").with_columns(
            _f=pl.col("last_read_date") + pl.duration(days=1), _pe=pl.lit(period_end)
        ),
        "_f",
        "_pe",
        dd,
        jur,
    ).select(
        "meter_register_id",
        h_win=pl.col("sum_hdd") / (pl.col("_pe") - pl.col("last_read_date")).dt.total_days(),
        c_win=pl.col("sum_cdd") / (pl.col("_pe") - pl.col("last_read_date")).dt.total_days(),
    )
    return out.join(top, on="meter_register_id", how="left").join(win, on="meter_register_id", how="left")


def breakdown(w: pl.DataFrame) -> pl.DataFrame:
    """Per fuel, class and model kind: registers, NMBE, share of the squared error, windows above
    the fitted range (mean degree days above every fitted pair's)."""
    w = w.filter(pl.col("true").is_not_null() & pl.col("est").is_not_null()).with_columns(
        err=pl.col("est") - pl.col("true")
    )
    above = pl.lit(False)
    if "h_hi" in w.columns:
        above = ((pl.col("h_win") > pl.col("h_hi")) | (pl.col("c_win") > pl.col("c_hi"))).fill_null(False)
    total = w.group_by("service_type").agg(_tot=(pl.col("err") ** 2).sum())
    return (
        w.join(total, on="service_type")
        .group_by("service_type", "customer_class", "kind")
        .agg(
            registers=pl.len(),
            nmbe_pct=100 * pl.col("err").sum() / pl.col("true").sum(),
            sq_err_share=(pl.col("err") ** 2).sum() / pl.col("_tot").first(),
            above=above.sum(),
        )
        .sort("service_type", "customer_class", "kind")
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--run-date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--no-weather", action="store_true", help="seasonal without temperature")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    w = register_windows(a.work, a.run_date, a.shards, weather=not a.no_weather)
    if a.out:
        w.write_parquet(a.out)
    pl.Config.set_tbl_rows(60)
    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(200)
    print(breakdown(w))
    top = (
        w.filter(pl.col("true").is_not_null())
        .with_columns(err=pl.col("est") - pl.col("true"))
        .with_columns(rel_err=pl.col("err") / pl.col("true"))
        .sort(pl.col("err").abs(), descending=True)
        .head(a.top)
    )
    print(top.select("meter_register_id", "service_type", "customer_class", "jurisdiction", "kind", "h_bp", "c_bp",
                     "dial_digits", "days", "true", "est", "rel_err"))  # fmt: skip


if __name__ == "__main__":
    main()
