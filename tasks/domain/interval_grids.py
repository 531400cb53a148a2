"""Reading the meter store onto the half-hour grid, chunk by chunk (tasks.domain.profiles,
tasks.domain.scalars): numpy arrays of register-day rows, no row per interval."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view

from tasks.domain.half_hour_grid import SUPPORTED_MINUTES, gather_rows_t, half_hours, lex_order
from tasks.domain.plausibility import RegisterCaps, flag_rows, stored_nan

WORKERS = 2  # threads reading and reducing month chunks (the machine has 2 cores)
T = TypeVar("T")


@dataclass(frozen=True)
class Grid:
    """Register-day rows of one interval length on the half-hour grid (one month chunk of a shard)."""

    reg: np.ndarray  # the row's register: row index into the registers frame given to interval_grids
    day: np.ndarray  # read_date as days since 1970-01-01 (int64)
    hh: np.ndarray  # (48, rows) half-hour sums of actual values, 0 where not actual (slot-major)
    ok: np.ndarray  # (48, rows) bool: the half hour is actual


@dataclass(frozen=True)
class RawPart:
    """The rows of one interval length in one month chunk, not gathered (``interval_grids(raw=…)``):
    the chunk's flat values (NaN = null) and quality bytes with their row offsets, and the part's
    rows (positions in the chunk, store order, well formed), registers and days."""

    values: np.ndarray  # float64, the chunk's child values
    voff: np.ndarray  # int64 row offsets into values
    quality: np.ndarray  # uint8, the chunk's quality bytes
    qoff: np.ndarray  # int64 row offsets into quality
    nan: np.ndarray | None  # bool per child value: a stored NaN (not a null); None: see nan_stored
    nan_stored: bool  # the column has no null: every NaN in values is a stored NaN
    rows: np.ndarray  # int64 row positions
    reg: np.ndarray  # int64 register (row of the registers frame)
    day: np.ndarray  # int64 days since 1970-01-01
    minutes: int


def calendar_chunks(date_from: dt.date, date_to: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Calendar-month pieces of ``date_from … date_to`` (inclusive)."""
    out, lo = [], date_from
    while lo <= date_to:
        nxt = _next_month(lo)
        out.append((lo, min(nxt - dt.timedelta(days=1), date_to)))
        lo = nxt
    return out


def _flat_lists(series: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(child values, row offsets) of a list[f64] column without copying it row by row; nulls → NaN."""
    arr = series.to_arrow()
    values = arr.values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return values, arr.offsets.to_numpy().astype(np.int64, copy=False)


def _flat_strings(series: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, row offsets) of a string column."""
    arr = series.cast(pl.Utf8).to_arrow()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    _, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    return (np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)), off


KEY = ["nmi", "suffix", "read_date"]
KEPT_COLUMNS = [*KEY, "data_minutes", "values", "quality"]
KEPT_SCHEMA = {"nmi": pl.Utf8, "suffix": pl.Utf8, "read_date": pl.Date, "data_minutes": pl.Int64,
               "values": pl.List(pl.Float64), "quality": pl.Utf8}  # fmt: skip


def interval_grids(
    regs: pl.DataFrame,
    interval: pl.LazyFrame,
    chunks: Iterable[tuple[dt.date, dt.date]],
    fn: Callable[[Grid], T],
    nmi_filter: bool = False,
    months: Mapping[str, pl.LazyFrame] | None = None,
    keep: pl.DataFrame | None = None,
    kept: dict[int, pl.DataFrame] | None = None,
    caps: RegisterCaps | None = None,
    flagged: list[tuple[np.ndarray, ...]] | None = None,
    raw: Callable[[RawPart], T] | None = None,
) -> Iterator[T]:
    """``fn`` of the meter-store rows of ``regs`` (one row per register: nmi, suffix, register_start,
    register_end) on their registers' lives, well formed (supported length, values and quality
    covering the day), chunk by chunk and, within a chunk, by interval length (ascending), rows in
    store order (nmi, suffix, read_date) so that sums over them are the same bytes on every run.

    The key columns of every chunk are read and matched to the registers once; then each chunk's
    values and quality (one collect of two columns, the next chunk read on a second thread while
    this one is computed) go to numpy through their arrow buffers: no row per interval, no list
    copied through a join. ``nmi_filter`` pushes the registers' NMIs into the scan (worth it
    when they are few). ``months`` (``meter_store.interval_month_scans``: one scan per month
    partition, keyed ``YYYY-MM``) lets a chunk that is a whole calendar month be read from its
    partition without a date filter (the filter costs a third of the read; a partition holds only
    its month's rows).

    ``keep`` (nmi, suffix, read_date keys) with ``kept`` (a dict the caller reads once the
    generator is exhausted): the store rows of those keys, whatever their length or register
    life, are also copied out of each chunk as it is decoded — ``kept[chunk]`` = nmi, suffix,
    read_date, data_minutes, values, quality in store order — so that a later reader needs not
    decode the chunk again (``KEPT_COLUMNS``).

    ``caps`` (per row of ``regs``, tasks/domain/plausibility.py): an implausible register-day is
    read as missing (every interval quality N) and ``(reg, day, reason, value, cap, minutes)``
    arrays of such rows are appended to ``flagged`` (in chunk order).

    ``raw``: called instead of ``fn`` with each part's :class:`RawPart` — the chunk's flat buffers
    and the part's row positions, nothing gathered, no caps applied (the caller applies them;
    tasks/domain/profile_kernel.py).
    """
    chunks = list(chunks)
    nmis = regs["nmi"].unique().implode()

    def scan(lo: dt.date, hi: dt.date) -> pl.LazyFrame:
        whole = lo.day == 1 and hi == _next_month(lo) - dt.timedelta(days=1)
        if months is not None and not nmi_filter and whole and f"{lo:%Y-%m}" in months:
            return months[f"{lo:%Y-%m}"]
        pred = pl.col("read_date").is_between(lo, hi)
        return interval.filter(pred & pl.col("nmi").is_in(nmis) if nmi_filter else pred)

    # one frame of keys: chunk, position in the chunk's collect (scans keep file and row order)
    keys = pl.concat(
        [
            scan(lo, hi)
            .select("nmi", "suffix", "read_date", pl.col("interval_minutes").cast(pl.Int64))
            .with_row_index("_row")
            .with_columns(pl.lit(i, pl.Int64).alias("_chunk"))
            for i, (lo, hi) in enumerate(chunks)
        ]
    ).collect()
    # (nmi, suffix) → an integer once, so that the joins below are on integers (a string join of
    # every key row costs a quarter of a CPU second per 100k-account shard)
    pair_keys = [regs.select("nmi", "suffix")] + ([keep.select("nmi", "suffix")] if keep is not None else [])
    pairs = pl.concat(pair_keys).unique(maintain_order=True).with_row_index("_pair")
    keyed = keys.join(pairs, on=["nmi", "suffix"], how="inner")
    lives = (
        regs.select("nmi", "suffix", "register_start", "register_end")
        .with_row_index("_reg")
        .join(pairs, on=["nmi", "suffix"], how="inner", maintain_order="left")
        .drop("nmi", "suffix")
    )
    match = (
        keyed.join(lives, on="_pair", how="inner")
        .filter(
            (pl.col("read_date") >= pl.col("register_start"))
            & (pl.col("register_end").is_null() | (pl.col("read_date") <= pl.col("register_end")))
            & pl.col("interval_minutes").is_in(SUPPORTED_MINUTES)
        )
        .select(
            pl.col("_chunk"),
            pl.col("interval_minutes"),
            pl.col("_row").cast(pl.Int64),
            pl.col("_reg").cast(pl.Int64),
            pl.col("read_date").cast(pl.Int32).cast(pl.Int64).alias("_day"),
        )
    )
    keep_rows: dict[int, pl.DataFrame] = {}
    if keep is not None and kept is not None:
        # one int64 per (pair, day): a hash lookup instead of a three-column join
        code = (pl.col("_pair").cast(pl.Int64) * 2**32) + (
            pl.col("read_date").cast(pl.Int32).cast(pl.Int64) + 2**31
        )
        wanted_codes = keep.join(pairs, on=["nmi", "suffix"], how="inner").select(code.alias("_code"))[
            "_code"
        ]
        wanted = keyed.filter(code.is_in(wanted_codes.implode())).sort("_chunk", "_row")  # store order
        keep_rows = {
            int(c): part.select(*KEY, pl.col("interval_minutes").alias("data_minutes"), "_row")
            for (c,), part in wanted.partition_by("_chunk", as_dict=True, maintain_order=True).items()
        }
    if match.height == 0 and not keep_rows:
        return
    chunk, minutes, row, reg, day = (match[c].to_numpy() for c in match.columns)
    order = lex_order((reg, row, minutes, chunk))
    chunk, minutes, row, reg, day = chunk[order], minutes[order], row[order], reg[order], day[order]
    bounds = np.flatnonzero(np.diff(chunk)) + 1
    with_rows = [int(c) for c in chunk[np.concatenate([[0], bounds])]] if len(chunk) else []
    starts = dict(zip(with_rows, np.concatenate([[0], bounds]).tolist(), strict=False))
    ends = dict(zip(with_rows, [*bounds.tolist(), len(chunk)], strict=False))
    todo = sorted(set(with_rows) | set(keep_rows))

    def work(i: int) -> list[T]:
        df = scan(*chunks[i]).select("values", "quality").collect().rechunk()
        if i in keep_rows and kept is not None:  # one dict key per chunk: safe across threads
            ks = keep_rows[i]
            kept[i] = pl.concat([ks.drop("_row"), df[ks["_row"].cast(pl.Int64).to_numpy()]], how="horizontal")
        if i not in starts:
            return []
        values, voff = _flat_lists(df["values"])
        quality, qoff = _flat_strings(df["quality"])
        if raw is not None:
            # a NaN is a null or a stored NaN: the mask of stored ones only when the column has
            # nulls (without, every NaN is stored; no pass over the values)
            nulls = df["values"].to_arrow().values.null_count > 0
            nan = stored_nan(df["values"]) if nulls else None
        else:
            nulls = bool(np.isnan(values).any())  # one pass on the month instead of one per part
            nan = stored_nan(df["values"]) if caps is not None and nulls else None
        a, b = starts[i], ends[i]
        m_, r_, g_, d_ = minutes[a:b], row[a:b], reg[a:b], day[a:b]
        out = []
        # a chunk's rows are ordered by length (then store order): one slice per length, ascending
        cuts = [0, *(np.flatnonzero(np.diff(m_)) + 1).tolist(), len(m_)]
        for lo_, hi_ in itertools.pairwise(cuts):
            m = m_[lo_]
            n = 1440 // int(m)
            rows, rg, dy = r_[lo_:hi_], g_[lo_:hi_], d_[lo_:hi_]
            good = (voff[rows + 1] - voff[rows] == n) & (qoff[rows + 1] - qoff[rows] == n)
            if not good.all():
                rows, rg, dy = rows[good], rg[good], dy[good]
            if len(rows) == 0:
                continue
            if raw is not None:
                out.append(raw(RawPart(values, voff, quality, qoff, nan, not nulls, rows, rg, dy, int(m))))
                continue
            # each row's n values are contiguous: a row gather from a sliding-window view
            # copies them without an index per value; slot-major so that sums over rows run
            # along contiguous memory
            vals = gather_rows_t(sliding_window_view(values, n), voff[rows])
            qual = gather_rows_t(sliding_window_view(quality, n), qoff[rows])
            if caps is not None:
                nan_t = gather_rows_t(sliding_window_view(nan, n), voff[rows]) if nan is not None else None
                reason, value, cap = flag_rows(
                    vals, nan_t, caps.rate[rg], caps.day[rg], int(m), caps.allow_negative
                )
                bad = reason > 0
                if bad.any():
                    qual[:, bad] = ord("N")  # the day is missing data: estimated
                    found.append(
                        (i, (rg[bad], dy[bad], reason[bad], value[bad], cap[bad], np.full(bad.sum(), m)))
                    )
            # the gathered values are this call's own (overwritten in place)
            hh, ok = half_hours(vals, qual, int(m), nulls, overwrite=True)
            out.append(fn(Grid(rg, dy, hh, ok)))
        return out

    found: list[tuple[int, tuple[np.ndarray, ...]]] = []  # (chunk, arrays), appended by the workers
    # chunks are read and reduced on WORKERS threads (polars and numpy release the GIL); results
    # come back in chunk order, at most WORKERS + 1 chunks in memory
    with ThreadPoolExecutor(WORKERS) as pool:
        pending: deque[Future[list[T]]] = deque()
        it = iter(todo)
        for i in islice(it, WORKERS + 1):
            pending.append(pool.submit(work, i))
        while pending:
            done = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(work, nxt))
            yield from done
    if flagged is not None:
        flagged.extend(arrays for _, arrays in sorted(found, key=lambda f: f[0]))


def well_formed(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Rows of a supported interval length whose values and quality cover the day exactly."""
    n = 1440 // pl.col("interval_minutes")
    return lf.filter(
        pl.col("interval_minutes").is_in(SUPPORTED_MINUTES)
        & (pl.col("values").list.len() == n)
        & (pl.col("quality").str.len_bytes() == n)
    )


def month_chunks(lf: pl.LazyFrame) -> list[tuple[dt.date, dt.date]]:
    """Calendar-month date ranges covering the frame's read dates (one collect per chunk keeps
    memory at one shard-month)."""
    lo, hi = (
        lf.select(pl.col("read_date").min().alias("lo"), pl.col("read_date").max().alias("hi"))
        .collect()
        .row(0)
    )
    if lo is None:
        return []
    return calendar_chunks(lo, hi)


def _next_month(d: dt.date) -> dt.date:
    return dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
