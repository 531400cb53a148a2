"""Energy charges of rating (SPEC §4.4, :mod:`tasks.domain.rating`): register-day usage summed per
time class (time-of-use intervals classified in local clock time), the rate class of each row, and
the split into blocks (the first block's threshold is the month's unbilled days × the daily limit,
consumed in day order) priced at the block and remainder rates; NO_RATE where an item has no rate.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tasks.domain.calendar import KEYS, time_class_codes
from tasks.domain.discounts import join_account_days
from tasks.domain.exceptions import NO_RATE, combine, exception_rows

ITEM_OF_STREAM = {"CONSUMPTION": "USAGE", "CONTROLLED_LOAD": "CONTROLLED_LOAD", "GENERATION": "FEED_IN"}
# the columns of usage per time class before quantity_actual is derived
CLASS_COLUMNS = [
    "account_id", "day", "year_mnth", "plan_id", "item_type", "time_class", "unit", "quantity",
    "quantity_estimated",
]  # fmt: skip


def no_rate(df: pl.DataFrame) -> pl.DataFrame:
    """One NO_RATE row per (account, plan, item, time class) of unrated rows, with their days."""
    if df.height == 0:
        return combine([])
    tc = pl.col("time_class") if "time_class" in df.columns else pl.lit("ANYTIME")
    g = (
        df.with_columns(tc.fill_null("ANYTIME").alias("_tc"))
        .group_by("account_id", "plan_id", "item_type", "_tc")
        .agg(
            pl.col("day").n_unique().alias("_days"),
            pl.col("day").min().alias("_first"),
            pl.col("day").max().alias("_last"),
        )
    )
    return exception_rows(
        g,
        NO_RATE,
        pl.format(
            "plan {} has no {} rate for time class {} on {} day(s) {}..{}; not rated",
            "plan_id",
            "item_type",
            "_tc",
            "_days",
            "_first",
            "_last",
        ),  # fmt: skip
    )


def _flat_lists(usage: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The value lists as flat arrays: values and estimated flags (nulls as 0), row lengths and offsets."""
    values = usage["values"]
    lengths = values.list.len().fill_null(0).cast(pl.Int64).to_numpy()
    flat = values.explode(empty_as_null=False, keep_nulls=False).fill_null(0.0).cast(pl.Float64).to_numpy()
    est = usage["estimated"].explode(empty_as_null=False, keep_nulls=False)
    est = est.cast(pl.Float64).fill_null(0.0).to_numpy()
    if flat.shape != est.shape or flat.shape[0] != lengths.sum():
        bad = usage.filter(
            pl.col("values").list.len().fill_null(0) != pl.col("estimated").list.len().fill_null(0)
        ).row(0, named=True)
        raise ValueError(
            f"usage of register {bad['meter_register_id']} on {bad['read_date']}: "
            "the values and estimated lists differ in length"
        )
    offsets = np.zeros(lengths.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return flat, est, lengths, offsets


def register_day_sums(usage: pl.DataFrame) -> pl.DataFrame:
    """quantity and quantity_estimated of every usage row (row order): its values and estimated values summed."""
    return usage.select(
        pl.col("values").list.sum().alias("quantity"),
        (pl.col("values") * pl.col("estimated").cast(pl.List(pl.Float64)))
        .list.sum()
        .alias("quantity_estimated"),
    )


def usage_by_class(
    usage: pl.DataFrame,
    days: pl.DataFrame,
    plans: pl.DataFrame,
    windows: pl.DataFrame,
    tou_windows: pl.DataFrame,
    row_sums: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Register-day usage summed per time class: account_id, day, year_mnth, plan_id, item_type,
    time_class, unit, quantity, quantity_actual, quantity_estimated.

    The value lists are summed once, up front; joins work on narrow rows (a row number stands for
    the lists). For time-of-use register-days the lists are flattened into numpy arrays, each
    interval looks up its time class in the per-key class codes
    (:func:`tasks.domain.calendar.time_class_codes`) and the values are summed per (register-day, class)
    with ``bincount``, so no list is copied, masked or exploded into a frame.
    """
    sums = register_day_sums(usage) if row_sums is None else row_sums
    meta = _register_day_meta(usage, sums, days, plans)
    plain = (
        meta.filter(~pl.col("_tou"))
        .with_columns(
            pl.when(pl.col("interval_minutes") < 1440)
            .then(pl.lit("ANYTIME"))
            .otherwise(pl.col("register_time_class"))
            .alias("time_class")
        )
        .select(CLASS_COLUMNS)
    )
    parts = [plain]
    tou = (  # the scheme, holiday rule and local clock only for the time-of-use register-days
        meta.filter(pl.col("_tou"))
        .join(plans.select("plan_id", "tou_scheme_id", "holidays_as_weekend"), on="plan_id", how="left")
        .join(windows.select("account_id", "jurisdiction", "timezone"), on="account_id", how="left")
        .with_columns(pl.col("day").alias("read_date"), pl.col("holidays_as_weekend").fill_null(True))
    )
    if tou.height:
        parts.append(_time_of_use_rows(usage, tou, tou_windows))
    return _sum_duplicates(
        pl.concat(parts), ["account_id", "day", "year_mnth", "plan_id", "item_type", "time_class", "unit"],
        ["quantity", "quantity_estimated"],
    ).with_columns((pl.col("quantity") - pl.col("quantity_estimated")).alias("quantity_actual"))  # fmt: skip


def _register_day_meta(
    usage: pl.DataFrame, sums: pl.DataFrame, days: pl.DataFrame, plans: pl.DataFrame
) -> pl.DataFrame:
    """Narrow register-day rows (row number _r for the value lists) on their account-day and plan, with
    their item and whether they are split by time of use (_tou)."""
    tou_plans = plans.filter(pl.col("tou_scheme_id").is_not_null())["plan_id"].implode()
    return (
        usage.select(
            "account_id",
            pl.col("read_date").alias("day"),
            "stream",
            "register_time_class",
            "unit",
            "interval_minutes",
        )
        .with_columns(sums["quantity"], sums["quantity_estimated"])  # row i of sums = row i of usage
        .with_row_index("_r")
        .pipe(join_account_days, days)
        .with_columns(
            pl.col("stream").replace_strict(ITEM_OF_STREAM, default=None).alias("item_type"),
            (pl.col("plan_id").is_in(tou_plans) & (pl.col("interval_minutes") < 1440)).alias("_tou"),
        )
    )


def _time_of_use_rows(usage: pl.DataFrame, tou: pl.DataFrame, tou_windows: pl.DataFrame) -> pl.DataFrame:
    """The time-of-use register-days' values summed per (register-day, time class) with ``bincount``."""
    cols = CLASS_COLUMNS
    keys, names, codes = time_class_codes(tou.select(KEYS), tou_windows)
    # register-days whose key has no classified interval (no time zone) are not rated, as before
    t = tou.join(keys, on=KEYS, how="inner").filter(pl.col("_len") > 0)
    r = t["_r"].cast(pl.Int64).to_numpy()
    # only the time-of-use rows' lists are flattened (row i of t = row i of the flat arrays)
    flat, est, lens, offsets = _flat_lists(
        usage.select("meter_register_id", "read_date", "values", "estimated")[r]
    )
    key_len = t["_len"].to_numpy()
    if (lens != key_len).any():
        bad = t.with_columns(pl.Series("_n", lens)).filter(pl.col("_n") != pl.col("_len")).row(0, named=True)
        raise ValueError(
            f"usage of account {bad['account_id']} on {bad['day']}: {bad['_n']} values, "
            f"but a day of {bad['interval_minutes']}-minute intervals has {bad['_len']}"
        )
    k = len(names)
    size = t.height * k
    # every value in flat order (row by row, interval by interval): its row's group base row × k plus
    # the class code of its interval (codes[_start + interval]); summed with bincount in that order
    rows = np.arange(t.height, dtype=np.int64)
    interval = np.arange(flat.shape[0], dtype=np.int64) + np.repeat(
        t["_start"].to_numpy() - offsets[:-1], lens
    )
    group = np.repeat(rows * k, lens) + codes[interval]
    q = np.bincount(group, weights=flat, minlength=size)
    qe = np.bincount(group, weights=flat * est, minlength=size)
    # a (register-day, class) row only where the class occurs in the key's day (a row has all of its
    # key's intervals): the classes present per key, looked up per row
    n_keys = keys.height
    key_of_code = np.repeat(np.arange(n_keys, dtype=np.int64), keys["_len"].to_numpy())
    key_has = np.bincount(key_of_code * k + codes, minlength=n_keys * k) > 0
    present = np.flatnonzero(key_has.reshape(n_keys, k)[t["_key"].cast(pl.Int64).to_numpy()].ravel())
    masked = t.select(c for c in cols if c not in ("time_class", "quantity", "quantity_estimated"))[
        present // k
    ].with_columns(
        pl.Series("time_class", names, dtype=pl.String).gather(present % k),
        pl.Series("quantity", q[present]),
        pl.Series("quantity_estimated", qe[present]),
    )
    return masked.select(cols)


def _sum_duplicates(df: pl.DataFrame, keys: list[str], values: list[str]) -> pl.DataFrame:
    """``keys`` + the ``values`` summed per distinct ``keys``; rows already unique by keys pass as they are.

    Register-day rows are nearly always unique by (account, day, item, class, unit) — a second
    register of the same stream is rare — so the group-by (hashing string keys over every row) is
    only run when some key occurs twice. The sum of one row is the row, so the values are the same.
    Test: as many distinct key hashes as rows means no key occurs twice (equal keys hash equal; a
    hash collision of two different keys only costs the group-by).
    """
    # the hashes as a Series, then n_unique: ~25% less CPU than n_unique inside the select
    if df.height == 0 or df.select(pl.struct(keys).hash()).to_series().n_unique() == df.height:
        return df.select(*keys, *values)
    return df.group_by(keys).agg(pl.col(values).sum())


def _match_rate_class(energy: pl.DataFrame, rates: pl.DataFrame) -> pl.DataFrame:
    """rate_class = the usage's time class when the plan prices it, else the item's only class."""
    keys = rates.select("plan_id", "day", "item_type", "time_class").unique()
    only = (
        keys.group_by("plan_id", "day", "item_type")
        .agg(pl.col("time_class").n_unique().alias("_n"), pl.col("time_class").first().alias("_only"))
        .filter(pl.col("_n") == 1)
        .drop("_n")
    )
    return (
        energy.join(
            keys.with_columns(pl.col("time_class").alias("_exact")),
            on=["plan_id", "day", "item_type", "time_class"],
            how="left",
        )
        .join(only, on=["plan_id", "day", "item_type"], how="left")
        .with_columns(pl.coalesce("_exact", "_only").alias("rate_class"))
        .drop("_exact", "_only")
    )


def energy_rows(
    energy: pl.DataFrame, days: pl.DataFrame, rates: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Day-level energy rows split into blocks and priced; (rows, NO_RATE exceptions).

    The rate class is the usage's time class when the plan prices it, else the item's only class
    (:func:`_match_rate_class`); rows are then summed per rate class. Done in the order that hashes
    fewest rows: one join brings the rates of every row priced in its own class (nearly all), the
    item's only class is looked up for the rest, and rows are summed (and their rates joined
    again) only for the accounts with a row rated in another class (FEED_IN PEAK … rated ANYTIME)
    — the rows of every other account are already unique per rate class.
    """
    e, missing = _rated_per_class(energy, rates)
    # threshold and usage before the day: only accounts with a block-limited row need them (the
    # threshold and the running sum of an account's other rows are never read)
    blocked_accounts = e.filter(pl.col("block_limit").is_not_null())["account_id"].unique()
    e_block = _with_block_split(
        e.filter(pl.col("account_id").is_in(blocked_accounts.implode())), blocked_accounts, days, rates
    )
    e_rest = e.filter(~pl.col("account_id").is_in(blocked_accounts.implode()))
    sign = pl.when(pl.col("item_type") == "FEED_IN").then(-1.0).otherwise(1.0)
    # first block (or the whole quantity), then the rest over the first block: rows of accounts
    # without a block limit are never blocked (quantity as it is, the item, the remainder rate)
    rows = pl.concat(
        [
            _part(e_block, pl.col("_q1"), pl.when(_BLOCKED).then(pl.col("item_type") + "_BLOCK_1").otherwise(pl.col("item_type")),
                  pl.when(_BLOCKED).then(pl.col("rate_block")).otherwise(pl.col("rate_rest"))),
            _part(e_rest, pl.col("quantity"), pl.col("item_type"), pl.col("rate_rest")),
            _part(e_block.filter(_BLOCKED), pl.col("_q2"), pl.col("item_type") + "_BLOCK_2", pl.col("rate_rest")),
        ]
    )  # fmt: skip
    unrated = rows.filter(pl.col("_rate").is_null() & (pl.col("quantity") != 0))
    rows = rows.filter(pl.col("_rate").is_not_null()).with_columns(
        (pl.col("quantity") * pl.col("_rate") * sign).alias("net_amount")
    )
    keep = ["account_id", "day", "year_mnth", "item_type", "feature_type_name", "time_class_name", "unit",
            "quantity", "quantity_actual", "quantity_estimated", "net_amount"]  # fmt: skip
    return rows.select(keep), combine([missing, no_rate(unrated)])


_RATE_KEYS = ["account_id", "day", "year_mnth", "plan_id", "item_type", "rate_class", "unit"]
_QUANTITIES = ["quantity", "quantity_actual", "quantity_estimated"]
_RATE_COLUMNS = ["block_limit", "rate_block", "rate_rest"]
_BLOCKED = pl.col("block_limit").is_not_null() & pl.col("threshold").is_not_null()


def _rated_per_class(energy: pl.DataFrame, rates: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Energy rows summed per rate class with their rates, and NO_RATE exceptions of the rows whose
    item has no rate class at all."""
    keys, values, rate_cols = _RATE_KEYS, _QUANTITIES, _RATE_COLUMNS
    e = energy.join(
        rates.select("plan_id", "day", "item_type", "time_class", *rate_cols, pl.lit(True).alias("_exact")),
        on=["plan_id", "day", "item_type", "time_class"],
        how="left",
    )
    exact = e.filter(pl.col("_exact").is_not_null()).with_columns(pl.col("time_class").alias("rate_class"))
    other = _match_rate_class(e.filter(pl.col("_exact").is_null()).drop(*rate_cols, "_exact"), rates)
    missing = no_rate(other.filter(pl.col("rate_class").is_null()))
    other = other.filter(pl.col("rate_class").is_not_null())
    merged = other["account_id"].unique().implode()
    summed = _sum_duplicates(
        pl.concat(
            [
                exact.filter(pl.col("account_id").is_in(merged)).select(*keys, *values),
                other.select(*keys, *values),
            ]
        ),
        keys,
        values,
    ).join(
        rates.rename({"time_class": "rate_class"}),
        on=["plan_id", "day", "item_type", "rate_class"],
        how="left",
    )
    e = pl.concat(
        [
            summed.select(*keys, *values, *rate_cols),
            exact.filter(~pl.col("account_id").is_in(merged)).select(*keys, *values, *rate_cols),
        ]
    )
    return e, missing


def _with_block_split(
    e_block: pl.DataFrame, blocked_accounts: pl.Series, days: pl.DataFrame, rates: pl.DataFrame
) -> pl.DataFrame:
    """The rows of accounts with a block-limited row, with their month's threshold, the usage before
    the day and the quantity in the first block (_q1) and over it (_q2)."""
    group = ["account_id", "year_mnth", "item_type", "rate_class", "unit"]
    # threshold = Σ over the month's unbilled (planned) days of the day's block limit
    limits = (
        days.filter(pl.col("account_id").is_in(blocked_accounts.implode()))
        .join(rates.filter(pl.col("block_limit").is_not_null()), on=["plan_id", "day"])
        .group_by("account_id", "year_mnth", "item_type", pl.col("time_class").alias("rate_class"))
        .agg(pl.col("block_limit").sum().alias("threshold"))
    )
    e_block = e_block.join(
        limits, on=["account_id", "year_mnth", "item_type", "rate_class"], how="left"
    ).with_columns(
        (pl.col("quantity").cum_sum().over(group, order_by="day") - pl.col("quantity")).alias("_before")
    )
    first = pl.min_horizontal(
        pl.max_horizontal(pl.col("threshold") - pl.col("_before"), pl.lit(0.0)), pl.col("quantity")
    )
    return e_block.with_columns(
        pl.when(_BLOCKED).then(first).otherwise(pl.col("quantity")).alias("_q1"),
    ).with_columns((pl.col("quantity") - pl.col("_q1")).alias("_q2"))


def _share(part: pl.Expr) -> pl.Expr:
    return pl.when(pl.col("quantity") != 0).then(part / pl.col("quantity")).otherwise(0.0)


def _part(frame: pl.DataFrame, q: pl.Expr, feature: pl.Expr, rate: pl.Expr) -> pl.DataFrame:
    """Rows of one block (quantity ``q``, its share of the actual and estimated quantities, the rate)."""
    return frame.select(
        "account_id",
        "day",
        "year_mnth",
        "item_type",
        feature.alias("feature_type_name"),
        pl.col("rate_class").alias("time_class_name"),
        "unit",
        q.alias("quantity"),
        (pl.col("quantity_actual") * _share(q)).alias("quantity_actual"),
        (pl.col("quantity_estimated") * _share(q)).alias("quantity_estimated"),
        rate.alias("_rate"),
        "plan_id",
        pl.col("rate_class").alias("time_class"),
    )
