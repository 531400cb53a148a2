"""Basic (accumulation) meter reads: schedule, index values, qualities, NEM13 text.

Reads are taken about every 91 days (electricity) or 61/91 days (gas) with ±3 days of jitter,
plus a read on the day a meter is removed (exchange) and on each move-in day. A read dated D is
the index at the start of day D (DESIGN: read-pair convention), floored to whole units and wrapped
at 10^dial_digits. 93% of reads are actual (A); 7% are estimates (E) whose consumption since the
previous read is the true consumption ×0.8–1.2. NEM13 files (one 250 record per read pair) are
written for the electricity basic registers flagged ``nem13``; every other register's reads are
``basic_read`` rows.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tasks.generate.calendar import Calendar, rng_for


def schedule(
    regs: pl.DataFrame, move_days: pl.DataFrame, cal: Calendar, seed: int, part: int
) -> tuple[np.ndarray, np.ndarray]:
    """(register row, day) of every read of the registers, sorted; days in 0..n_days-1."""
    rng = rng_for(seed, "read-schedule", part)
    n, d = regs.height, cal.n_days
    gas = regs["service_type"].to_numpy() == "GAS"
    period = np.where(gas, rng.choice([61, 91], n), 91)
    phase = rng.integers(0, 91, n)
    k = np.arange(d // 61 + 2)
    days = phase[:, None] + k[None, :] * period[:, None] + rng.integers(-3, 4, (n, k.size))
    af, at = regs["active_from"].to_numpy(), regs["active_to"].to_numpy()
    ok = (days >= np.maximum(af, 0)[:, None]) & (days <= at[:, None])
    r, c = np.nonzero(ok)
    rows, dd = [r], [days[r, c]]
    # the meter's first day and, when removed inside the calendar, the day after its last
    rows += [np.arange(n), np.flatnonzero(at < d - 1)]
    dd += [np.maximum(af, 0), at[at < d - 1] + 1]
    if move_days.height:
        m = regs.select(
            pl.col("site_id"), pl.int_range(pl.len()).alias("row"), "active_from", "active_to"
        ).join(move_days, on="site_id")
        m = m.filter((pl.col("day") > pl.col("active_from")) & (pl.col("day") <= pl.col("active_to")))
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
    true_idx = regs["index0"].to_numpy()[r] + cum[r, day]
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
