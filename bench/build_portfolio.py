"""Benchmark building a portfolio's 13-month bulk load: generate with the meter store written directly
(``generate --store --no-nem12``) or the old way (generate NEM12, then ``ingest_nem12``), plus the
database load (``load_portfolio`` and the NEM13 files) into SQLite.

    .venv/bin/python bench/build_portfolio.py --accounts 10000                  # direct
    .venv/bin/python bench/build_portfolio.py --accounts 10000 --path nem12     # the old path
    .venv/bin/python bench/build_portfolio.py --accounts 100000 --out /work/tmp/gen100k

Each size runs in its own subprocess (its peak RSS is that run's alone), prints a table and adds
its figures to bench/results/build.json (one run per accounts × path). Wall, CPU (user + system)
and peak RSS cover the whole build; ``store s`` is generate (+ ingest), ``db s`` the database
load. The load average before the run is recorded: the machine is shared. The scratch folder is
deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import save_run  # noqa: E402

CHILD = """
import json, resource, sys, time
from pathlib import Path
from tasks.adapters.db import init_db
from tasks.adapters.ingest import ingest_nem12, ingest_nem13
from tasks.generate import generate
from tasks.generate.load import load_portfolio
from tasks.settings import Settings
accounts, path, out, shards = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
s = Settings(database_url=f"sqlite:///{out}/bua.db", meter_store=str(out / "ms"), shards=shards)
t0 = time.perf_counter()
if path == "direct":
    m = generate(out / "portfolio", accounts=accounts, seed=4242, months=13, store=s, nem12=False)
else:
    m = generate(out / "portfolio", accounts=accounts, seed=4242, months=13)
    ingest_nem12([str(out / "portfolio" / "nem12")], s)
t1 = time.perf_counter()
init_db(s.db_url)
load_portfolio(s.db_url, out / "portfolio")
if any((out / "portfolio" / "nem13").iterdir()):
    ingest_nem13([str(out / "portfolio" / "nem13")], s)
t2 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"store_s": t1 - t0, "db_s": t2 - t1, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "peak_rss_mb": ru.ru_maxrss / 1024, "files": m["files"]}))
"""


def _bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def run(accounts: int, path: str, out: Path, shards: int, keep: bool) -> dict:
    target = out / f"build-{accounts}-{path}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    load = os.getloadavg()
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(accounts), path, str(target), str(shards)],
        check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    wall = time.perf_counter() - t
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    result = {
        "accounts": accounts,
        "path": path,
        "shards": shards,
        "wall_s": round(wall, 1),
        "store_s": round(child["store_s"], 1),
        "db_s": round(child["db_s"], 1),
        "cpu_s": round(child["cpu_s"], 1),
        "peak_rss_mb": round(child["peak_rss_mb"]),
        "store_bytes": _bytes(target / "ms" / "interval"),
        "nem12_bytes": _bytes(target / "portfolio" / "nem12"),
        "register_days": child["files"].get("store_register_days"),
        "load_average_before": [round(x, 2) for x in load],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if not keep:
        shutil.rmtree(target, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, nargs="+", default=[10_000])
    ap.add_argument("--path", choices=("direct", "nem12"), default="direct")
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bua-bench-build"))
    ap.add_argument("--keep", action="store_true", help="keep the portfolio, store and database")
    args = ap.parse_args()
    print(
        f"{'accounts':>9} {'path':>6} {'wall s':>7} {'store s':>8} {'db s':>6} {'CPU s':>6} "
        f"{'RSS MB':>7} {'store GB':>9} {'NEM12 GB':>9} {'load':>5}"
    )
    for n in args.accounts:
        r = run(n, args.path, args.out, args.shards, args.keep)
        print(
            f"{n:>9,} {r['path']:>6} {r['wall_s']:>7.1f} {r['store_s']:>8.1f} {r['db_s']:>6.1f} {r['cpu_s']:>6.1f} "
            f"{r['peak_rss_mb']:>7,} {r['store_bytes'] / 1e9:>9.2f} {r['nem12_bytes'] / 1e9:>9.2f} {r['load_average_before'][0]:>5.1f}"
        )
        save_run("build", r, ("accounts", "path"))


if __name__ == "__main__":
    main()
