"""The peak memory of one phase run alone: walk the month end's graph once into a work folder (the
run id pinned in ``spec.json``, so later code reads the same work files), then run the phase
through ``run_phase`` with the RSS of the process and its children sampled every 20 ms; ``digest``
prints the sha256 of the output tables' rows in rowid order and of every published file.

    .venv/bin/python bench/phase_rss.py walk --data /work/tmp/b31k --work /work/tmp/w31k --shards 5
    .venv/bin/python bench/phase_rss.py phase --phase prepare --data /work/tmp/b31k --work /work/tmp/w31k --shards 5
    .venv/bin/python bench/phase_rss.py digest --data /work/tmp/b31k --work /work/tmp/w31k --shards 5

``--data``: a ``bench/build_portfolio.py --keep`` folder (bua.db and ms/ or store/); its bua.db is
copied into the work folder, which is what every mode writes to. Run each measurement in a fresh
process (the allocator keeps freed pages, so a repeat in the same process reads higher).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import resource
import shutil
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import tasks  # noqa: E402,F401  (the allocator setting bua runs with)

R = dt.date(2026, 11, 1)
TABLES = ("invoice_line_item_monthly", "bua_account_summary", "bua_exception", "estimated_basic_read",
          "accrual_summary")  # fmt: skip


class Sampler(threading.Thread):
    """Peak RSS (bytes) of this process, of its children, and of both together, every ``every``
    seconds (20 ms by default); ``peak_at``: when the joint peak came, in seconds from the start."""

    def __init__(self, every: float = 0.02) -> None:
        import psutil

        super().__init__(daemon=True)
        self.me, self.error, self.every = psutil.Process(), psutil.Error, every
        self.peak = self.own = self.children = 0
        self.peak_at = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        t0 = time.perf_counter()
        while not self.done.is_set():
            own, kids = self.me.memory_info().rss, 0
            for c in self.me.children(recursive=True):
                try:
                    kids += c.memory_info().rss
                except self.error:
                    pass
            self.own, self.children = max(self.own, own), max(self.children, kids)
            if own + kids > self.peak:
                self.peak, self.peak_at = own + kids, time.perf_counter() - t0
            time.sleep(self.every)


def setup(args: argparse.Namespace) -> tuple[Any, Any]:
    from tasks.adapters.db import init_db
    from tasks.pipeline.spec import RunSpec, resolve_run
    from tasks.settings import Settings

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "bua.db").exists():
        shutil.copyfile(args.data / "bua.db", work / "bua.db")
    store = args.data / "store" if (args.data / "store").exists() else args.data / "ms"
    s = Settings(database_url=f"sqlite:///{work}/bua.db", meter_store=str(store), output_url=str(work / "out"),
                 shards=args.shards, slack_webhook_url=None)  # fmt: skip
    init_db(s.db_url)
    pinned = work / "spec.json"
    if pinned.exists():
        d = json.loads(pinned.read_text())
        spec = RunSpec(**{k: dt.date.fromisoformat(v) if k in ("run_date", "period_start", "period_end") else v
                          for k, v in d.items()})  # fmt: skip
    else:
        spec = resolve_run(s, R)
        pinned.write_text(json.dumps(dataclasses.asdict(spec), default=str))
    return s, spec


def digest(work: Path, run_date: dt.date) -> dict[str, Any]:
    out: dict[str, Any] = {}
    con = sqlite3.connect(work / "bua.db")
    for t in TABLES:
        h, n = hashlib.sha256(), 0
        for row in con.execute(
            f"SELECT * FROM {t} WHERE run_date = ? ORDER BY rowid", (run_date.isoformat(),)
        ):
            h.update(repr(row).encode())
            n += 1
        out[t] = [n, h.hexdigest()]
    for f in sorted((work / "out").rglob("*")):
        if f.is_file() and f.relative_to(work / "out").parts[0] != "work":
            out[str(f.relative_to(work))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["walk", "phase", "digest"])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--phase", default="prepare")
    args = ap.parse_args()
    s, spec = setup(args)
    from tasks.pipeline.graph import phase_named, run_phase
    from tasks.pipeline.walk import walk_graph

    if args.mode == "walk":
        t = time.perf_counter()
        walk_graph(spec, s)
        print(f"walk {time.perf_counter() - t:.1f} s")
    if args.mode == "phase":
        phase = phase_named(args.phase)
        sampler = Sampler()
        sampler.start()
        t, c = time.perf_counter(), time.process_time()
        for shard in range(args.shards) if phase.per_shard else [None]:
            run_phase(phase, spec, s, shard)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        time.sleep(0.1)
        sampler.done.set()
        sampler.join()
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        mb = 2**20
        print(json.dumps({"phase": args.phase, "peak_mb": round(sampler.peak / mb),
                          "process_mb": round(sampler.own / mb), "children_mb": round(sampler.children / mb),
                          "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                          "children_cpu_s": round(kids.ru_utime + kids.ru_stime, 2)}))  # fmt: skip
    else:
        print(json.dumps(digest(args.work, spec.run_date), indent=1))


if __name__ == "__main__":
    main()
