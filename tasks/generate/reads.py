"""Basic (accumulation) meter reads: schedule, index values, qualities, NEM13 text.

A basic register is read on the last day of every billing period of the account holding its site
(so a bill's period ends on its read date; a closing account's final read is on its close day), on
the day before it starts (its opening index) and on its last day when it is removed (exchange). A
read dated D is the index at the END of day D (SPEC §4.3: a pair (D1, D2) covers D1 + 1 … D2),
floored to whole units and wrapped at 10^dial_digits. 93% of reads are actual (A); 7% are
estimates (E) whose consumption since the previous read is the true consumption ×0.8–1.2. NEM13
files (one 250 record per read pair) are written for the electricity basic registers flagged
``nem13``; every other register's reads are ``basic_read`` rows.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tasks.generate.calendar import Calendar, rng_for


def schedule(regs: pl.DataFrame, read_days: pl.DataFrame, cal: Calendar) -> tuple[np.ndarray, np.ndarray]:
    """(register row, day) of every read of the registers, sorted; days in 0..n_days-1.

    ``read_days``: site_id, day — the billing period ends of the site's accounts
    (:func:`tasks.generate.billing.read_days`)."""
    n, d = regs.height, cal.n_days
    af, at = regs["active_from"].to_numpy(), regs["active_to"].to_numpy()
    # the opening index (end of the day before the register starts; day 0 for older registers) and,
    # when removed inside the calendar, the final index at the end of its last day
    rows, dd = [np.arange(n), np.flatnonzero(at < d - 1)], [np.maximum(af - 1, 0), at[at < d - 1]]
    if read_days.height:
        m = regs.select(
            pl.col("site_id"), pl.int_range(pl.len()).alias("row"), "active_from", "active_to"
        ).join(read_days, on="site_id")
        m = m.filter((pl.col("day") >= pl.col("active_from")) & (pl.col("day") <= pl.col("active_to")))
        rows.append(m["row"].to_numpy())
        dd.append(m["day"].to_numpy())
    allr, alld = np.concatenate(rows), np.concatenate(dd)
    key = np.unique(allr.astype(np.int64) * (d + 1) + alld)
    return (key // (d + 1)).astype(np.int64), (key % (d + 1)).astype(np.int64)


def read_values(
    regs: pl.DataFrame, daily: np.ndarray, r: np.ndarray, day: np.ndarray, seed: int, part: int
) -> pl.DataFrame:
    """Index value and quality of each read; ``daily`` = true daily quantity (n, days), 0 when inactive."""
    rng = rng_for(seed, "read-values", part)
    cum = np.concatenate([np.zeros((daily.shape[0], 1)), np.cumsum(daily, axis=1)], axis=1)
    true_idx = regs["index0"].to_numpy()[r] + cum[r, day + 1]  # index at the end of the day
    first = np.r_[True, r[1:] != r[:-1]]
    last = np.r_[r[1:] != r[:-1], True]
    est = (rng.random(r.size) < 0.07) & ~first & ~last
    prev = np.r_[true_idx[:1], true_idx[:-1]]
    index = np.where(est, prev + (true_idx - prev) * rng.uniform(0.8, 1.2, r.size), true_idx)
    modulus = 10.0 ** regs["dial_digits"].to_numpy()[r]
    return pl.DataFrame(
        {
            "meter_register_id": regs["id"].to_numpy()[r],
            "row": r,
            "day": day,
            "index_value": np.floor(index) % modulus,
            "quality": np.where(est, "E", "A"),
        }
    )


def nem13_text(reads: pl.DataFrame, regs: pl.DataFrame, cal: Calendar, created: str) -> str:
    """NEM13 file text: 100, one 250 record per consecutive read pair of each register, 900."""
    reg = regs.select(
        pl.int_range(pl.len()).alias("row"), pl.col("identifier").alias("nmi"), "nmi_config", "register_no", "suffix",
        "serial_number", "dial_digits", pl.col("unit").replace_strict({"KWH": "kWh", "MJ": "MJ"}, default="kWh"),
        pl.when(pl.col("stream") == "GENERATION").then(pl.lit("E")).otherwise(pl.lit("I")).alias("direction"),
    )  # fmt: skip
    date = pl.lit(cal.start) + pl.duration(days=pl.col("day"))
    pairs = (
        reads.sort("row", "day")
        .with_columns(
            pl.col("index_value").shift(1).over("row").alias("prev"),
            pl.col("day").shift(1).over("row").alias("prev_day"),
            pl.col("quality").shift(1).over("row").alias("prev_q"),
        )
        .filter(pl.col("prev").is_not_null())
        .join(reg, on="row", how="left", maintain_order="left")
        .with_columns(
            (
                pl.col("index_value")
                - pl.col("prev")
                + pl.when(pl.col("index_value") < pl.col("prev"))
                .then(10.0 ** pl.col("dial_digits"))
                .otherwise(0.0)
            ).alias("qty"),
            date.dt.strftime("%Y%m%d").alias("cur_d"),
            (pl.lit(cal.start) + pl.duration(days=pl.col("prev_day"))).dt.strftime("%Y%m%d").alias("prev_d"),
            (date + pl.duration(days=1)).dt.strftime("%Y%m%d").alias("upd"),
        )
    )
    f = lambda c: pl.col(c).cast(pl.Int64).cast(pl.String)  # noqa: E731
    lines = pairs.select(
        pl.format(
            "250,{},{},{},{},N1,{},{},{},{}000000,{},,,{},{}000000,{},,,{},{},,{}090000,{}100000",
            "nmi",
            "nmi_config",
            "register_no",
            "suffix",
            "serial_number",
            "direction",
            f("prev"),
            "prev_d",
            "prev_q",
            f("index_value"),
            "cur_d",
            "quality",
            f("qty"),
            "unit",
            "upd",
            "upd",
        )  # fmt: skip
    )
    body = "\r\n".join(lines.to_series().to_list())
    return f"100,NEM13,{created},BUAMDP,BUARETAIL\r\n{body}\r\n900\r\n"
