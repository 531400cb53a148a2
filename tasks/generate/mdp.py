"""What the meter data provider delivers: gaps, estimates, late days and corrections, as NEM12.

For one batch of interval registers (same interval length) and their true values, draw per
register-day: missing days (0.4% scattered plus a 2–8 day outage on 4% of registers — in no file),
MDP-estimated days (0.8%, quality E52, values copied from the same weekday a week earlier), mixed
days (0.6%, quality V with 400 records: a range of intervals E52 at 85% of true, the rest A),
partial days (0.3%, quality V: intervals after a cut are N with value 0), corrected days (0.2%: the
first delivery has values 30% too high, a second delivery the true values with a newer
UpdateDateTime) and duplicates (0.1%: the second delivery repeats the first record exactly).
12% of registers deliver their last 1–4 days late (only in the second delivery). File
``NEM12_{batch}_1.csv`` is the first delivery, ``NEM12_{batch}_2.csv`` the second. Every day not
missing has its true values in some file unless it is E, V or the first copy of a corrected day.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from tasks.generate.calendar import Calendar, rng_for
from tasks.generate.nem12_out import (
    CRLF,
    footer,
    header,
    plain_lines,
    quantise,
    stamp_bytes,
    value_codes,
    value_text,
)

A, E, V, P, C, DUP = 0, 1, 2, 3, 4, 5
UNIT = {"KWH": "kWh", "MJ": "MJ"}
STREAM_ID = {"E1": "N1", "E2": "N2", "B1": "X1"}


def plan_defects(
    n: int, k: int, af: np.ndarray, at: np.ndarray, n_days: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Per register-day: kind (A, E, V, P, C, DUP), in first/second delivery, late, 400 ranges."""
    day = np.arange(n_days)[None, :]
    active = (day >= af[:, None]) & (day <= at[:, None])
    out_start = rng.integers(0, n_days, n)[:, None]
    outage = (
        (rng.random(n) < 0.04)[:, None]
        & (day >= out_start)
        & (day < out_start + rng.integers(2, 9, n)[:, None])
    )
    missing = active & ((rng.random((n, n_days)) < 0.004) | outage)
    v = rng.random((n, n_days))
    kind = np.select([v < 0.008, v < 0.014, v < 0.017, v < 0.019, v < 0.020], [E, V, P, C, DUP], A).astype(
        np.int8
    )
    kind[:, :7] = np.where(kind[:, :7] == E, A, kind[:, :7])  # like-day estimates need a week before
    lag = np.where(rng.random(n) < 0.12, rng.integers(1, 5, n), 0)
    late = active & ~missing & (day > (at - lag)[:, None])
    kind = np.where(late & (kind >= C), A, kind).astype(np.int8)
    first = active & ~missing & ~late
    return {
        "kind": kind, "first": first, "second": late | (first & (kind >= C)), "late": late, "lag": lag,
        # V days: E52 over intervals [a, b) (0-based), a ≥ 1 and b ≤ k-1 so both A ranges exist
        "a": rng.integers(1, k // 2, (n, n_days)), "b": rng.integers(k // 2, k - 1, (n, n_days)),
        "cut": rng.integers(k // 4, 3 * k // 4, (n, n_days)),
    }  # fmt: skip


def delivered_values(
    q: np.ndarray,
    r: np.ndarray,
    d: np.ndarray,
    kind: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    cut: np.ndarray,
    first: bool,
) -> np.ndarray:
    """Delivered values (int thousandths, quantised) of the records (r, d)."""
    vals = q[r, d]
    col = np.arange(q.shape[2])[None, :]
    i = np.flatnonzero(kind == E)
    vals[i] = q[r[i], d[i] - 7]
    i = np.flatnonzero(kind == V)
    if i.size:
        part = (col >= a[i, None]) & (col < b[i, None])
        vals[i] = np.where(part, quantise(np.rint(vals[i] * 0.85).astype(np.int32)), vals[i])
    i = np.flatnonzero(kind == P)
    if i.size:
        vals[i] = np.where(col >= cut[i, None], 0, vals[i])
    i = np.flatnonzero(kind == C)
    if first and i.size:
        vals[i] = quantise(np.rint(vals[i] * 1.3).astype(np.int32))
    return vals


def _irregular_lines(
    date: np.ndarray,
    codes: np.ndarray,
    kind: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    cut: np.ndarray,
    stamps: np.ndarray,
    k: int,
) -> list[bytes]:
    """300 (+400) records of E, V and partial days as bytes, one item per line group."""
    if kind.size == 0:
        return []
    df = pl.DataFrame(
        {
            "date": date,
            "values": value_text(codes),
            "kind": kind,
            "a": a + 1,
            "b": b,
            "cut": cut,
            "stamps": pl.Series(stamps.view("S29").ravel()).cast(pl.String),
        }
    )
    qm = pl.when(pl.col("kind") == E).then(pl.lit("E52")).otherwise(pl.lit("V"))
    ev_v = pl.format(
        "400,1,{},A,,{}400,{},{},E52,,{}400,{},{},A,,{}",
        pl.col("a") - 1,
        pl.lit(CRLF),
        "a",
        "b",
        pl.lit(CRLF),
        pl.col("b") + 1,
        pl.lit(k),
        pl.lit(CRLF),
    )
    ev_p = pl.format(
        "400,1,{},A,,{}400,{},{},N,,{}", "cut", pl.lit(CRLF), pl.col("cut") + 1, pl.lit(k), pl.lit(CRLF)
    )
    events = (
        pl.when(pl.col("kind") == V).then(ev_v).when(pl.col("kind") == P).then(ev_p).otherwise(pl.lit(""))
    )
    line = pl.format(
        "300,{},{}{},,,{}{}{}",
        pl.col("date").dt.strftime("%Y%m%d"),
        "values",
        qm,
        "stamps",
        pl.lit(CRLF),
        events,
    )
    return [s.encode() for s in df.select(line).to_series().to_list()]


def _nem12_200(regs: pl.DataFrame, k: int) -> list[bytes]:
    text = regs.select(
        pl.format(
            "200,{},{},{},{},{},{},{},{},{}", "identifier", "nmi_config", "register_no", "suffix",
            pl.col("suffix").replace_strict(STREAM_ID, default="N1"), "serial_number",
            pl.col("unit").replace_strict(UNIT, default="kWh"), pl.lit(1440 // k), pl.lit(""),
        ) + pl.lit(CRLF)
    )  # fmt: skip
    return [s.encode() for s in text.to_series().to_list()]


def delivery_records(
    regs: pl.DataFrame, q: np.ndarray, plan: dict[str, np.ndarray], which: str
) -> dict[str, np.ndarray]:
    """The records of one delivery of a batch, sorted by register then day: register row ``r``, day
    ``d``, ``kind``, UpdateDateTime as day offset ``upd_day`` + ``minute`` (MSATSLoadDateTime one hour
    later) and the delivered values ``milli`` (quantised thousandths, int32)."""
    r, d = np.nonzero(plan[which])  # sorted by register, then day
    first = which == "first"
    kind = plan["kind"][r, d]
    # UpdateDateTime: 02:00–05:00 the morning after; late days later; corrections 12 days on
    delay = np.where(~first & plan["late"][r, d], plan["lag"][r] + 1, 1)
    delay = np.where(~first & (kind == C), 12, delay)
    minute = 120 + (regs["id"].to_numpy()[r] * 37) % 180 + np.where(~first & (kind == C), 420, 0)
    milli = delivered_values(q, r, d, kind, plan["a"][r, d], plan["b"][r, d], plan["cut"][r, d], first)
    return {"r": r, "d": d, "kind": kind, "upd_day": d + delay, "minute": minute, "milli": milli}


def delivery_pieces(
    regs: pl.DataFrame, q: np.ndarray, plan: dict[str, np.ndarray], which: str, cal: Calendar
) -> tuple[bytes, int, int]:
    """(byte pieces of the body in order, lines, values) of one delivery of a batch."""
    n, _, k = q.shape
    rec = delivery_records(regs, q, plan, which)
    r, d, kind = rec["r"], rec["d"], rec["kind"]
    if r.size == 0:
        return [], 0, 0
    codes = value_codes(rec["milli"])
    upd, minute = rec["upd_day"], rec["minute"]
    epoch = np.datetime64(cal.start)
    irregular = (kind == E) | (kind == V) | (kind == P)
    reg_idx = np.flatnonzero(~irregular)
    plain = plain_lines(d[reg_idx], codes[reg_idx], upd[reg_idx], minute[reg_idx], epoch)
    width = plain.shape[1]
    ir = np.flatnonzero(irregular)
    stamps = np.hstack(
        [
            stamp_bytes(upd[ir], minute[ir], epoch),
            np.full((ir.size, 1), ord(","), np.uint8),
            stamp_bytes(upd[ir], minute[ir] + 60, epoch),
        ]
    )
    odd = _irregular_lines(
        epoch + d[ir].astype("timedelta64[D]"),
        codes[ir],
        kind[ir],
        plan["a"][r[ir], d[ir]],
        plan["b"][r[ir], d[ir]],
        plan["cut"][r[ir], d[ir]],
        np.ascontiguousarray(stamps),
        k,
    )
    heads = _nem12_200(regs, k)
    # splice: a piece starts at a new register, at an irregular line and after one
    new_reg = np.r_[True, r[1:] != r[:-1]]
    starts = np.flatnonzero(new_reg | irregular | np.r_[False, irregular[:-1]])
    ends = np.r_[starts[1:], r.size]
    plain_pos = np.cumsum(~irregular) - (~irregular)  # row of each line in the plain matrix
    odd_pos = np.cumsum(irregular) - irregular
    flat = memoryview(plain.reshape(-1))
    pieces: list[bytes | memoryview] = []
    for s, e, new, odd_line in zip(
        starts.tolist(), ends.tolist(), new_reg[starts].tolist(), irregular[starts].tolist(), strict=True
    ):
        if new:
            pieces.append(heads[r[s]])
        pieces.append(
            odd[odd_pos[s]] if odd_line else flat[plain_pos[s] * width : (plain_pos[s] + e - s) * width]
        )
    return pieces, int(r.size), int(r.size * k)


def batch_plan(regs: pl.DataFrame, k: int, cal: Calendar, seed: int, batch: int) -> dict[str, np.ndarray]:
    """The defects of one batch (``plan_defects`` on the batch's own random stream)."""
    af, at = regs["active_from"].to_numpy(), regs["active_to"].to_numpy()
    return plan_defects(regs.height, k, af, at, cal.n_days, rng_for(seed, "mdp", batch))


def file_name(batch: int, delivery: int) -> str:
    return f"NEM12_{batch:05d}_{delivery}.csv"


def write_batch(
    regs: pl.DataFrame,
    q: np.ndarray,
    cal: Calendar,
    seed: int,
    batch: int,
    out_dir: Path,
    plan: dict[str, np.ndarray] | None = None,
) -> dict[str, int]:
    """Write the two deliveries of one batch; ``regs`` active_from/to are day offsets in ``cal``."""
    k = q.shape[2]
    plan = batch_plan(regs, k, cal, seed, batch) if plan is None else plan
    stats = {"nem12_files": 0, "nem12_lines": 0, "nem12_values": 0, "nem12_bytes": 0}
    created = (dt.datetime.combine(cal.end, dt.time()) + dt.timedelta(days=1, hours=1)).strftime("%Y%m%d%H%M")
    for delivery, which in ((1, "first"), (2, "second")):
        pieces, lines, values = delivery_pieces(regs, q, plan, which, cal)
        if not lines:
            continue
        head, foot = header(created), footer()
        with open(out_dir / file_name(batch, delivery), "wb") as fh:
            fh.write(head)
            fh.writelines(pieces)
            fh.write(foot)
        size = len(head) + len(foot) + sum(len(p) for p in pieces)
        stats["nem12_files"] += 1
        stats["nem12_lines"] += lines
        stats["nem12_values"] += values
        stats["nem12_bytes"] += size
    return stats
