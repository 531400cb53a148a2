"""Where the bench scripts keep their results: ``bench/results/{name}.json`` = ``{"runs": [...]}``."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def save_run(name: str, result: dict, keys: tuple[str, ...]) -> Path:
    """Add ``result`` to ``bench/results/{name}.json``, replacing the earlier run with the same values
    of ``keys``; runs ordered by accounts. Returns the file."""
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    same = tuple(result[k] for k in keys)
    runs = [r for r in previous.get("runs", []) if tuple(r.get(k) for k in keys) != same]
    out.write_text(
        json.dumps({"runs": sorted([*runs, result], key=lambda r: r["accounts"])}, indent=2) + "\n"
    )
    return out
