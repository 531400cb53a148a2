"""The extract's first read with and without the warm-up, on a private MariaDB whose buffer pool is cold.

A shared MariaDB cannot be restarted and its InnoDB buffer pool cannot be emptied (FLUSH TABLES
closes table handles only), so this starts a private ``mariadbd`` (its own datadir, port, socket)
with ``innodb_flush_method=O_DIRECT`` (data pages bypass the OS page cache), no buffer-pool dump
or load, and a small buffer pool; loads a generated portfolio (``--portfolio``, the parquet of
``bua generate``); then, alternating cold and warm, restarts the server (an empty buffer pool: the
nearest local stand-in for a just-restored RDS instance, whose blocks come from S3 on first read)
and times ``tasks.adapters.extract.read_datasets`` (the extract phase's reads) — after
``warm_up`` in the warm trials, whose time is reported apart — and the same extract again (hot).

    python bench/warmup.py --portfolio /work/ref/r2k/portfolio --trials 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

R = dt.date(2026, 11, 1)


def start(data: Path, port: int, pool: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            "/usr/sbin/mariadbd",
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={data}/sock",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--pid-file={data}/pid",
            f"--log-error={data}/err.log",
            "--innodb-flush-method=O_DIRECT",
            f"--innodb-buffer-pool-size={pool}",
            "--innodb-buffer-pool-dump-at-shutdown=OFF",
            "--innodb-buffer-pool-load-at-startup=OFF",
            "--skip-name-resolve",
            "--local-infile=1",
        ]  # fmt: skip
    )
    for _ in range(300):
        if (
            subprocess.run(
                ["mariadb-admin", f"--socket={data}/sock", "-uroot", "ping"], capture_output=True
            ).returncode
            == 0
        ):
            return proc
        time.sleep(0.2)
    raise RuntimeError(f"private mariadbd did not start: {(data / 'err.log').read_text()[-500:]}")


def stop(proc: subprocess.Popen, data: Path) -> None:
    subprocess.run(["mariadb-admin", f"--socket={data}/sock", "-uroot", "shutdown"], capture_output=True)
    proc.wait(timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--portfolio", type=Path, required=True)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--port", type=int, default=3317)
    ap.add_argument("--pool", default="64M")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    from bench.results_file import save_run
    from tasks.adapters.db import engine_for, init_db
    from tasks.adapters.extract import read_datasets
    from tasks.adapters.warmup import warm_up
    from tasks.generate.load import load_portfolio
    from tasks.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="bua-warmup-", dir=args.work))
    data = work / "data"
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"],
        check=True, capture_output=True,
    )  # fmt: skip
    url = f"mysql+pymysql://root@127.0.0.1:{args.port}/billing"
    proc = start(data, args.port, args.pool)
    rows = []
    try:
        subprocess.run(
            ["mariadb", f"--socket={data}/sock", "-uroot", "-e", "CREATE DATABASE billing"], check=True
        )
        init_db(url)
        loaded = load_portfolio(url, args.portfolio)
        period = (dt.date(R.year - 1, R.month, 1), R - dt.timedelta(days=1))
        settings = Settings()
        threads = settings.read_threads or settings.max_workers
        for trial in range(args.trials):
            for mode in ("cold", "warm"):
                stop(proc, data)
                engine_for.cache_clear()
                proc = start(data, args.port, args.pool)
                warm_s = None
                if mode == "warm":
                    t = time.perf_counter()
                    warm_up(url, progress=lambda s: None)
                    warm_s = time.perf_counter() - t
                t = time.perf_counter()
                frames = read_datasets(url, R, *period, threads)
                first = time.perf_counter() - t
                t = time.perf_counter()
                read_datasets(url, R, *period, threads)
                hot = time.perf_counter() - t
                rows.append({"trial": trial + 1, "mode": mode, "warm_up_s": warm_s, "first_extract_s": first,
                             "hot_extract_s": hot, "load_avg": os.getloadavg()[0]})  # fmt: skip
                print(rows[-1], flush=True)
    finally:
        stop(proc, data)
        shutil.rmtree(work)
    print(
        f"\n{'trial':>5} {'mode':>5} {'warm-up s':>10} {'1st extract s':>14} {'hot extract s':>14} {'load':>6}"
    )
    for r in rows:
        w = "" if r["warm_up_s"] is None else f"{r['warm_up_s']:.2f}"
        print(
            f"{r['trial']:>5} {r['mode']:>5} {w:>10} {r['first_extract_s']:>14.2f} {r['hot_extract_s']:>14.2f} {r['load_avg']:>6.1f}"
        )
    result = {
        "accounts": int(frames["accounts"]["account_id"].n_unique()),
        "rows_loaded": sum(loaded.values()), "buffer_pool": args.pool, "runs": rows,
    }  # fmt: skip
    print("saved", save_run("warmup", result, ("accounts", "buffer_pool")))


if __name__ == "__main__":
    main()
