"""Fast NEM12 text for the generator: fixed-width lines from byte tables, no per-value formatting.

Why not ``tasks/adapters/nem12_write.py``: that writer formats every value with polars string expressions
(about 4 million values a second here); a 100k-account portfolio has over a billion interval
values. Here every value has five significant characters — ``d.ddd`` below 10, ``dd.dd`` below
100, ``ddd.d`` below 1000 (the generator quantises its values to exactly these, so the files and
the truth agree) — so a line of an ordinary day (quality A, no 400 records) has a fixed width:
``300,YYYYMMDD,`` + K × ``v.vvv,`` + ``A,,,`` + UpdateDateTime + ``,`` + MSATSLoadDateTime + CRLF.
Those lines are one uint8 matrix filled by ``np.take`` from small tables (values, dates, times) and
written with ``tobytes``. The few other lines (estimates, V days with 400 records) and the 200
records are built with polars string expressions and spliced in; the only Python-level iteration is
over those splice points, never over values.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl

CRLF = "\r\n"
MAX_MILLI = 999_900  # largest interval value (999.9), in thousandths
VALUE_WIDTH = 6  # five characters and a comma


def quantise(q: np.ndarray) -> np.ndarray:
    """Thousandths (≥ 0) rounded to what five significant characters can show (in place, int32)."""
    flat = q.reshape(-1)
    big = np.flatnonzero(flat >= 9_995)  # most values are below 10 and stay as they are
    if big.size:
        v = np.minimum(flat[big], MAX_MILLI).astype(np.float64)
        flat[big] = np.minimum(
            np.where(v >= 99_950, np.rint(v / 100.0) * 100, np.rint(v / 10.0) * 10), MAX_MILLI
        ).astype(np.int32)
    return q


def value_codes(q: np.ndarray) -> np.ndarray:
    """Row of the value table for quantised thousandths (most values are below 10 and map to themselves)."""
    codes = q.copy()
    big = np.flatnonzero(q.reshape(-1) >= 10_000)
    if big.size:
        v = q.reshape(-1)[big]
        codes.reshape(-1)[big] = np.where(v < 100_000, 9_000 + v // 10, 18_000 + v // 100)
    return codes


@lru_cache(maxsize=1)
def value_table() -> np.ndarray:
    """28,000 six-byte entries (dtype V6): ``0.000,`` … ``9.999,``, ``10.00,`` … ``99.99,``, ``100.0,`` … ``999.9,``."""
    a = np.arange(10_000)
    b = np.arange(1_000, 10_000)  # hundredths 10.00 … 99.99
    c = np.arange(1_000, 10_000)  # tenths 100.0 … 999.9
    digit = lambda x: (x + 48).astype(np.uint8)  # noqa: E731
    dot, comma = np.full(a.size, 46, np.uint8), np.full(a.size, 44, np.uint8)
    ta = np.stack(
        [digit(a // 1000), dot, digit(a // 100 % 10), digit(a // 10 % 10), digit(a % 10), comma], axis=1
    )
    tb = np.stack(
        [
            digit(b // 1000),
            digit(b // 100 % 10),
            dot[: b.size],
            digit(b // 10 % 10),
            digit(b % 10),
            comma[: b.size],
        ],
        axis=1,
    )
    tc = np.stack(
        [
            digit(c // 1000),
            digit(c // 100 % 10),
            digit(c // 10 % 10),
            dot[: c.size],
            digit(c % 10),
            comma[: c.size],
        ],
        axis=1,
    )
    table = np.vstack([ta, np.zeros((0, 6), np.uint8), tb[:0], tb, tc])
    # rows 10,000 … 18,999 ↔ hundredths 1,000 … 9,999 (code 9,000 + q//10); 19,000 … ↔ tenths
    return np.ascontiguousarray(table).view("V6").ravel()


def _digits(x: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digits of non-negative integers, zero-padded."""
    p = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((x[:, None] // p[None, :]) % 10 + 48).astype(np.uint8)


@lru_cache(maxsize=8)
def _date_table(epoch: np.datetime64, n: int) -> np.ndarray:
    d = epoch + np.arange(n).astype("timedelta64[D]")
    y = d.astype("datetime64[Y]")
    m = d.astype("datetime64[M]")
    ymd = (
        (y.astype(np.int64) + 1970) * 10_000
        + ((m - y).astype(np.int64) + 1) * 100
        + (d - m).astype(np.int64)
        + 1
    )
    return np.ascontiguousarray(_digits(ymd, 8)).view("V8").ravel()


@lru_cache(maxsize=1)
def _time_table() -> np.ndarray:
    m = np.arange(1440)
    return np.ascontiguousarray(_digits((m // 60) * 10_000 + (m % 60) * 100, 6)).view("V6").ravel()


def stamp_bytes(days: np.ndarray, minutes: np.ndarray, epoch: np.datetime64) -> np.ndarray:
    """(n, 14) ``YYYYMMDDhhmmss`` of epoch + days (≥ 0, < 3000) + minutes (< 1440)."""
    out = np.empty((days.size, 14), dtype=np.uint8)
    np.take(_date_table(epoch, 3000), days[:, None], out=out[:, :8].view("V8"))
    np.take(_time_table(), minutes[:, None], out=out[:, 8:].view("V6"))
    return out


def plain_lines(
    dates: np.ndarray, codes: np.ndarray, upd_days: np.ndarray, upd_minutes: np.ndarray, epoch: np.datetime64
) -> np.ndarray:
    """Fixed-width matrix (n, width) of quality-A 300 records; ``dates`` are day offsets from epoch."""
    n, k = codes.shape
    width = 13 + VALUE_WIDTH * k + 4 + 14 + 1 + 14 + 2
    out = np.empty((n, width), dtype=np.uint8)
    out[:, :4] = np.frombuffer(b"300,", np.uint8)
    out[:, 4:12] = stamp_bytes(dates, np.zeros_like(dates), epoch)[:, :8]
    out[:, 12] = ord(",")
    np.take(value_table(), codes, out=out[:, 13 : 13 + VALUE_WIDTH * k].view("V6"))
    o = 13 + VALUE_WIDTH * k
    out[:, o : o + 4] = np.frombuffer(b"A,,,", np.uint8)
    out[:, o + 4 : o + 18] = stamp_bytes(upd_days, upd_minutes, epoch)
    out[:, o + 18] = ord(",")
    out[:, o + 19 : o + 33] = stamp_bytes(upd_days, upd_minutes + 60, epoch)
    out[:, o + 33 :] = np.frombuffer(b"\r\n", np.uint8)
    return out


def value_text(codes: np.ndarray) -> pl.Series:
    """The values part (``v,v,…,``) of each row as a string Series (for the few irregular lines)."""
    raw = np.ascontiguousarray(np.take(value_table(), codes)).view(np.uint8).reshape(codes.shape[0], -1)
    return pl.Series(raw.view(f"S{raw.shape[1]}").ravel()).cast(pl.String)


def header(created: str, to_participant: str = "BUARETAIL") -> bytes:
    return f"100,NEM12,{created},BUAMDP,{to_participant}{CRLF}".encode()


def footer() -> bytes:
    return f"900{CRLF}".encode()
