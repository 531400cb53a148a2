"""The macro profile of a shard's basic registers keyed by macro key, and its sums over read pairs
and other day ranges (tasks.domain.basic_estimate)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from tasks.domain.basic_pairs import basic_registers
from tasks.domain.profiles import one_row_per_register, parent_key, segment_key

_SUMMED = ("daily", "w", "wh", "b")


@dataclass(frozen=True)
class KeyedMacro:
    """The macro profile of a shard's basic registers without one row per register and day:
    ``keyed`` (macro_key, read_date, daily, w, wh, b and their running sums cum_*, sorted by key
    and day) and ``regkey`` (meter_register_id → macro_key). Range sums, day values and means
    are taken per key and reach the registers by a join on a few hundred rows."""

    keyed: pl.DataFrame
    regkey: pl.DataFrame

    def per_register(self) -> pl.DataFrame:
        """One row per register and macro day (what :func:`register_macro` returns)."""
        return (
            self.regkey.join(self.keyed, on="macro_key")
            .drop("macro_key")
            .sort("meter_register_id", "read_date")
        )


def register_macro(registers: pl.DataFrame, macro: pl.DataFrame, gas_macro: pl.DataFrame) -> pl.DataFrame:
    """Per basic register and macro day: daily (M), w (weather part) and their running sums."""
    return keyed_macro(registers, macro, gas_macro).per_register()


def keyed_macro(registers: pl.DataFrame, macro: pl.DataFrame, gas_macro: pl.DataFrame) -> KeyedMacro:
    """The basic registers' macro profile per macro key (segment, else parent, else
    ``*|J|CONSUMPTION``; gas: ``gas:J``) with running sums, and each register's key."""
    regs = one_row_per_register(basic_registers(registers)).with_columns(segment_key(False), parent_key())
    have = set(macro["segment"].unique().to_list())
    fallback = pl.concat_str([pl.lit("*"), pl.col("jurisdiction"), pl.lit("CONSUMPTION")], separator="|")
    regs = regs.with_columns(
        macro_key=pl.when(pl.col("segment").is_in(list(have)))
        .then(pl.col("segment"))
        .when(pl.col("parent").is_in(list(have)))
        .then(pl.col("parent"))
        .otherwise(fallback)
    )
    is_gas = pl.col("service_type") == "GAS"
    # frames from before the components were added carry no wh / b: no cold-season part, flat base
    macro, gas_macro = (
        m.with_columns(
            wh=pl.col("wh") if "wh" in m.columns else pl.lit(0.0),
            b=pl.col("b") if "b" in m.columns else pl.lit(1.0),
        )
        for m in (macro, gas_macro)
    )
    # running sums per macro key (a few dozen keys), then one row per register and day by a join
    cols = ["read_date", "daily", "w", "wh", "b"]
    keyed = (
        pl.concat(
            [
                macro.select(pl.col("segment").alias("macro_key"), *cols),
                gas_macro.select(("gas:" + pl.col("jurisdiction")).alias("macro_key"), *cols),
            ]
        )
        .sort("macro_key", "read_date")
        .with_columns([pl.col(c).cum_sum().over("macro_key").alias(f"cum_{c}") for c in _SUMMED])
    )
    regs = regs.with_columns(
        macro_key=pl.when(is_gas).then("gas:" + pl.col("jurisdiction")).otherwise(pl.col("macro_key"))
    )
    return KeyedMacro(keyed, regs.select("meter_register_id", "macro_key").sort("meter_register_id"))


_NAMES = {"daily": "sum_m", "w": "sum_w", "wh": "sum_wh", "b": "sum_b"}


def _range_sums(
    frame: pl.DataFrame, first: str, last: str, rmacro: pl.DataFrame | KeyedMacro
) -> pl.DataFrame:
    """Add sum_m, sum_w, sum_wh, sum_b over the days first … last (inclusive) of each row's
    register; null when the range is not inside the register's macro range.

    rmacro (register_macro) is sorted by register and day, one row per day: when every register's
    days are contiguous, the running sums are gathered by row position (numpy) instead of two
    joins on (register, day). ``rmacro`` may be a :class:`KeyedMacro`: the rows are then those of
    each register's macro key."""
    if isinstance(rmacro, KeyedMacro):
        frame = frame.join(rmacro.regkey, on="meter_register_id", how="left", maintain_order="left")
        out = _range_sums(frame.rename({"meter_register_id": "_reg", "macro_key": "meter_register_id"}),
                          first, last, rmacro.keyed.rename({"macro_key": "meter_register_id"}))  # fmt: skip
        return out.rename({"meter_register_id": "macro_key", "_reg": "meter_register_id"}).drop("macro_key")
    meta = (
        rmacro.with_row_index("_row")
        .group_by("meter_register_id")
        .agg(
            _off=pl.col("_row").min(),
            _n=pl.len(),
            _d0=pl.col("read_date").min(),
            _d1=pl.col("read_date").max(),
        )
    )
    contiguous = meta.height == 0 or bool(
        meta.select(((pl.col("_d1") - pl.col("_d0")).dt.total_days() + 1 == pl.col("_n")).all()).item()
    )
    if not contiguous:
        return _range_sums_join(frame, first, last, rmacro)
    pos = frame.join(meta, on="meter_register_id", how="left", maintain_order="left").select(
        (pl.col(first) - pl.col("_d0")).dt.total_days().alias("_a"),
        (pl.col(last) - pl.col("_d0")).dt.total_days().alias("_z"),
        "_off",
        "_n",
    )
    a = pos["_a"].to_numpy(allow_copy=True).astype(np.float64)
    z = pos["_z"].to_numpy(allow_copy=True).astype(np.float64)
    off = pos["_off"].to_numpy(allow_copy=True).astype(np.float64)
    n = pos["_n"].to_numpy(allow_copy=True).astype(np.float64)
    ok = (a >= 0) & (z >= 0) & (a < n) & (z < n) & np.isfinite(off)  # NaN (null) compares False
    lo = np.where(ok, off + np.nan_to_num(a), 0).astype(np.int64)
    hi = np.where(ok, off + np.nan_to_num(z), 0).astype(np.int64)
    sums = {}
    for c in _SUMMED:
        cum = rmacro[f"cum_{c}"].to_numpy(allow_copy=True).astype(np.float64)
        val = rmacro[c].to_numpy(allow_copy=True).astype(np.float64)
        if cum.size == 0:
            sums[_NAMES[c]] = np.full(frame.height, np.nan)
            continue
        sums[_NAMES[c]] = np.where(ok, cum[hi] - cum[lo] + val[lo], np.nan)
    return frame.with_columns([pl.Series(k, v).fill_nan(None) for k, v in sums.items()])


def _range_sums_join(frame: pl.DataFrame, first: str, last: str, rmacro: pl.DataFrame) -> pl.DataFrame:
    """_range_sums by joins on (register, day) (registers whose macro days have gaps)."""
    cum = rmacro.select("meter_register_id", "read_date", *_SUMMED, *[f"cum_{c}" for c in _SUMMED])
    hi = cum.select(
        "meter_register_id",
        pl.col("read_date").alias(last),
        *[pl.col(f"cum_{c}").alias(f"_hi_{c}") for c in _SUMMED],
    )
    lo = cum.select(
        "meter_register_id",
        pl.col("read_date").alias(first),
        *[(pl.col(f"cum_{c}") - pl.col(c)).alias(f"_lo_{c}") for c in _SUMMED],
    )
    out = frame.join(hi, on=["meter_register_id", last], how="left").join(
        lo, on=["meter_register_id", first], how="left"
    )
    names = {"daily": "sum_m", "w": "sum_w", "wh": "sum_wh", "b": "sum_b"}
    return out.with_columns(
        [(pl.col(f"_hi_{c}") - pl.col(f"_lo_{c}")).alias(names[c]) for c in _SUMMED]
    ).drop([f"_hi_{c}" for c in _SUMMED] + [f"_lo_{c}" for c in _SUMMED])


def _with_pair_sums(pairs: pl.DataFrame, rmacro: pl.DataFrame | KeyedMacro) -> pl.DataFrame:
    """Σ M, Σ W and Σ Wh over each pair's days start + 1 … end (null when the pair is not inside the
    macro range)."""
    out = _range_sums(pairs.with_columns(_s=pl.col("start") + pl.duration(days=1)), "_s", "end", rmacro)
    return out.drop("_s")
