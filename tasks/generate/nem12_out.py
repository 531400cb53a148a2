"""Fast NEM12 text for the generator: byte tables and one boolean compress per file.

Why not ``tasks/nem12_write.py``: that writer formats every value with polars string expressions
(about 4 million values a second here); a 100k-account portfolio has over a billion interval
values. Here each value is an integer number of thousandths; a precomputed table holds the bytes
of every possible value (``"12.345,"``), and a file is assembled as one byte matrix per line —
[200 record when the register starts + ``300,date,`` | values | quality, update times and any
400 records] — compressed with a mask of the used bytes. Only the short per-line prefix and suffix
come from polars string expressions; no Python loop touches a line or a value.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl
import pyarrow as pa

from tasks.generate.loadshape import MAX_MILLI

CRLF = "\r\n"


@lru_cache(maxsize=1)
def value_table() -> tuple[np.ndarray, np.ndarray]:
    """(bytes (N, 8) uint8, lengths (N,)) of ``f"{i // 1000}.{i % 1000:03d},"`` for i in 0..MAX_MILLI."""
    i = np.arange(MAX_MILLI + 1)
    ip, fr = i // 1000, i % 1000
    full = np.stack(
        [
            ip // 100,
            ip // 10 % 10,
            ip % 10,
            np.full_like(i, -2),
            fr // 100,
            fr // 10 % 10,
            fr % 10,
            np.full_like(i, -4),
        ],
        axis=1,
    )
    full = (full + ord("0")).astype(np.uint8)  # -2 → '.', -4 → ','
    skip = np.where(ip >= 100, 0, np.where(ip >= 10, 1, 2))
    table = np.zeros((i.size, 8), dtype=np.uint8)
    for s in (0, 1, 2):
        rows = skip == s
        table[rows, : 8 - s] = full[rows, s:]
    return table, (8 - skip).astype(np.int64)


def _arrow_bytes(s: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8, offsets int64 of len n+1) of a string Series."""
    arr = s.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    _, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    return np.frombuffer(data, dtype=np.uint8), off


def _region(s: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Left-aligned byte matrix (n, width) and its mask for a string Series."""
    data, off = _arrow_bytes(s)
    lens = np.diff(off)
    width = int(lens.max()) if lens.size else 0
    cols = np.arange(width)
    mask = cols[None, :] < lens[:, None]
    idx = np.where(mask, off[:-1, None] + cols[None, :], 0)
    return (data[idx] if data.size else np.zeros(idx.shape, np.uint8)), mask


def pack_lines(prefix: pl.Series, values: np.ndarray, suffix: pl.Series) -> bytes:
    """Bytes of lines ``prefix[i] + values[i] as "v,v,…," + suffix[i]`` (values int thousandths)."""
    table, mask = _tables64()
    n, k = values.shape
    p, pm = _region(prefix)
    s, sm = _region(suffix)
    wp, ws = p.shape[1], s.shape[1]
    width = wp + 8 * k + ws
    out = np.empty((n, width), dtype=np.uint8)
    keep = np.empty((n, width), dtype=bool)
    out[:, :wp], keep[:, :wp] = p, pm
    np.take(table, values, out=out[:, wp : wp + 8 * k].view(np.uint64))
    np.take(mask, values, out=keep[:, wp : wp + 8 * k].view(np.uint64))
    out[:, wp + 8 * k :], keep[:, wp + 8 * k :] = s, sm
    return out[keep].tobytes()


@lru_cache(maxsize=1)
def _tables64() -> tuple[np.ndarray, np.ndarray]:
    """The value table and its used-byte mask, one uint64 per value (8 bytes each)."""
    table, lengths = value_table()
    mask = (np.arange(8)[None, :] < lengths[:, None]).astype(np.uint8)
    return np.ascontiguousarray(table).view(np.uint64).ravel(), np.ascontiguousarray(mask).view(
        np.uint64
    ).ravel()


def header(created: str, to_participant: str = "BUARETAIL") -> str:
    return f"100,NEM12,{created},BUAMDP,{to_participant}{CRLF}"


def footer() -> str:
    return f"900{CRLF}"
