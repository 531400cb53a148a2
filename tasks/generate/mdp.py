"""What the meter data provider delivers: gaps, estimates, late days and corrections, as NEM12.

For one batch of interval registers (same interval length) and their true values, draw per
register-day: missing days (0.4% scattered plus a 2–8 day outage on 4% of registers — in no file),
MDP-estimated days (0.8%, quality E52, values copied from the same weekday a week earlier), mixed
days (0.6%, quality V with 400 records: a range of intervals E52 at 85% of true, the rest A),
partial days (0.3%, quality V: intervals after a cut are N with value 0), corrected days (0.2%: the
first delivery has values 30% too high, a second delivery the true values with a newer
UpdateDateTime) and duplicates (0.1%: the second delivery repeats the first record exactly).
12% of registers deliver their last 1–4 days late (only in the second delivery). File
``NEM12_{batch}_1.csv`` is the first delivery, ``NEM12_{batch}_2.csv`` the second.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from tasks.generate.calendar import Calendar, rng_for
from tasks.generate.nem12_out import CRLF, footer, header, pack_lines

A, E, V, P, C, DUP = 0, 1, 2, 3, 4, 5
UNIT = {"KWH": "kWh", "MJ": "MJ"}
STREAM_ID = {"E1": "N1", "E2": "N2", "B1": "X1"}


def _plan(
    n: int, k: int, af: np.ndarray, at: np.ndarray, cal: Calendar, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    d = cal.n_days
    day = np.arange(d)[None, :]
    active = (day >= af[:, None]) & (day <= at[:, None])
    out_start = rng.integers(0, d, n)[:, None]
    outage = (
        (rng.random(n) < 0.04)[:, None]
        & (day >= out_start)
        & (day < out_start + rng.integers(2, 9, n)[:, None])
    )
    missing = active & ((rng.random((n, d)) < 0.004) | outage)
    v = rng.random((n, d))
    kind = np.select([v < 0.008, v < 0.014, v < 0.017, v < 0.019, v < 0.020], [E, V, P, C, DUP], A).astype(
        np.int8
    )
    kind[:, :7] = np.where(kind[:, :7] == E, A, kind[:, :7])  # like-day estimates need a week before
    lag = np.where(rng.random(n) < 0.12, rng.integers(1, 5, n), 0)
    late = active & ~missing & (day > (at - lag)[:, None])
    kind = np.where(late & (kind >= C), A, kind).astype(np.int8)
    first = active & ~missing & ~late
    return {"kind": kind, "first": first, "second": late | (first & (kind >= C)), "late": late, "lag": lag,
            "a": rng.integers(0, k // 2, (n, d)), "b": rng.integers(k // 2, k, (n, d)), "cut": rng.integers(k // 4, 3 * k // 4, (n, d))}  # fmt: skip


def _values(
    q: np.ndarray,
    r: np.ndarray,
    d: np.ndarray,
    kind: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    cut: np.ndarray,
    corrected: bool,
) -> np.ndarray:
    """Delivered values (int thousandths) for the records (r, d)."""
    vals = q[r, d]
    k = q.shape[2]
    col = np.arange(k)[None, :]
    est = kind == E
    vals[est] = q[r[est], d[est] - 7]
    rng_v = (kind == V)[:, None] & (col >= a[:, None]) & (col < b[:, None])
    vals = np.where(rng_v, np.rint(vals * 0.85).astype(np.int32), vals)
    vals = np.where((kind == P)[:, None] & (col >= cut[:, None]), 0, vals)
    if not corrected:
        vals = np.where((kind == C)[:, None], np.rint(vals * 1.3).astype(np.int32), vals)
    return vals


def _records(
    regs: pl.DataFrame, plan: dict[str, np.ndarray], which: str, cal: Calendar, k: int
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    sel = plan[which]
    r, d = np.nonzero(sel)  # sorted by register then day
    kind = plan["kind"][r, d]
    second = which == "second"
    # update time: the morning after the day; late days lag more; corrections 12 days on
    delay = np.where(second & plan["late"][r, d], plan["lag"][r] + 1, 1)
    delay = np.where(second & (kind == C), 12, delay)
    minute = 120 + (regs["id"].to_numpy()[r] * 37) % 180 + np.where(second & (kind == C), 420, 0)
    upd = np.datetime64(cal.start, "m") + ((d + delay) * 1440 + minute).astype("timedelta64[m]")
    n_intervals = k
    rec = pl.DataFrame(
        {
            "r": r.astype(np.int32),
            "date": (np.datetime64(cal.start) + d.astype("timedelta64[D]")),
            "kind": kind,
            "a": plan["a"][r, d] + 1,
            "b": plan["b"][r, d],
            "cut": plan["cut"][r, d],
            "upd": upd.astype("datetime64[us]"),
        }
    ).with_columns(pl.col("r").is_first_distinct().alias("starts"))
    reg = (
        regs.select(
            "nmi_config", pl.col("identifier").alias("nmi"), "suffix", "serial_number", "unit", "register_no"
        )
        .with_row_index("r")
        .with_columns(pl.col("r").cast(pl.Int32))
    )
    rec = rec.join(reg, on="r", how="left", maintain_order="left")
    two = pl.format(
        "200,{},{},{},{},{},{},{},{},{}", "nmi", "nmi_config", "register_no", "suffix",
        pl.col("suffix").replace_strict(STREAM_ID, default="N1"), "serial_number",
        pl.col("unit").replace_strict(UNIT, default="kWh"), pl.lit(1440 // k), pl.lit(""),
    )  # fmt: skip
    prefix = pl.when(pl.col("starts")).then(two + pl.lit(CRLF)).otherwise(pl.lit("")) + pl.format(
        "300,{},", pl.col("date").dt.strftime("%Y%m%d")
    )
    qm = pl.col("kind").replace_strict(
        {A: "A", E: "E52", V: "V", P: "V", C: "A", DUP: "A"}, return_dtype=pl.String
    )
    stamps = pl.format(
        "{},{}",
        pl.col("upd").dt.strftime("%Y%m%d%H%M%S"),
        (pl.col("upd") + pl.duration(hours=1)).dt.strftime("%Y%m%d%H%M%S"),
    )
    ev_v = pl.format(
        "400,1,{},A,,{}400,{},{},E52,,{}400,{},{},A,,",
        pl.col("a") - 1,
        pl.lit(CRLF),
        "a",
        "b",
        pl.lit(CRLF),
        pl.col("b") + 1,
        pl.lit(n_intervals),
    )
    ev_p = pl.format(
        "400,1,{},A,,{}400,{},{},N,,", "cut", pl.lit(CRLF), pl.col("cut") + 1, pl.lit(n_intervals)
    )
    events = (
        pl.when(pl.col("kind") == V)
        .then(ev_v + pl.lit(CRLF))
        .when(pl.col("kind") == P)
        .then(ev_p + pl.lit(CRLF))
        .otherwise(pl.lit(""))
    )
    # a V day's 400 ranges must be non-empty: a ≥ 2 and b < k are guaranteed by the draws only loosely
    text = rec.select(
        prefix.alias("prefix"), (qm + pl.lit(",,,") + stamps + pl.lit(CRLF) + events).alias("suffix")
    )
    return text, r, d


def write_batch(
    regs: pl.DataFrame, q: np.ndarray, cal: Calendar, seed: int, batch: int, out_dir: Path
) -> dict[str, int]:
    """Write the two deliveries of one batch; returns counts (lines, values, bytes)."""
    n, _, k = q.shape
    rng = rng_for(seed, "mdp", batch)
    plan = _plan(n, k, regs["active_from"].to_numpy(), regs["active_to"].to_numpy(), cal, rng)
    # V days need both 400 ranges non-empty: a in [1, k/2), b in [k/2, k-1)
    plan["a"] = np.maximum(plan["a"], 1)
    plan["b"] = np.minimum(plan["b"], k - 2)
    stats = {"nem12_files": 0, "nem12_lines": 0, "nem12_values": 0, "nem12_bytes": 0}
    created = (dt.datetime.combine(cal.end, dt.time()) + dt.timedelta(days=1, hours=1)).strftime("%Y%m%d%H%M")
    for delivery, which in ((1, "first"), (2, "second")):
        text, r, d = _records(regs, plan, which, cal, k)
        if text.height == 0:
            continue
        pl_kind = plan["kind"][r, d]
        vals = _values(
            q, r, d, pl_kind, plan["a"][r, d], plan["b"][r, d], plan["cut"][r, d], corrected=delivery == 2
        )
        body = pack_lines(text["prefix"], vals, text["suffix"])
        data = header(created).encode() + body + footer().encode()
        (out_dir / f"NEM12_{batch:05d}_{delivery}.csv").write_bytes(data)
        stats["nem12_files"] += 1
        stats["nem12_lines"] += text.height
        stats["nem12_values"] += vals.size
        stats["nem12_bytes"] += len(data)
    return stats
