"""Pool bench/accuracy.py results of several portfolios into one table (docs/ACCURACY.md).

    .venv/bin/python bench/accuracy_table.py bench/results/accuracy-*.json [--groups portfolio,meter=BASIC,...]

Metrics are recomputed from each result's sums over account-months (NMBE = Σ err / Σ true, CV(RMSE)
= √(Σ err² / n) / (Σ true / n), MAPE = Σ |err| / true / n over account-months with true ≥ 1 kWh), so
the pooled figure is the figure of all the portfolios' account-months together. Prints a markdown
table: one row per group, columns per method (scalar, seasonal without weather, weather, naive).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

METHODS = ("scalar", "seasonal", "weather", "naive")
DEFAULT_GROUPS = (
    "portfolio", "fuel=ELECTRICITY", "fuel=GAS", "meter=INTERVAL", "meter=BASIC", "ELECTRICITY/BASIC",
    "ELECTRICITY/BASIC w/o top 1% err", "GAS/BASIC", "journal=RESIDENTIAL", "journal=SME", "journal=C&I",
    "ELECTRICITY/BASIC/RESIDENTIAL", "ELECTRICITY/BASIC/SME", "ELECTRICITY/BASIC/C&I", "GAS/BASIC/RESIDENTIAL",
    "GAS/BASIC/SME", "GAS/BASIC/C&I",
)  # fmt: skip


def pooled(results: list[dict], group: str, method: str) -> dict[str, float] | None:
    acc = {"n": 0, "true": 0.0, "sum_err": 0.0, "sum_sq_err": 0.0, "n_pos": 0, "sum_ape": 0.0}
    for r in results:
        row = {x["group"]: x for x in r["rows"]}.get(group, {}).get(method)
        if not row or "sum_err" not in row:
            continue
        for k in acc:
            acc[k] += row[k]
    if acc["n"] == 0 or acc["true"] == 0:
        return None
    mean_t = acc["true"] / acc["n"]
    return {
        "n": acc["n"],
        "nmbe": 100 * acc["sum_err"] / acc["true"],
        "cv": 100 * math.sqrt(acc["sum_sq_err"] / acc["n"]) / mean_t,
        "mape": 100 * acc["sum_ape"] / acc["n_pos"] if acc["n_pos"] else math.nan,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--groups", default=",".join(DEFAULT_GROUPS))
    a = ap.parse_args()
    results = [json.loads(p.read_text()) for p in a.results]
    head = "| group | account-months | " + " | ".join(f"{m} NMBE / CV / MAPE" for m in METHODS) + " |"
    print(head)
    print("|---|---:|" + "---:|" * len(METHODS))
    for g in a.groups.split(","):
        cells, n = [], None
        for m in METHODS:
            p = pooled(results, g, m)
            if p is None:
                cells.append("")
                continue
            n = p["n"]
            cells.append(f"{p['nmbe']:+.2f}% / {p['cv']:.2f}% / {p['mape']:.2f}%")
        if n is not None:
            print(f"| {g} | {n:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
