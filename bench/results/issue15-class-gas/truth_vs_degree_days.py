"""Diagnosis script of the tenth round of issue 15 (docs/ACCURACY.md): how far a portfolio's true
basic-register use departs, month by month, from each register's own least-squares fit of daily use
on 1, HDD18 and CDD22 (the daily mean of the jurisdiction's stations' min and max) over the last 12
months — the part of the truth that a flat base plus degree days cannot carry (e.g. a seasonal base).

    .venv/bin/python bench/results/issue15-class-gas/truth_vs_degree_days.py WORK_FOLDER

WORK_FOLDER: a portfolio folder bench/accuracy.py prepared (bua.db and gen/truth).
"""

import sqlite3
import sys

import numpy as np
import polars as pl

base = sys.argv[1]
con = sqlite3.connect(f"{base}/bua.db")
truth = pl.read_parquet(f"{base}/gen/truth/register_day.parquet").filter(
    pl.col("interval_minutes").is_null() & (pl.col("stream") == "CONSUMPTION")
)
temp = (
    pl.read_database(
        "select jurisdiction_id, date, (min_temp_c + max_temp_c) / 2.0 as tmean from weather_daily", con
    )
    .with_columns(pl.col("date").str.to_date())
    .group_by("jurisdiction_id", "date")
    .agg(pl.col("tmean").mean())
)
accounts = pl.read_database(
    "select a.id as account_id, a.customer_class, a.service_type, s.jurisdiction_id from account a "
    "join account_site x on x.account_id = a.id join site s on s.id = x.site_id",
    con,
).unique("account_id")
days = (
    truth.join(accounts, on="account_id")
    .join(temp, left_on=["jurisdiction_id", "read_date"], right_on=["jurisdiction_id", "date"])
    .filter(pl.col("read_date") >= pl.date(2025, 11, 1))
    .drop_nulls(["consumption", "tmean"])
    .filter(pl.col("consumption").is_finite() & pl.col("tmean").is_finite())
    .with_columns(
        hdd=(18 - pl.col("tmean")).clip(0),
        cdd=(pl.col("tmean") - 22).clip(0),
        month=pl.col("read_date").dt.month(),
    )
)


def fitted(g: pl.DataFrame) -> pl.DataFrame:
    x = np.column_stack([np.ones(g.height), g["hdd"].to_numpy(), g["cdd"].to_numpy()])
    beta, *_ = np.linalg.lstsq(x, g["consumption"].to_numpy(), rcond=None)
    return g.with_columns(fitted=pl.Series(x @ beta))


out = pl.concat([fitted(g) for _, g in days.group_by("meter_register_id")])
table = (
    out.group_by("service_type", "customer_class", "month")
    .agg(pct=(pl.col("consumption").sum() / pl.col("fitted").sum() - 1) * 100)
    .sort("service_type", "customer_class", "month")
    .pivot(on="month", index=["service_type", "customer_class"], values="pct")
    .with_columns(pl.selectors.numeric().round(1))
)
pl.Config.set_tbl_cols(20)
print(table)
