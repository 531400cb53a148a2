"""Compare two folders of bench/accuracy.py results (weather method), one row per portfolio and pooled.

python3 bench/results/issue15-loo/compare.py BASE_DIR RULE_DIR NAME ...   # reads DIR/NAME.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from accuracy_table import pooled  # noqa: E402

GROUPS = ["portfolio", "meter=BASIC", "ELECTRICITY/BASIC", "GAS/BASIC"]


def _load(folder: Path, name: str) -> dict | None:
    p = folder / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def _cells(results: list[dict]) -> list[str]:
    out = []
    for g in GROUPS:
        p = pooled(results, g, "weather")
        out.append("—" if p is None else (f"{p['nmbe']:+.2f}%" if g == "portfolio" else f"{p['cv']:.2f}%"))
    return out


def _row(label: str, base: list[dict | None], rule: list[dict | None]) -> None:
    if not base or not rule or None in base or None in rule:
        return
    a, b = _cells(base), _cells(rule)  # type: ignore[arg-type]
    print(f"| {label} | " + " | ".join(f"{x} → {y}" for x, y in zip(a, b, strict=True)) + " |")


def main() -> None:
    base, rule, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    print("| portfolio | NMBE | basic CV | elec basic | gas basic |")
    print("|---|---:|---:|---:|---:|")
    for n in names:
        _row(n, [_load(base, n)], [_load(rule, n)])
    for label, grp in (("a–e", "abcde"), ("a–i", "abcdefghi"), ("a–j", "abcdefghij")):
        ns = [f"holdout-{c}" for c in grp]
        _row(label, [_load(base, n) for n in ns], [_load(rule, n) for n in ns])
    dev = ["default", "dev", "drift", "robust", "season"]
    _row("dev five", [_load(base, n) for n in dev], [_load(rule, n) for n in dev])


if __name__ == "__main__":
    main()
