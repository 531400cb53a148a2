"""Segment profiles (SPEC §4.2): partial sums per shard, one combine into P(segment, day, slot).

Method: interval data is first put on a fixed 30-minute grid (48 slots per day, kWh per half
hour): 5/10/15-minute values are summed into their half hour, and a half hour counts as actual
only when every sub-interval has quality A, S or F (E and N never enter a profile, nor do null
values). Each shard contributes, per (segment, day, slot), the sum of actual half-hour values and
the number of registers with an actual value; the combine adds the shards' partials and divides:
P = mean kWh per register per half hour. The parent segment (``*|jurisdiction|stream``) is
computed the same way as its own profile (a mean over all its registers, not a mean of means).
The per-slot sums are done column-wise (the 48-slot lists are unnested into 48 columns) so that
no frame ever holds one row per interval.
"""

from __future__ import annotations

import datetime as dt
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

from tasks.domain.plausibility import Caps, RegisterCaps, flag_rows, flagged_rows, register_caps, stored_nan
from tasks.domain.robust_profile import best_tops, group_tops, keep_larger, trimmed_totals

GRID_MINUTES = 30
SLOTS = 1440 // GRID_MINUTES
ACTUAL_QUALITY = ("A", "S", "F")
SUPPORTED_MINUTES = (5, 10, 15, 30)
WORKERS = 2  # threads reading and reducing month chunks (the machine has 2 cores)
T = TypeVar("T")
_ACTUAL_TABLE = np.zeros(256, dtype=bool)
_ACTUAL_TABLE[[ord(q) for q in ACTUAL_QUALITY]] = True


def segment_key(with_tni: bool = False) -> pl.Expr:
    """``customer_class|jurisdiction|stream`` (``|tni`` appended when segmenting by TNI)."""
    parts = [pl.col("customer_class"), pl.col("jurisdiction"), pl.col("stream")]
    if with_tni:
        parts.append(pl.col("tni").fill_null("-"))
    return pl.concat_str(parts, separator="|").alias("segment")


def parent_key() -> pl.Expr:
    """The parent segment ``*|jurisdiction|stream``."""
    return pl.concat_str([pl.lit("*"), pl.col("jurisdiction"), pl.col("stream")], separator="|").alias(
        "parent"
    )


def parent_of(segment: pl.Expr) -> pl.Expr:
    """Parent key of a segment key string (drops customer class and TNI)."""
    parts = segment.str.split("|")
    return pl.concat_str([pl.lit("*"), parts.list.get(1), parts.list.get(2)], separator="|")


def one_row_per_register(registers: pl.DataFrame) -> pl.DataFrame:
    """A register held by several accounts over time (moves) appears once per account in the
    registers frame; meter data must be counted once: keep the row of its latest account."""
    return registers.sort("meter_register_id", "account_id").unique(
        "meter_register_id", keep="last", maintain_order=True
    )


def interval_registers(registers: pl.DataFrame, segment_with_tni: bool = False) -> pl.DataFrame:
    """Interval registers with their segment and parent keys."""
    return registers.filter(pl.col("interval_minutes").is_not_null()).with_columns(
        segment_key(segment_with_tni), parent_key()
    )


def actual_quality(quality: np.ndarray) -> np.ndarray:
    """Quality bytes that are A, S or F (three byte compares: faster than a table lookup)."""
    a, s_, f = (np.uint8(ord(q)) for q in ACTUAL_QUALITY)
    ok = quality == a
    ok |= quality == s_
    ok |= quality == f
    return ok


def half_hours(
    values: np.ndarray, quality: np.ndarray, minutes: int, nulls: bool = True, overwrite: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(hh, ok) from interval-major (intervals, rows) values (NaN = null) and quality bytes of ONE
    interval length: hh = (48, rows) half-hour sums of actual values (0 where the half hour is not
    actual), ok = the half hour is actual (every sub-interval has quality A, S or F and a value).
    ``nulls=False``: the caller knows that no value is NaN (the NaN test is skipped).
    ``overwrite=True``: ``values`` (a C-contiguous float64 array the caller owns) is used as
    scratch — its non-actual values are set to 0 in place (the same bytes as ``np.where(ok,
    values, 0.0)``, without allocating and filling a second array of the month's values)."""
    k = GRID_MINUTES // minutes
    ok = actual_quality(quality)
    if nulls:
        ok &= ~np.isnan(values)
    if overwrite and values.dtype == np.float64 and values.flags.c_contiguous:
        np.copyto(values, 0.0, where=~ok)
        kept = values
    else:
        kept = np.where(ok, values, 0.0)
    if k == 1:  # the general formula below gives the same bytes: x·1 = x, 0·0 = 0
        return kept, ok
    rows = values.shape[1]
    hh_ok = ok.reshape(SLOTS, k, rows).all(axis=1)
    hh = kept.reshape(SLOTS, k, rows).sum(axis=1) * hh_ok
    return hh, hh_ok


def any_slot(ok: np.ndarray) -> np.ndarray:
    """Rows (columns of the slot-major (48, rows) array) with any actual half hour."""
    return ok.any(axis=0)


def slot_sum(a: np.ndarray) -> np.ndarray:
    """Per-row sum of a slot-major (48, rows) array, slot 0 + slot 1 + … in this order whatever
    the memory layout (numpy's own reduction order depends on it, and the profiles' day grid and
    the scalars' store path must give the same bytes)."""
    out = a[0].astype(np.float64)
    for j in range(1, len(a)):
        out += a[j]
    return out


def lex_order(keys: tuple[np.ndarray, ...] | list[np.ndarray]) -> np.ndarray:
    """The permutation ``np.lexsort(keys)`` (last key primary; ties in every key keep input
    order) of integer keys, by one stable argsort of a composite int64 key: each key minus its
    minimum, in as many bits as its range needs, the last key in the highest bits. The
    composite orders rows as the keys do, lexicographically, so a stable sort of it is the same
    permutation (about 4x faster than ``np.lexsort`` on 1.4M rows of 6 keys). Falls back to
    ``np.lexsort`` when the bits needed exceed 63."""
    keys = [np.asarray(k) for k in keys]
    n = len(keys[0]) if keys else 0
    if n == 0 or any(k.dtype.kind not in "iub" for k in keys):
        return np.lexsort(keys)
    los, widths = [], []
    for k in keys:
        lo, hi = int(k.min()), int(k.max())
        if hi >= 2**63:  # an unsigned key past int64
            return np.lexsort(keys)
        los.append(lo)
        widths.append((hi - lo).bit_length())
    if sum(widths) > 63:
        return np.lexsort(keys)
    comp = np.zeros(n, dtype=np.int64)
    shift = 0
    for k, lo, w in zip(keys, los, widths, strict=True):
        if w:
            part = k.astype(np.int64) - lo if lo else k.astype(np.int64, copy=False)
            comp |= part << shift
            shift += w
    return np.argsort(comp, kind="stable")


def slot_mask(ok: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """int64 masks (bit j = ``ok[j]``) of the ``sel`` columns of a slot-major (48, rows) bool
    array: 8 slots to a byte with in-place uint8 shifts and ors over whole rows (contiguous),
    then the selected columns' 6 bytes laid little-endian in 8-byte words (``np.packbits``
    along the slot axis and a shift per byte cost four times as much)."""
    u = ok.view(np.uint8)
    nbytes = (len(u) + 7) // 8
    bits = np.zeros((nbytes, u.shape[1]), np.uint8)
    tmp = np.empty(u.shape[1], np.uint8)
    for j in range(len(u)):
        np.left_shift(u[j], j % 8, out=tmp)
        bits[j // 8] |= tmp
    words = np.zeros((int(np.count_nonzero(sel)), 8), np.uint8)
    words[:, :nbytes] = bits[:, sel].T
    return words.view("<i8").ravel().astype(np.int64)


def gather_rows_t(view: np.ndarray, starts: np.ndarray, block: int = 1024) -> np.ndarray:
    """``view[starts].T`` as a C-contiguous (width, rows) array, gathered in blocks of rows so that
    each block is transposed in cache (a plain transposing copy is several times slower)."""
    out = np.empty((view.shape[1], len(starts)), dtype=view.dtype)
    for b in range(0, len(starts), block):
        out[:, b : b + block] = view[starts[b : b + block]].T
    return out


@dataclass(frozen=True)
class Grid:
    """Register-day rows of one interval length on the half-hour grid (one month chunk of a shard)."""

    reg: np.ndarray  # the row's register: row index into the registers frame given to interval_grids
    day: np.ndarray  # read_date as days since 1970-01-01 (int64)
    hh: np.ndarray  # (48, rows) half-hour sums of actual values, 0 where not actual (slot-major)
    ok: np.ndarray  # (48, rows) bool: the half hour is actual


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
    return arr.values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False), arr.offsets.to_numpy()


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
    group: np.ndarray | None = None,
    months: Mapping[str, pl.LazyFrame] | None = None,
    keep: pl.DataFrame | None = None,
    kept: dict[int, pl.DataFrame] | None = None,
    caps: RegisterCaps | None = None,
    flagged: list[tuple[np.ndarray, ...]] | None = None,
) -> Iterator[T]:
    """``fn`` of the meter-store rows of ``regs`` (one row per register: nmi, suffix, register_start,
    register_end) on their registers' lives, well formed (supported length, values and quality
    covering the day), chunk by chunk and, within a chunk, by interval length (ascending), rows in
    store order (nmi, suffix, read_date) so that sums over them are the same bytes on every run.
    ``group`` (an int code per register) orders each part's rows by (group, read_date, store
    order) instead, so that rows to be summed together are adjacent (``np.add.reduceat``).

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
    grp = group[reg] if group is not None else np.zeros(len(reg), dtype=np.int64)
    order = lex_order(
        (reg, row, day, grp, minutes, chunk) if group is not None else (reg, row, minutes, chunk)
    )
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
        nulls = bool(np.isnan(values).any())  # one pass on the month instead of one per part
        nan = stored_nan(df["values"]) if caps is not None and nulls else None
        a, b = starts[i], ends[i]
        m_, r_, g_, d_ = minutes[a:b], row[a:b], reg[a:b], day[a:b]
        out = []
        for m in np.unique(m_):
            sel = m_ == m
            n = 1440 // int(m)
            rows, rg, dy = r_[sel], g_[sel], d_[sel]
            good = (voff[rows + 1] - voff[rows] == n) & (qoff[rows + 1] - qoff[rows] == n)
            if not good.all():
                rows, rg, dy = rows[good], rg[good], dy[good]
            if len(rows) == 0:
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


def segment_codes(regs: pl.DataFrame) -> tuple[list[str], np.ndarray]:
    """Sorted distinct segments of ``regs`` and each row's index into them (-1: no segment)."""
    names = regs["segment"].drop_nulls().unique().sort().to_list()
    code = regs.select(
        pl.col("segment").replace_strict(names, list(range(len(names))), default=-1, return_dtype=pl.Int64)
    ).to_series()
    return names, code.to_numpy()


def profile_partial_sums(
    registers: pl.DataFrame,
    interval: pl.LazyFrame,
    segment_with_tni: bool = False,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> pl.DataFrame:
    """One shard's partial sums: segment, read_date, total (48 kWh sums), count (48 register
    counts), registers (registers with any actual half hour). Parent segments are rows too.
    See :func:`profile_partials_and_day_grid`."""
    return profile_partials_and_day_grid(registers, interval, segment_with_tni, date_from, date_to)[0]


DAY_GRID_SCHEMA = {"meter_register_id": pl.Int64, "read_date": pl.Date, "actual_sum": pl.Float64,
                   "ok_mask": pl.Int64}  # fmt: skip


def profile_partials_and_day_grid(
    registers: pl.DataFrame,
    interval: pl.LazyFrame,
    segment_with_tni: bool = False,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    grid_from: dt.date | None = None,
    short_from: dt.date | None = None,
    min_short_days: int = 14,
    months: Mapping[str, pl.LazyFrame] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(partial, day grid) of :func:`profile_read` (without kept rows)."""
    partial, day_grid, _ = profile_read(
        registers,
        interval,
        segment_with_tni,
        date_from,
        date_to,
        grid_from,
        short_from,
        min_short_days,
        months,
    )
    return partial, day_grid


def profile_read(
    registers: pl.DataFrame,
    interval: pl.LazyFrame,
    segment_with_tni: bool = False,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    grid_from: dt.date | None = None,
    short_from: dt.date | None = None,
    min_short_days: int = 14,
    months: Mapping[str, pl.LazyFrame] | None = None,
    keep: pl.DataFrame | None = None,
    caps: Caps | None = None,
    flagged: list[pl.DataFrame] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The shard's profile partial sums and, from the same read, its **day grid**: one row per
    register-day on or after ``grid_from`` with an actual half hour — meter_register_id,
    read_date, actual_sum (Σ actual half hours), ok_mask (bit j = half hour j is actual) — for
    the scalars (tasks/domain/scalars.py), so that they need not read the store again. Rows before
    ``short_from`` are kept only for registers with fewer than ``min_short_days`` such days from
    ``short_from`` on (the registers that may fall back to the 365-day window). Empty when
    ``grid_from`` is None.

    Sums are accumulated in one dense (segment, day, slot) array per shard: each chunk's rows of
    one interval length, sorted by (segment, day, store order), are summed with ``np.add.reduceat``
    and added in; chunks in date order (a day is in one chunk), lengths ascending. The order of
    every addition is fixed, so the bytes are the same on every run. Registers without a
    segment (a null class, jurisdiction or stream) have no profile and are left out.
    ``date_from``/``date_to`` (the scan's range) save a pass over the data to find it; ``months``
    see :func:`interval_grids`.

    Third, the **kept rows**: the store rows (``KEPT_COLUMNS``, store order) of the ``keep`` keys
    (nmi, suffix, read_date) in the chunks read, copied out of the same decode (the interval
    estimates' unbilled-window days, tasks/domain/interval_estimate.py); empty when ``keep`` is None.

    ``caps``: implausible register-days (tasks/domain/plausibility.py) are read as missing data;
    their ``FLAGGED_SCHEMA`` frame is appended to ``flagged``.
    """
    regs = one_row_per_register(interval_registers(registers, segment_with_tni))
    names, seg_of_reg = segment_codes(regs)
    chunks = (
        calendar_chunks(date_from, date_to)
        if date_from is not None and date_to is not None
        else month_chunks(interval)
    )
    empty_grid = pl.DataFrame(schema=DAY_GRID_SCHEMA)
    kept: dict[int, pl.DataFrame] = {}

    def kept_rows() -> pl.DataFrame:
        return pl.concat([kept[i] for i in sorted(kept)]) if kept else pl.DataFrame(schema=KEPT_SCHEMA)

    if not chunks or (not names and keep is None):
        return _empty_partial(), empty_grid, kept_rows()
    g_from = _days(grid_from) if grid_from is not None else None
    mrid = regs["meter_register_id"].to_numpy()
    grid_parts: list[tuple[np.ndarray, ...]] = []
    day0 = _days(chunks[0][0])
    ndays = _days(chunks[-1][1]) - day0 + 1
    nseg = len(names)
    tot = np.zeros((nseg, ndays, SLOTS))
    cnt = np.zeros((nseg, ndays, SLOTS))
    nreg = np.zeros((nseg, ndays))
    rows = np.zeros((nseg, ndays), dtype=np.int64)
    top_day = np.full((nseg, ndays), -np.inf)  # the largest register day (tasks/domain/robust_profile.py)
    top = np.zeros((nseg, ndays, SLOTS))

    def reduce(g: Grid) -> tuple[np.ndarray, ...]:
        # rows come sorted by (segment, day, store order): each run of equal keys is one sum
        seg = seg_of_reg[g.reg]
        first = np.flatnonzero(seg >= 0)
        if len(first) == 0:
            return ()
        start = int(first[0])  # rows without a segment (code -1) sort first: left out
        seg, day = seg[start:], g.day[start:] - day0
        cut = np.flatnonzero((np.diff(seg) != 0) | (np.diff(day) != 0)) + 1
        starts = np.concatenate([[0], cut])
        ok, hh = g.ok[:, start:], g.hh[:, start:]  # views
        any_ok = any_slot(ok)
        day_sums = slot_sum(hh)
        grid: tuple[np.ndarray, ...] = ()
        if g_from is not None:
            # reductions over the whole slot-major arrays, then a selection of 1-D results (a
            # boolean selection of columns copies 48 strided rows)
            sel = any_ok & (g.day[start:] >= g_from)
            grid = (g.reg[start:][sel], g.day[start:][sel], day_sums[sel], slot_mask(ok, sel))
        # counts: reduceat of the bool arrays' bytes (0/1) — the same integers, several times
        # faster than of bool
        return (
            grid,
            seg[starts],
            day[starts],
            np.add.reduceat(hh, starts, axis=1).T,
            np.add.reduceat(ok.view(np.uint8), starts, axis=1, dtype=np.int32).T,
            np.add.reduceat(any_ok.view(np.uint8), starts, dtype=np.int32),
            np.diff(np.concatenate([starts, [len(seg)]])),
            *group_tops(hh, day_sums, starts),
        )

    found: list[tuple[np.ndarray, ...]] = []
    parts = interval_grids(
        regs,
        interval,
        chunks,
        reduce,
        group=seg_of_reg,
        months=months,
        keep=keep,
        kept=kept if keep is not None else None,
        caps=register_caps(regs, caps) if caps is not None else None,
        flagged=found,
    )
    for part in parts:
        if part:
            grid, s_i, d_i, p_tot, p_cnt, p_reg, p_rows, p_top_day, p_top = part
            if grid:
                grid_parts.append(grid)
            tot[s_i, d_i] += p_tot
            cnt[s_i, d_i] += p_cnt
            nreg[s_i, d_i] += p_reg
            rows[s_i, d_i] += p_rows
            keep_larger(top_day, top, (s_i, d_i), p_top_day, p_top)
    if flagged is not None:
        flagged.append(flagged_rows(regs, found))
    # a register belongs to exactly one segment: the parent's sums are its children's, added in
    # segment order
    parents = sorted({"*|" + "|".join(s.split("|")[1:3]) for s in names})
    pidx = {p: i for i, p in enumerate(parents)}
    ptot = np.zeros((len(parents), ndays, SLOTS))
    pcnt = np.zeros((len(parents), ndays, SLOTS))
    pnreg = np.zeros((len(parents), ndays))
    prows = np.zeros((len(parents), ndays), dtype=np.int64)
    for i, s in enumerate(names):
        j = pidx["*|" + "|".join(s.split("|")[1:3])]
        ptot[j] += tot[i]
        pcnt[j] += cnt[i]
        pnreg[j] += nreg[i]
        prows[j] += rows[i]
    all_names = names + parents
    day_grid = _day_grid(grid_parts, mrid, short_from, min_short_days) if grid_parts else empty_grid
    seg_i, day_i = np.nonzero(np.concatenate([rows, prows]) > 0)
    if len(seg_i) == 0:
        return _empty_partial(), day_grid, kept_rows()
    keys = pl.DataFrame(
        {
            "segment": pl.Series(all_names, dtype=pl.Utf8).gather(seg_i),
            "read_date": pl.Series((day0 + day_i).astype("datetime64[D]"), dtype=pl.Date),
        }
    )
    partial = _partial_frame(
        keys,
        np.concatenate([tot, ptot])[seg_i, day_i],
        np.concatenate([cnt, pcnt])[seg_i, day_i],
        np.concatenate([nreg, pnreg])[seg_i, day_i],
        # parents have no top of their own: they are the sums of their trimmed children
        np.concatenate([top_day, np.full((len(parents), ndays), -np.inf)])[seg_i, day_i],
        np.concatenate([top, np.zeros((len(parents), ndays, SLOTS))])[seg_i, day_i],
    ).sort("segment", "read_date")
    return partial, day_grid, kept_rows()


def _day_grid(
    parts: list[tuple[np.ndarray, ...]], mrid: np.ndarray, short_from: dt.date | None, min_short_days: int
) -> pl.DataFrame:
    """The day-grid frame from the reduce parts (rows in read order); see
    :func:`profile_partials_and_day_grid` for which rows are kept."""
    reg, day, actual, mask = (np.concatenate(c) for c in zip(*parts, strict=True))
    if short_from is not None:
        short = day >= _days(short_from)
        n_short = np.bincount(reg[short], minlength=len(mrid))
        keep = short | (n_short[reg] < min_short_days)
        reg, day, actual, mask = reg[keep], day[keep], actual[keep], mask[keep]
    return pl.DataFrame(
        {
            "meter_register_id": mrid[reg],
            "read_date": day.astype("datetime64[D]"),
            "actual_sum": actual,
            "ok_mask": mask,
        }
    ).cast(DAY_GRID_SCHEMA)  # type: ignore[arg-type]


def unpack_mask(mask: np.ndarray) -> np.ndarray:
    """(48, rows) bool slot-major array of day-grid ``ok_mask`` bits."""
    return ((mask[None, :] >> np.arange(SLOTS, dtype=np.int64)[:, None]) & 1).astype(bool)


def _days(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def _empty_partial() -> pl.DataFrame:
    return _partial_frame(
        pl.DataFrame(schema={"segment": pl.Utf8, "read_date": pl.Date}),
        np.zeros((0, SLOTS)),
        np.zeros((0, SLOTS)),
        np.zeros(0),
    )


def group_sum(keys: pl.DataFrame, arrays: list[np.ndarray]) -> tuple[pl.DataFrame, list[np.ndarray]]:
    """Sum the rows of each 2-D array within groups of equal keys (one bincount per column)."""
    ids = keys.with_columns(_g=pl.struct(keys.columns).rank("dense").cast(pl.Int64) - 1)
    gid = ids["_g"].to_numpy()
    n = int(gid.max()) + 1 if len(gid) else 0
    uniq = ids.unique("_g").sort("_g").drop("_g")
    sums = [
        np.stack([np.bincount(gid, weights=a[:, j], minlength=n) for j in range(a.shape[1])], axis=1)
        for a in arrays
    ]
    return uniq, sums


def _partial_frame(
    keys: pl.DataFrame,
    total: np.ndarray,
    count: np.ndarray,
    registers: np.ndarray,
    top_day: np.ndarray | None = None,
    top: np.ndarray | None = None,
) -> pl.DataFrame:
    """Partial sums; ``top_day``/``top``: each row's largest register day and its half hours
    (tasks/domain/robust_profile.py; none: -inf and zeros)."""
    n = len(keys)
    return keys.with_columns(
        slot_arrays("total", total),
        slot_arrays("count", count),
        pl.Series("registers", registers, dtype=pl.Float64),
        pl.Series("top_day", top_day if top_day is not None else np.full(n, -np.inf), dtype=pl.Float64),
        slot_arrays("top", top if top is not None else np.zeros((n, SLOTS))),
    )


def slot_arrays(name: str, a: np.ndarray) -> pl.Series:
    """An ``Array(Float64, 48)`` series of a (rows, 48) array (a flat series reshaped: given a
    2-D array, ``pl.Series`` converts it row by row)."""
    a = np.ascontiguousarray(a, dtype=np.float64).reshape(-1, SLOTS)
    return pl.Series(name, a.ravel()).reshape((len(a), SLOTS))


def combine_partials(partials: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Add partial sums of the same (segment, read_date)."""
    allp = pl.concat(list(partials))
    keys, (tot, cnt, reg) = group_sum(
        allp.select("segment", "read_date"),
        [allp["total"].to_numpy(), allp["count"].to_numpy(), allp["registers"].to_numpy().reshape(-1, 1)],
    )
    tops = best_tops(allp, keys)
    return _partial_frame(keys, tot, cnt, reg[:, 0], tops["top_day"].to_numpy(), tops["top"].to_numpy()).sort(
        "segment", "read_date"
    )


def combine_profiles(partials: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Sum the shards' partials; P = total / count per slot (null where no register contributed),
    the largest register of a segment-day capped (tasks/domain/robust_profile.py)."""
    total = combine_partials(partials)
    tot, cnt = trimmed_totals(total), total["count"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cnt > 0, tot / np.where(cnt > 0, cnt, 1.0), np.nan)
    return total.select(
        "segment",
        "read_date",
        slot_arrays("profile", mean).arr.to_list().list.eval(pl.element().fill_nan(None)),
        pl.col("registers").cast(pl.UInt32),
    )
