"""The conformance oracle: nemreader 1.0.x's readings of NEM12/NEM13 files, written to parquet.

Runs in the oracle's own environment (Python >= 3.12, tests/oracle/requirements.txt), never in
bua's: ``.venv-oracle/bin/python tests/oracle/nemreader1.py JOBS.json``. JOBS.json is a list of
``{"path": FILE, "out": PARQUET}``; for each file the readings nemreader returns (``nem_data()``,
unsplit, every NMI and suffix) are written to ``out`` — nmi, suffix, t_start, t_end, value,
quality (nemreader's quality_method: flag and method, e.g. "E24"), val_start, val_end (NEM13
only) — or, when nemreader raises, the exception's type and message to ``out + ".error"``. Read
by tests/ingest/oracle.py.
"""

from __future__ import annotations

import json
import logging
import sys

import polars as pl
from nemreader import NEMFile

SCHEMA = {
    "nmi": pl.String,
    "suffix": pl.String,
    "t_start": pl.Datetime("us"),
    "t_end": pl.Datetime("us"),
    "value": pl.Float64,
    "quality": pl.String,
    "val_start": pl.Float64,
    "val_end": pl.Float64,
}


def readings(path: str) -> pl.DataFrame:
    nd = NEMFile(path).nem_data()
    rows = [
        (nmi, sfx, r.t_start, r.t_end, r.read_value, r.quality_method, r.val_start, r.val_end)
        for nmi, by_suffix in nd.readings.items()
        for sfx, reads in by_suffix.items()
        for r in reads
    ]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def main(jobs_path: str) -> None:
    logging.getLogger("nemreader").setLevel(logging.CRITICAL)
    with open(jobs_path) as fh:
        jobs = json.load(fh)
    for job in jobs:
        try:
            readings(job["path"]).write_parquet(job["out"])
        except Exception as exc:  # the oracle's answer for this file: it refused it
            with open(job["out"] + ".error", "w") as fh:
                fh.write(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main(sys.argv[1])
