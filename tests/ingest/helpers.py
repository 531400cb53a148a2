"""Shared helpers of the ingest tests: the example files, their members, nemreader's view."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import polars as pl

from tests.conftest import MDFF

NEM12_FILES = sorted(
    [
        *MDFF.glob("nem12/*"),
        *MDFF.glob("unzipped/*NEM12*"),
        MDFF / "unzipped" / "Example_WesternPower.csv",
        *MDFF.glob("*.zip"),
    ],
    key=lambda p: str(p),
)
NEM13_FILES = sorted([*MDFF.glob("nem13/*"), *MDFF.glob("unzipped/*NEM13*")], key=lambda p: str(p))
INVALID = MDFF / "invalid"


def member_bytes(path: Path) -> tuple[str, bytes]:
    """(name, bytes) of a plain file or of the single member of an example zip."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            (name,) = z.namelist()
            return f"{path.name}!{name}", z.read(name)
    return path.name, path.read_bytes()


def nemreader_intervals(path: Path) -> pl.DataFrame:
    """nemreader 0.9.2's readings: nmi, suffix, t_start, value, quality (quality flag only)."""
    from nemreader import NEMFile

    logging.getLogger("nemreader").setLevel(logging.CRITICAL)
    df = NEMFile(str(path)).get_data_frame()
    out = pl.from_pandas(df[["nmi", "suffix", "t_start", "value", "quality"]])
    return out.with_columns(
        pl.col("t_start").cast(pl.Datetime("us")), pl.col("quality").str.slice(0, 1)
    ).sort("nmi", "suffix", "t_start")


def nem13_reads(path: Path) -> pl.DataFrame:
    """bua's NEM13 reads of an example file, named as the conformance tests compare them: nmi,
    suffix, t_start, t_end, value, val_start, val_end, quality."""
    from tasks.adapters.nem12 import decode
    from tasks.adapters.nem13 import parse_nem13

    name, data = member_bytes(path)
    return parse_nem13(decode(data), name).select(
        "nmi",
        "suffix",
        pl.col("previous_datetime").alias("t_start"),
        pl.col("current_datetime").alias("t_end"),
        pl.col("quantity").alias("value"),
        pl.col("previous_read").alias("val_start"),
        pl.col("current_read").alias("val_end"),
        pl.col("current_quality").alias("quality"),
    )
