"""Plausibility of meter data (issue 17; docs/METHOD.md "Implausible meter data").

A register-day of interval data is **implausible** when one of its values is not a finite number
(``inf``, a stored ``NaN`` — a null is missing data, not a bad value), is negative (unless
allowed), is above the per-interval cap (the class's maximum demand in kW × the interval's
length in hours) or when the day's total is above the per-day cap. Caps depend on the register's
unit (kWh, MJ) and customer class (residential: ``RES``/``RESIDENTIAL``; every other class is a
business), and are Settings (``BUA_PLAUSIBLE_*``). An implausible register-day is left out of the
segment profiles and the scalars, is estimated like a missing day, and is reported as one
``IMPLAUSIBLE_VALUE`` exception naming the register, the day and the value. A basic register's
read pair whose implied daily consumption is above the per-day cap is skipped likewise
(tasks/domain/basic_estimate.py).

The same rules exist twice: on numpy arrays (:func:`flag_rows`, the store read of the profiles
and scalars) and as polars list expressions (:func:`flag_frame`, the unbilled windows' rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from tasks.domain.exceptions import IMPLAUSIBLE_VALUE, exception_rows

RESIDENTIAL = ("RES", "RESIDENTIAL")
NOT_FINITE, NEGATIVE, ABOVE_INTERVAL, ABOVE_DAY = 1, 2, 3, 4
FLAGGED_SCHEMA = {"meter_register_id": pl.Int64, "account_id": pl.Int64, "nmi": pl.Utf8, "suffix": pl.Utf8,
                  "read_date": pl.Date, "reason": pl.Int8, "value": pl.Float64, "cap": pl.Float64,
                  "minutes": pl.Int64, "unit": pl.Utf8}  # fmt: skip


@dataclass(frozen=True)
class Caps:
    """Caps by customer class and unit (defaults: Settings ``plausible_*``)."""

    kw_residential: float = 50.0  # max demand of a residential supply (3-phase 63 A ≈ 43 kW)
    kw_business: float = 2000.0  # a 2 MVA business supply
    day_kwh_residential: float = 600.0
    day_kwh_business: float = 40000.0
    day_mj_residential: float = 5000.0
    day_mj_business: float = 200000.0
    allow_negative: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> Caps:
        return cls(
            kw_residential=settings.plausible_kw_residential,
            kw_business=settings.plausible_kw_business,
            day_kwh_residential=settings.plausible_day_kwh_residential,
            day_kwh_business=settings.plausible_day_kwh_business,
            day_mj_residential=settings.plausible_day_mj_residential,
            day_mj_business=settings.plausible_day_mj_business,
            allow_negative=settings.plausible_allow_negative,
        )

    def exprs(self) -> tuple[pl.Expr, pl.Expr]:
        """(rate cap per hour, cap per day) of a register from its ``customer_class`` and ``unit``:
        kWh per hour is the max demand; MJ has a daily cap only; other units are not capped."""
        res = pl.col("customer_class").str.to_uppercase().is_in(RESIDENTIAL).fill_null(False)
        unit = pl.col("unit").str.to_uppercase()
        day = (
            pl.when(unit == "KWH")
            .then(pl.when(res).then(self.day_kwh_residential).otherwise(self.day_kwh_business))
            .when(unit == "MJ")
            .then(pl.when(res).then(self.day_mj_residential).otherwise(self.day_mj_business))
            .otherwise(float("inf"))
        )
        rate = pl.when(unit == "KWH").then(pl.when(res).then(self.kw_residential).otherwise(self.kw_business))
        return rate.otherwise(day).cast(pl.Float64), day.cast(pl.Float64)


@dataclass(frozen=True)
class RegisterCaps:
    """Per-register caps, aligned with a registers frame's rows."""

    rate: np.ndarray  # unit per hour
    day: np.ndarray  # unit per day
    allow_negative: bool


def register_caps(regs: pl.DataFrame, caps: Caps) -> RegisterCaps:
    rate, day = caps.exprs()
    frame = regs.select(rate.alias("rate"), day.alias("day"))
    return RegisterCaps(frame["rate"].to_numpy(), frame["day"].to_numpy(), caps.allow_negative)


def stored_nan(values: pl.Series) -> np.ndarray:
    """Flat mask of a list[f64] column's child values that are a stored NaN (not a null)."""
    child = values.to_arrow().values
    return np.asarray(child.is_nan().fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def flag_rows(
    values: np.ndarray, nan: np.ndarray | None, rate_cap: np.ndarray, day_cap: np.ndarray, minutes: int,
    allow_negative: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(reason, value, cap) per row of an interval-major (intervals, rows) array (NaN = null
    unless ``nan`` marks it stored): reason 0 = plausible.

    Three passes over rows whose sum is finite (no null, no inf: nearly all); the others again
    with nulls set to 0 and the non-finite values noted."""
    total, vmax, vmin = values.sum(axis=0), values.max(axis=0), values.min(axis=0)
    nonfinite = np.zeros(values.shape[1], dtype=bool)
    first_bad = np.zeros(values.shape[1])
    odd = np.flatnonzero(~np.isfinite(total))
    if len(odd):
        sub = values[:, odd]
        finite = np.isfinite(sub)
        bad = ~finite & ~np.isnan(sub)  # ±inf
        if nan is not None:
            bad |= nan[:, odd]
        v = np.where(finite, sub, 0.0)
        total[odd], vmax[odd], vmin[odd] = v.sum(axis=0), v.max(axis=0), v.min(axis=0)
        nonfinite[odd] = bad.any(axis=0)
        first_bad[odd] = sub[bad.argmax(axis=0), np.arange(len(odd))]
    interval_cap = rate_cap * (minutes / 60)
    negative = (vmin < 0) & (not allow_negative)
    above = vmax > interval_cap
    over_day = total > day_cap
    reason = np.select(
        [nonfinite, negative, above, over_day], [NOT_FINITE, NEGATIVE, ABOVE_INTERVAL, ABOVE_DAY], 0
    )
    value = np.select([nonfinite, negative, above], [first_bad, vmin, vmax], total)
    cap = np.select([above], [interval_cap], day_cap)
    return reason.astype(np.int8), value, cap


def flag_frame(data: pl.DataFrame, regs: pl.DataFrame, caps: Caps) -> pl.DataFrame:
    """Implausible register-days (``FLAGGED_SCHEMA``) of store rows ``data`` (nmi, suffix,
    read_date, data_minutes, values) of the registers ``regs`` (one row per nmi, suffix).

    A row's largest, smallest and total value are over its finite values (a null is missing data).
    Nearly every row has no null, ``inf`` or stored ``NaN``: its list sum is finite and its finite
    values are all its values, so the list's own max, min and sum are those figures (the sum of the
    same values, which polars may add in another order than over a filtered copy: a day total can
    differ in its last bits, the same on every run). Only the other rows filter their elements to
    the finite ones (``list.eval``, several times dearer). tests/tasks/test_plausibility.py checks
    both ways against filtering every row on random rows."""
    rate, day = caps.exprs()
    keyed = regs.select(
        "meter_register_id", "account_id", "nmi", "suffix", "unit", rate.alias("_rate"), day.alias("_day")
    ).unique(["nmi", "suffix"], keep="last", maintain_order=True)
    v, el = pl.col("values"), pl.element()
    rows = (
        data.join(keyed, on=["nmi", "suffix"], how="inner", maintain_order="left")
        .with_columns(
            minutes=pl.col("data_minutes").cast(pl.Int64),
            _s=v.list.sum(),
            _null=v.list.eval(el.is_null()).list.any(),
        )
        .with_row_index("_i")
    )
    # no null and a finite sum: every value finite (a null list has no values: nothing to flag)
    plain = (pl.col("_s").is_finite() & ~pl.col("_null")).fill_null(True)
    fast = rows.filter(plain).with_columns(
        _nf=pl.lit(False),
        _bad=pl.lit(None, pl.Float64),
        _max=v.list.max().fill_null(0.0),
        _min=v.list.min().fill_null(0.0),
        _sum=pl.col("_s").fill_null(0.0),
    )
    fin = v.list.eval(el.filter(el.is_finite()))
    odd = rows.filter(~plain).with_columns(
        _nf=v.list.eval(el.is_infinite() | el.is_nan()).list.any().fill_null(False),
        _bad=v.list.eval(el.filter(el.is_infinite() | el.is_nan())).list.first(),
        _max=fin.list.max().fill_null(0.0),
        _min=fin.list.min().fill_null(0.0),
        _sum=fin.list.sum().fill_null(0.0),
    )
    return pl.concat([_flagged(fast, caps), _flagged(odd, caps)]).sort("_i").drop("_i")


def _flagged(rows: pl.DataFrame, caps: Caps) -> pl.DataFrame:
    """The implausible rows of :func:`flag_frame`'s rows (with _nf, _bad, _max, _min, _sum) and _i."""
    negative = (pl.col("_min") < 0) & pl.lit(not caps.allow_negative)
    icap = pl.col("_rate") * pl.col("minutes") / 60.0
    above = pl.col("_max") > icap
    return (
        rows.with_columns(
            reason=pl.when("_nf")
            .then(NOT_FINITE)
            .when(negative)
            .then(NEGATIVE)
            .when(above)
            .then(ABOVE_INTERVAL)
            .when(pl.col("_sum") > pl.col("_day"))
            .then(ABOVE_DAY)
            .otherwise(0),
            value=pl.when("_nf")
            .then("_bad")
            .when(negative)
            .then("_min")
            .when(above)
            .then("_max")
            .otherwise("_sum"),
            cap=pl.when(above & ~pl.col("_nf") & ~negative).then(icap).otherwise("_day"),
        )  # fmt: skip
        .filter(pl.col("reason") > 0)
        .select("_i", *FLAGGED_SCHEMA)
        .cast({"_i": pl.UInt32, **FLAGGED_SCHEMA})  # type: ignore[arg-type]
    )


def flagged_rows(regs: pl.DataFrame, parts: list[tuple[np.ndarray, ...]]) -> pl.DataFrame:
    """``FLAGGED_SCHEMA`` frame of :func:`flag_rows` results (register row in ``regs``, day since
    1970, reason, value, cap, minutes), sorted by register and day."""
    if not parts:
        return pl.DataFrame(schema=FLAGGED_SCHEMA)
    reg, day, reason, value, cap, minutes = (np.concatenate(c) for c in zip(*parts, strict=True))
    keys = regs.select("meter_register_id", "account_id", "nmi", "suffix", "unit")[reg]
    return (
        keys.with_columns(
            read_date=pl.Series(day.astype("datetime64[D]")),
            reason=pl.Series(reason),
            value=pl.Series(value),
            cap=pl.Series(cap),
            minutes=pl.Series(minutes),
        )
        .select(list(FLAGGED_SCHEMA))
        .cast(FLAGGED_SCHEMA)  # type: ignore[arg-type]
        .sort("meter_register_id", "read_date")
    )


def _num(col: str) -> pl.Expr:
    """A value as text: up to 3 decimals, no exponent (inf and NaN as such)."""
    c = pl.col(col)
    return (
        pl.when(c.is_finite())
        .then(c.round(3).cast(pl.Decimal(38, 3)).cast(pl.Utf8))
        .otherwise(c.cast(pl.Utf8))
    )


def implausible_exceptions(flagged: pl.DataFrame) -> pl.DataFrame:
    """One IMPLAUSIBLE_VALUE exception per flagged register-day."""
    unit = pl.col("unit").str.replace("KWH", "kWh")
    what = (
        pl.when(pl.col("reason") == NOT_FINITE)
        .then(pl.format("interval value {} is not a finite number", _num("value")))
        .when(pl.col("reason") == NEGATIVE)
        .then(pl.format("interval value {} {} is negative", _num("value"), unit))
        .when(pl.col("reason") == ABOVE_INTERVAL)
        .then(pl.format("interval value {} {} is above the cap of {} {} per {} minutes", _num("value"), unit,
                        _num("cap"), unit, "minutes"))
        .otherwise(pl.format("day total {} {} is above the cap of {} {} per day", _num("value"), unit,
                             _num("cap"), unit))
    )  # fmt: skip
    detail = pl.format(
        "register {}/{} on {}: {}; the day is left out of profiles and scalars and estimated",
        "nmi", "suffix", "read_date", what,
    )  # fmt: skip
    return exception_rows(flagged, IMPLAUSIBLE_VALUE, detail)
