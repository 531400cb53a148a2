"""Peak memory of ``generate`` alone, phase by phase (no meter store, no NEM12: the O(accounts) part).

    PYTHONPATH=. nice -n 10 .venv/bin/python bench/generate_rss.py --accounts 50000 --out /scratch/g

Prints each progress message with the process's RSS and its peak so far (VmHWM), then wall, CPU
(user + system) and peak RSS. Seed 4242 × 13 months, as bench/build_portfolio.py. Run from a
checkout with ``PYTHONPATH`` set to it (the venv's editable install points at /work/main).
"""

from __future__ import annotations

import argparse
import re
import resource
import time

from tasks.generate import generate


def _mb(key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+)", open("/proc/self/status").read()).group(1)) // 1024  # type: ignore[union-attr]


def _log(message: str) -> None:
    if "interval batches" in message and "done" not in message:
        return  # every 20 batches: too many
    print(f"{message}  | rss {_mb('VmRSS')} MB, peak so far {_mb('VmHWM')} MB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    t = time.perf_counter()
    generate(a.out, accounts=a.accounts, seed=4242, months=13, nem12=False, workers=a.workers, log=_log)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"accounts {a.accounts}: wall {time.perf_counter() - t:.1f} s, cpu {ru.ru_utime + ru.ru_stime:.1f} s, "
        f"peak {ru.ru_maxrss // 1024} MB"
    )


if __name__ == "__main__":
    main()
