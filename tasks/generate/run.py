"""`bua generate`: build the synthetic portfolio and write it under one directory.

Order: reference data → portfolio → plans, discounts, bills and the invoice-line skeleton →
interval batches (true values, NEM12 deliveries, truth, line quantities) → basic batches (true
daily, reads as ``basic_read`` rows or NEM13, truth, line quantities) → invoices and payments →
``db/*.parquet`` and ``manifest.json``. Batches are independent (own random streams), run on a
small thread pool and are collected in order, so the bytes never depend on timing. Memory holds
one batch of intervals per worker plus the portfolio's rows.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from tasks.adapters.ingest import RegisterDayLoader
from tasks.adapters.ingest_store import parts_of
from tasks.generate import billing, invoices, loadshape, mdp, reads, reference, store_out, weather_out
from tasks.generate.calendar import Calendar
from tasks.generate.portfolio import build_portfolio
from tasks.generate.tables import ChunkWriter, db_tables, write_tables
from tasks.generate.truth import TruthWriter, site_accounts, truth_rows
from tasks.generate.variant import Variant
from tasks.settings import Settings

DEFAULT_END = dt.date(2026, 10, 31)
HISTORY_MONTHS = 3  # bills and basic reads start this many months before the meter data
STORE_BATCH_READINGS = 40_000_000  # readings waiting for the store (~0.5 GB): fewer, larger sorted runs
CHUNK_ACCOUNTS = 25_000  # accounts whose bill lines and invoices are built and priced at once


class _Chunk:
    """A run of consecutive accounts (rows ``a0:a1`` of the accounts, ids ``a0 + 1 … a1``) and the
    rows of the id-ordered per-account frames that belong to it."""

    def __init__(self, a0: int, a1: int, ids: dict[str, np.ndarray]) -> None:
        self.a0, self.a1 = a0, a1
        # first and last+1 row of each frame sorted by account_id (searchsorted on its ids)
        self.rows = {
            k: (int(np.searchsorted(v, a0 + 1)), int(np.searchsorted(v, a1 + 1))) for k, v in ids.items()
        }
        self.lines = 0  # how many lines its bills have (known after the skeleton's first pass)

    def take(self, name: str, df: pl.DataFrame) -> pl.DataFrame:
        lo, hi = self.rows[name]
        return df.slice(lo, hi - lo)


def _chunks(n_accounts: int, size: int, frames: dict[str, pl.DataFrame]) -> list[_Chunk]:
    """Chunks of ``size`` accounts; ``frames`` are sorted by account_id."""
    ids = {k: df["account_id"].to_numpy() for k, df in frames.items()}
    return [_Chunk(a0, min(a0 + size, n_accounts), ids) for a0 in range(0, max(n_accounts, 1), max(size, 1))]


def _registers(p_regs: pl.DataFrame) -> pl.DataFrame:
    """Add the NEM12/13 200/250 fields: NMI configuration (all suffixes of the meter) and register number."""
    return p_regs.with_columns(
        pl.col("suffix").str.join("").over("meter_id").alias("nmi_config"),
        pl.int_range(1, pl.len() + 1).over("meter_id").cast(pl.String).alias("register_no"),
    )


def _batches(regs: pl.DataFrame, batch_nmis: int) -> list[pl.DataFrame]:
    """Interval registers grouped by interval length, then by consecutive NMIs (sites).

    A batch holds ``batch_nmis`` sites of 30-minute meters and proportionally fewer of 15- and
    5-minute meters, so that every batch holds about the same number of values.
    """
    iv = regs.filter(pl.col("installation_type") != "BASIC").sort("interval_minutes", "identifier", "suffix")
    iv = iv.with_columns(
        (pl.col("site_id").rank("dense").over("interval_minutes") - 1)
        .floordiv(pl.max_horizontal(pl.lit(1), pl.lit(batch_nmis) * pl.col("interval_minutes") // 30))
        .alias("b")
    )
    return [g for _, g in iv.group_by("interval_minutes", "b", maintain_order=True)]


def _fill(
    lines: dict[str, np.ndarray], regs: pl.DataFrame, daily: np.ndarray, tou: dict[int, np.ndarray] | None
) -> pl.DataFrame:
    """Quantities of the register lines of these registers from cumulative daily sums.

    ``lines``: the portfolio's register lines as arrays sorted by register (``_register_lines``);
    a batch's lines are found by binary search, not by a join over all of them (which made the
    fill quadratic in the portfolio: every batch scanned every line)."""
    ids = regs["id"].to_numpy()
    lo = np.searchsorted(lines["meter_register_id"], ids, "left")
    n = np.searchsorted(lines["meter_register_id"], ids, "right") - lo
    if n.sum() == 0:
        return pl.DataFrame(schema={"line_id": pl.UInt32, "quantity": pl.Float64})
    r = np.repeat(np.arange(ids.size), n)  # the batch row of each line
    take = np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(n.sum())
    cum = np.concatenate([np.zeros((daily.shape[0], 1)), np.cumsum(daily, axis=1)], axis=1)
    s, e = lines["s"][take].astype(np.int64), lines["e"][take].astype(np.int64) + 1
    qty = cum[r, e] - cum[r, s]
    if tou is not None:
        tc = lines["tc"][take]
        cp = np.concatenate([np.zeros((daily.shape[0], 1)), np.cumsum(tou[1], axis=1)], axis=1)
        cs = np.concatenate([np.zeros((daily.shape[0], 1)), np.cumsum(tou[2], axis=1)], axis=1)
        peak, shoulder = cp[r, e] - cp[r, s], cs[r, e] - cs[r, s]
        qty = np.select([tc == 1, tc == 2, tc == 3], [peak, shoulder, qty - peak - shoulder], qty)
    return pl.DataFrame(
        {"line_id": pl.Series(lines["line_id"][take], dtype=pl.UInt32), "quantity": np.round(qty, 3)}
    )


def _sites_of(regs: pl.DataFrame, per_site: pl.DataFrame, sites: np.ndarray) -> pl.DataFrame:
    """The rows of ``per_site`` (sorted by site_id; ``sites`` its site_id column) whose site is in the
    batch's range of sites: a batch's joins then touch its own sites' rows, not the portfolio's
    (every batch hashed every site and every read day: quadratic in the portfolio)."""
    sid = regs["site_id"]
    lo, hi = np.searchsorted(sites, [sid.min(), sid.max() + 1])  # type: ignore[operator]
    return per_site.slice(int(lo), int(hi - lo))


def _register_lines(parts: list[pl.DataFrame]) -> dict[str, np.ndarray]:
    """The register lines (line_id, meter_register_id, s, e, tc) as arrays sorted by register."""
    df = pl.concat(parts).sort("meter_register_id", "line_id")
    return {c: df[c].to_numpy() for c in df.columns}


def _tou_masks(k: int, windows: pl.DataFrame) -> np.ndarray:
    """(k, 16) 0/1 matrix: column 4·j + 2·weekend + c is interval-in-class for jurisdiction j, class c (PEAK, SHOULDER)."""
    m = np.zeros((k, 16), dtype=np.float32)
    for j_i, j in enumerate(reference.JURISDICTIONS):
        w = windows.filter(pl.col("tou_scheme_id") == reference.TOU_SCHEME[j])
        minute = ((np.arange(k) + 0.5) * 1440 / k + reference.LOCAL_OFFSET_HOURS[j] * 60) % 1440
        for wk, day_type in enumerate(("WEEKDAY", "WEEKEND")):
            for c, name in enumerate(("PEAK", "SHOULDER")):
                ww = w.filter(pl.col("day_type").is_in([day_type, "ALL"]) & (pl.col("time_class") == name))
                for s, e in ww.select("start_minute", "end_minute").iter_rows():  # a handful of windows
                    m[(minute >= s) & (minute < e), 4 * j_i + 2 * wk + c] = 1.0
    return m


def _tou_split(
    q: np.ndarray, regs: pl.DataFrame, data_cal: Calendar, masks: np.ndarray
) -> dict[int, np.ndarray]:
    """Per register-day PEAK (1) and SHOULDER (2) sums in the register's jurisdiction's scheme (one
    matmul); ``masks``: ``_tou_masks`` of the batch's intervals a day (built once per length)."""
    n, d, k = q.shape
    sums = (q.reshape(n * d, k).astype(np.float32) @ masks).reshape(n, d, 16)
    j = (
        regs["jurisdiction"]
        .replace_strict({x: i for i, x in enumerate(reference.JURISDICTIONS)}, return_dtype=pl.Int64)
        .to_numpy()
    )
    col = 4 * j[:, None] + 2 * data_cal.weekend.astype(np.int64)[None, :]  # (n, d)
    pick = lambda c: np.take_along_axis(sums, (col + c)[:, :, None], axis=2)[:, :, 0] / 1000.0  # noqa: E731
    return {1: pick(0), 2: pick(1)}


def generate(
    out: str | Path,
    accounts: int,
    seed: int,
    months: int,
    end: dt.date = DEFAULT_END,
    batch_nmis: int = 200,
    workers: int = 2,
    log: Callable[[str], None] | None = None,
    variant: Variant | str | Path | dict | None = None,
    store: Settings | None = None,
    nem12: bool = True,
    store_batch_readings: int = STORE_BATCH_READINGS,
    chunk_accounts: int = CHUNK_ACCOUNTS,
) -> dict:
    """Generate the portfolio under ``out`` (db/, nem12/, nem13/, weather/, truth/, manifest.json); returns
    the manifest. ``variant``: generator settings (tasks/generate/variant.py; a JSON file or dict).
    ``store``: also merge the interval data into ``store.meter_store`` (``store.shards`` shards) exactly
    as ``ingest_nem12`` of the nem12/ folder would (``tasks.generate.store_out``), holding about
    ``store_batch_readings`` readings before writing; ``nem12=False``: write no NEM12 text.
    ``chunk_accounts``: bill lines and invoices are built, priced and written that many accounts at
    a time (memory; the output does not depend on it)."""
    gv = variant if isinstance(variant, Variant) else Variant.load(variant)
    t0 = time.perf_counter()

    def say(message: str) -> None:  # progress with elapsed seconds (never written to the files)
        if log is not None:
            log(f"[{time.perf_counter() - t0:6.1f} s] {message}")

    root = Path(out)
    for sub in ("db", "nem12", "nem13", "truth", "weather"):
        shutil.rmtree(root / sub, ignore_errors=True)
        (root / sub).mkdir(parents=True, exist_ok=True)
    data_cal = Calendar.for_months(end, months)
    cal = Calendar.for_months(end, months + HISTORY_MONTHS)
    data0 = cal.index(data_cal.start)
    p = build_portfolio(accounts, cal, seed, gv)
    regs = _registers(p.registers)
    wx = loadshape.weather(cal, seed, gv)
    # the weather the sites' heating and cooling followed, as BoM daily files (`bua ingest weather`)
    weather_files = weather_out.write_bom_files(
        weather_out.station_observations(cal, wx["temp"], seed, gv), root / "weather"
    )
    wx_data = {k: v[:, data0:] for k, v in wx.items()}
    plans, plan_rate = reference.plan_catalogue()
    account_plan = billing.assign_plans(p.accounts, p.sites, plans, cal, seed)
    discounts = billing.assign_discounts(p.accounts, cal, seed)
    bills = billing.bill_periods(p.accounts, cal, seed)
    accounts_k = p.accounts.select(pl.col("id").alias("account_id"))
    chunks = _chunks(
        p.accounts.height,
        chunk_accounts,
        {"account": accounts_k, "bill": bills, "plan": account_plan, "discount": discounts},
    )

    def skeleton(c: _Chunk, first_line: int) -> pl.DataFrame:
        return billing.line_skeleton(
            c.take("bill", bills), c.take("plan", account_plan), plan_rate, c.take("account", p.accounts),
            regs, cal, first_line,
        )  # fmt: skip

    # first pass over the chunks: only what filling the quantities needs of the register lines
    reg_parts, n_lines = [], 0
    for c in chunks:
        sk = skeleton(c, n_lines)
        c.lines = sk.height
        n_lines += sk.height
        reg_parts.append(
            sk.filter(pl.col("meter_register_id").is_not_null()).select(
                "line_id",
                "meter_register_id",
                pl.col("s").cast(pl.Int32),
                pl.col("e").cast(pl.Int32),
                pl.col("time_class")
                .replace_strict(billing.TC_CODE, default=0, return_dtype=pl.Int8)
                .alias("tc"),
            )  # fmt: skip
        )
        del sk
    reg_lines = _register_lines(reg_parts)
    del reg_parts
    windows = reference.tou_window_frame()
    say(
        f"portfolio: {p.accounts.height} accounts, {p.sites.height} sites, {regs.height} registers, "
        f"{bills.height} bills, {n_lines} bill lines in {len(chunks)} chunks"
    )

    truth = TruthWriter(root / "truth" / "register_day.parquet")
    acc_days = site_accounts(
        p.accounts.select("site_id", pl.col("id").alias("account_id"), "open_i", "close_i")
    ).sort("site_id")
    acc_sites = acc_days["site_id"].to_numpy()
    stats = {
        "nem12_files": 0,
        "nem12_lines": 0,
        "nem12_values": 0,
        "nem12_bytes": 0,
        "nem13_files": 0,
        "truth_rows": 0,
    }
    filled: list[pl.DataFrame] = []
    iv_batches = _batches(regs, batch_nmis)
    tou_masks = {
        k: _tou_masks(k, windows) for k in {1440 // int(b["interval_minutes"][0]) for b in iv_batches}
    }

    def interval_batch(arg: tuple[int, pl.DataFrame]) -> tuple[dict, pa.Table, pl.DataFrame, object]:
        i, b = arg
        k = 1440 // int(b["interval_minutes"][0])
        q = loadshape.interval_values(b, data_cal, wx_data, k, seed, i, gv)
        af = np.maximum(b["active_from"].to_numpy() - data0, 0)
        at = b["active_to"].to_numpy() - data0
        day = np.arange(data_cal.n_days)[None, :]
        on = (day >= af[:, None]) & (day <= at[:, None])
        rel = b.with_columns(pl.Series("active_from", af), pl.Series("active_to", at))
        plan = mdp.batch_plan(rel, k, data_cal, seed, i)
        st = mdp.write_batch(rel, q, data_cal, seed, i, root / "nem12", plan) if nem12 else {}
        parts = None
        if store is not None:  # the rows ingesting this batch's two files would merge into the store
            rows, superseded = store_out.batch_register_days(rel, q, plan, data_cal, i)
            parts = parts_of(rows, store.shards, (superseded, superseded * k))
        daily_data = np.where(on, q.sum(axis=2) / 1000.0, 0.0)
        tou = _tou_split(q, b, data_cal, tou_masks[k])
        del q
        full_on = (np.arange(cal.n_days)[None, :] >= b["active_from"].to_numpy()[:, None]) & (
            np.arange(cal.n_days)[None, :] <= b["active_to"].to_numpy()[:, None]
        )
        pre = loadshape.basic_daily(b, cal, wx, seed, part=i, variant=gv)[:, :data0]
        daily = np.where(full_on, np.concatenate([pre, daily_data], axis=1), 0.0)
        share = {
            c: np.divide(v.sum(1), daily_data.sum(1), out=np.zeros(v.shape[0]), where=daily_data.sum(1) > 0)
            for c, v in tou.items()
        }
        tou_full = {
            c: np.concatenate([pre * share[c][:, None], np.where(on, v, 0.0)], axis=1) for c, v in tou.items()
        }
        tr = truth_rows(b, daily_data, on, data_cal, _sites_of(b, acc_days, acc_sites), data0)
        return st, tr, _fill(reg_lines, b, daily, tou_full), parts

    basic = regs.filter(pl.col("installation_type") == "BASIC").sort("id")
    read_days = billing.read_days(p.accounts, cal, seed)  # sorted by site_id
    read_sites = read_days["site_id"].to_numpy()
    created = (dt.datetime.combine(end, dt.time()) + dt.timedelta(days=1, hours=2)).strftime("%Y%m%d%H%M")
    basic_parts = [basic.slice(o, 4000) for o in range(0, basic.height, 4000)]

    def basic_batch(arg: tuple[int, pl.DataFrame]) -> tuple[dict, pa.Table, pl.DataFrame, pl.DataFrame]:
        i, b = arg
        on = (np.arange(cal.n_days)[None, :] >= b["active_from"].to_numpy()[:, None]) & (
            np.arange(cal.n_days)[None, :] <= b["active_to"].to_numpy()[:, None]
        )
        daily = np.where(on, loadshape.basic_daily(b, cal, wx, seed, part=100_000 + i, variant=gv), 0.0)
        r, d = reads.schedule(b, _sites_of(b, read_days, read_sites), cal)
        rv = reads.read_values(b, daily, r, d, seed, i)
        nem13 = b["nem13"].to_numpy()[rv["row"].to_numpy()]
        st = {"nem13_files": 0}
        if nem13.any():
            text = reads.nem13_text(rv.filter(pl.Series(nem13)), b, cal, created)
            (root / "nem13" / f"NEM13_{i:05d}.csv").write_text(text)
            st["nem13_files"] = 1
        tr = truth_rows(
            b, daily[:, data0:], on[:, data0:], data_cal, _sites_of(b, acc_days, acc_sites), data0
        )
        return st, tr, _fill(reg_lines, b, daily, None), rv.filter(~pl.Series(nem13))

    basic_reads: list[pl.DataFrame] = []
    # every batch holds sites of every shard and days of every month: each flush touches every
    # partition, so a partition written at the first flush would be read back and rewritten at close
    loader = RegisterDayLoader(store, store_batch_readings, stage_all=True) if store is not None else None
    try:
        with ThreadPoolExecutor(max_workers=workers) as executor:
            pool = _Bounded(executor, workers + 1) if workers > 1 else _Serial()
            for n_done, (st, tr, fl, parts) in enumerate(pool.map(interval_batch, enumerate(iv_batches)), 1):
                for key, v in st.items():
                    stats[key] += v
                if loader is not None:
                    loader.add(parts)
                truth.write(tr)
                stats["truth_rows"] += tr.num_rows
                filled.append(fl)
                if n_done % 20 == 0:
                    say(f"interval batches {n_done}/{len(iv_batches)}")
            if loader is not None:
                # now, not after the basic registers: the run merge's partitions and the basic
                # batches' working sets are then never in memory together (no thread is busy)
                say("interval batches done; merging the meter store's sorted runs")
                summary = loader.close()
                loader = None  # complete: nothing to abort
                stats["store_register_days"], stats["store_readings"] = (
                    summary.register_days,
                    summary.readings,
                )
            say(f"interval data done ({len(iv_batches)} batches); basic registers")
            # a basic part's result holds ~1.6 M truth rows: none waits beyond the running ones
            basic_pool = _Bounded(executor, workers - 1) if workers > 1 else _Serial()
            for st, tr, fl, rv in basic_pool.map(basic_batch, enumerate(basic_parts)):
                stats["nem13_files"] += st["nem13_files"]
                truth.write(tr)
                stats["truth_rows"] += tr.num_rows
                filled.append(fl)
                basic_reads.append(rv)
        truth.close()
    except BaseException:
        if loader is not None:
            loader.abort()  # partitions written so far are whole; the sorted runs are deleted
        raise
    say("meter data written; pricing bills chunk by chunk")
    reg_lines.clear()  # the closures above are done with it
    qty = pl.concat(filled) if filled else pl.DataFrame(schema={"line_id": pl.UInt32, "quantity": pl.Float64})
    del filled
    qty = qty.sort("line_id")
    qty_ids = qty["line_id"].to_numpy()
    draws = invoices.draw_invoices(bills, p.accounts.height, cal, seed)
    at = invoices.ChunkOffsets()
    writers = {t: ChunkWriter(root / "db", t) for t in ("invoice", "invoice_line")}
    pay_parts, line0 = [], 0
    for c in chunks:  # second pass: the whole lines of one chunk, priced and written
        lines = skeleton(c, line0)
        lo, hi = np.searchsorted(qty_ids, [line0, line0 + c.lines])
        lines = (
            lines.join(qty.slice(int(lo), int(hi - lo)), on="line_id", how="left", suffix="_r")
            .with_columns(pl.coalesce("quantity", "quantity_r").fill_null(0.0).alias("quantity"))
            .drop("quantity_r")
        )
        lines = invoices.finish_lines(lines)
        at.account, at.bill = c.a0, c.rows["bill"][0]
        out = invoices.price_chunk(
            c.take("bill", bills),
            lines,
            c.take("discount", discounts),
            c.take("account", p.accounts),
            draws,
            at,
            cal,
        )
        for t, w in writers.items():
            w.write(out[t])
        pay_parts.append(out["payment"])
        at.invoice += out["invoice"].height
        at.invoice_line += out["invoice_line"].height
        line0 += c.lines
        del lines, out
    sizes = {t: w.close() for t, w in writers.items()}
    counts = {t: w.rows for t, w in writers.items()}
    del qty, qty_ids
    payments = invoices.number_payments(pl.concat(pay_parts), seed)
    br = pl.concat(basic_reads) if basic_reads else pl.DataFrame()
    say("invoices and payments priced; writing db/*.parquet")
    tables = db_tables(
        p, regs, plans, plan_rate, windows, account_plan, discounts, {"payment": payments}, br, cal
    )
    sizes |= write_tables(tables, root / "db")
    counts |= {name: df.height for name, df in tables.items()}
    manifest = {
        "arguments": {
            "accounts": accounts,
            "seed": seed,
            "months": months,
            "end": end.isoformat(),
            "batch_nmis": batch_nmis,
        },
        "meter_data": {"first_day": data_cal.start.isoformat(), "last_day": end.isoformat()},
        "history_from": cal.start.isoformat(),
        **({} if gv.is_default else {"variant": gv.as_dict()}),
        "tables": dict(sorted(counts.items())),
        "files": {**dict(stats.items()), "weather_files": weather_files},
        "db_bytes": sizes,
    }
    say("done")
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


class _Bounded:
    """``map`` on a thread pool with at most ``ahead`` items submitted beyond the one consumed, in
    order: a slow consumer (the store writer) never lets finished batches pile up in memory."""

    def __init__(self, executor: ThreadPoolExecutor, ahead: int) -> None:
        self.executor, self.ahead = executor, ahead

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        queue: deque[Future] = deque()
        for item in items:
            queue.append(self.executor.submit(fn, item))
            if len(queue) > self.ahead:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


class _Serial:
    """``map`` in the calling thread (workers=1: easier to profile and to debug)."""

    @staticmethod
    def map(fn: Callable, items: object) -> Iterator:
        return map(fn, items)  # type: ignore[arg-type]


def iter_files(root: str | Path) -> Iterator[Path]:
    """Every generated file, sorted (for checksums)."""
    yield from sorted(p for p in Path(root).rglob("*") if p.is_file())
