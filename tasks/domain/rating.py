"""Rating of the unbilled usage (SPEC §4.4) — replaces the legacy invoice runs.

Every unbilled account-day is priced with the plan and the rates valid on that day (a 1 July
price change splits a month by day, yet stays one output row whose amount is the sum):
SUPPLY is the daily rate × 1 per day (DAILY_RETAIL, quantity in days); register-days of the
``usage`` frame are priced by stream — CONSUMPTION as USAGE, CONTROLLED_LOAD as CONTROLLED_LOAD,
GENERATION as FEED_IN with a negative amount. Interval registers on a time-of-use plan are split
into time classes in local clock time (:mod:`tasks.domain.calendar`); basic registers use their own
time class. The rate of an item is the one for the register-day's time class, or — when the
plan prices the item in one class only (e.g. FEED_IN ANYTIME on a TOU plan) — that class.
Blocks: within one (account, month, item, time class) the first block's threshold is the sum of
``block_limit_per_day`` over the unbilled days of the month (limit × days), consumed in day
order; the remainder is rated at the remainder rate. Discounts and propensity
(:mod:`tasks.domain.discounts`) and GST (on net less the propensity-weighted discount; none on
FEED_IN) follow. Money is rounded to cents half away from zero once per output row, quantities to
3 decimals, both on integers (never on binary fractions).

Bad input is reported, not fatal: days with no plan (NO_PLAN), two plans on a day
(OVERLAPPING_PLANS; the later-starting plan is used), an item without a rate (NO_RATE) —
those days/items are left unrated and the rest of the account is rated.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from tasks.domain.calendar import KEYS, time_class_codes
from tasks.domain.discounts import RANK_STATE, apply_discounts, discount_days, join_account_days, of_accounts
from tasks.domain.exceptions import NO_PLAN, NO_RATE, OVERLAPPING_PLANS, combine, exception_rows

ITEM_OF_STREAM = {"CONSUMPTION": "USAGE", "CONTROLLED_LOAD": "CONTROLLED_LOAD", "GENERATION": "FEED_IN"}
PLAN_ITEM_TYPE = {
    "SUPPLY": "DAILY_RETAIL",
    "USAGE": "USAGE_RETAIL",
    "CONTROLLED_LOAD": "CONTROLLED_LOAD_RETAIL",
    "FEED_IN": "FEED_IN_RETAIL",
}
FAR = dt.date(9999, 12, 31)
LINE_COLUMNS = [
    "account_id", "account_number", "year_mnth", "ili_state", "discount_state", "plan_item_type_name",
    "feature_type_name", "time_class_name", "unit", "quantity", "quantity_actual", "quantity_estimated",
    "net_amount", "discount_net", "discount_net_propensity", "gst_amount",
]  # fmt: skip


def round_half_away(x: pl.Expr, decimals: int = 2) -> pl.Expr:
    """Round half away from zero on integers: 2.675 → 2.68, 0.125 → 0.13, -0.125 → -0.13.

    The value is first taken to an integer count of 10^-(decimals + 6) (absorbing binary error such as
    2.675 = 2.67499999…), then rounded half away from zero with integer arithmetic.
    """
    fine = 10 ** (decimals + 6)
    step = 10**6
    n = (x * fine).round(0).cast(pl.Int64)
    units = (n.abs() + step // 2) // step
    # the final round only picks the double nearest to units / 10^decimals (division may be off by an ulp)
    return (pl.when(n < 0).then(-units).otherwise(units).cast(pl.Float64) / (10**decimals)).round(decimals)


def plan_days(account_days: pl.DataFrame, account_plans: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(account_id, day, year_mnth) → plan_id; exceptions for days without a plan and overlaps."""
    account_plans = of_accounts(account_plans, account_days)  # smaller join and count
    j = account_days.join(
        account_plans.select("account_id", "plan_id", "start_date", "end_date"), on="account_id"
    ).filter((pl.col("day") >= pl.col("start_date")) & (pl.col("day") <= pl.col("end_date").fill_null(FAR)))
    # plans per account-day: only an account with two plan rows can have more than one
    several = account_plans.group_by("account_id").len().filter(pl.col("len") > 1)["account_id"].implode()
    j = pl.concat(
        [
            j.filter(pl.col("account_id").is_in(several)).with_columns(
                pl.len().over("account_id", "day").alias("_n")
            ),
            j.filter(~pl.col("account_id").is_in(several)).with_columns(pl.lit(1, pl.UInt32).alias("_n")),
        ]
    )
    overlaps = (
        j.filter(pl.col("_n") > 1)
        .group_by("account_id")
        .agg(
            pl.col("plan_id").unique().sort().cast(pl.String).str.join(", ").alias("_plans"),
            pl.col("day").n_unique().alias("_days"),
            pl.col("day").min().alias("_first"),
            pl.col("day").max().alias("_last"),
        )
    )
    pick = (  # the later-starting plan where two overlap; nothing to pick when none do
        j.sort(["account_id", "day", "start_date", "plan_id"], descending=[False, False, True, True]).unique(
            ["account_id", "day"], keep="first"
        )
        if overlaps.height
        else j
    )
    chosen = pick.select("account_id", "day", "year_mnth", "plan_id").sort("account_id", "day")
    # account_days and chosen (a subset) are unique by (account_id, day): as many rows = none missing
    missing = (
        (account_days.clear() if chosen.height == account_days.height else account_days)
        .pipe(join_account_days, chosen, "anti")
        .group_by("account_id")
        .agg(pl.len().alias("_days"), pl.col("day").min().alias("_first"), pl.col("day").max().alias("_last"))
    )
    exc = combine(
        [
            exception_rows(
                overlaps,
                OVERLAPPING_PLANS,
                pl.format(
                    "plans {} overlap on {} day(s) {}..{}; the later-starting plan is used",
                    "_plans",
                    "_days",
                    "_first",
                    "_last",
                ),  # fmt: skip
            ),
            exception_rows(
                missing,
                NO_PLAN,
                pl.format(
                    "no account plan on {} unbilled day(s) {}..{}; those days are not rated",
                    "_days",
                    "_first",
                    "_last",
                ),
            ),
        ]
    )
    return chosen, exc


def day_rates(days: pl.DataFrame, plan_rates: pl.DataFrame) -> pl.DataFrame:
    """(plan_id, day, item_type, time_class) → block_limit (f64|null), rate_block (first block), rate_rest."""
    pd_ = days.select("plan_id", "day").unique()
    r = (
        pd_.join(plan_rates, on="plan_id")
        .filter(
            (pl.col("day") >= pl.col("valid_from")) & (pl.col("day") <= pl.col("valid_to").fill_null(FAR))
        )
        .with_columns(pl.col("rate").cast(pl.Float64), pl.col("block_limit_per_day").cast(pl.Float64))
    )
    limited = pl.col("block_limit_per_day").is_not_null()
    return (
        r.group_by("plan_id", "day", "item_type", "time_class")
        .agg(
            pl.col("block_limit_per_day").filter(limited).min().alias("block_limit"),
            pl.col("rate").sort_by("block_limit_per_day", nulls_last=True).first().alias("_first_rate"),
            pl.col("rate").filter(~limited).first().alias("rate_rest"),
        )
        .with_columns(
            pl.when(pl.col("block_limit").is_not_null()).then(pl.col("_first_rate")).alias("rate_block")
        )
        .drop("_first_rate")
    )


def supply_rows(days: pl.DataFrame, rates: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One day-level SUPPLY row per account-day with a plan: quantity 1, net = daily rate."""
    sup = (
        rates.filter(pl.col("item_type") == "SUPPLY")
        .sort("time_class")
        .unique(["plan_id", "day"], keep="first")
    )
    j = days.join(sup, on=["plan_id", "day"], how="left")
    rows = j.filter(pl.col("rate_rest").is_not_null()).select(
        "account_id",
        "day",
        "year_mnth",
        pl.lit("SUPPLY").alias("item_type"),
        pl.lit("SUPPLY").alias("feature_type_name"),
        pl.col("time_class").alias("time_class_name"),
        pl.lit("DAY").alias("unit"),
        pl.lit(1.0).alias("quantity"),
        pl.lit(1.0).alias("quantity_actual"),
        pl.lit(0.0).alias("quantity_estimated"),
        pl.col("rate_rest").alias("net_amount"),
    )
    missing = _no_rate(
        j.filter(pl.col("rate_rest").is_null()).with_columns(pl.lit("SUPPLY").alias("item_type"))
    )
    return rows, missing


def _no_rate(df: pl.DataFrame) -> pl.DataFrame:
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
    tou_plans = plans.filter(pl.col("tou_scheme_id").is_not_null())["plan_id"].implode()
    meta = (
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
    cols = [
        "account_id",
        "day",
        "year_mnth",
        "plan_id",
        "item_type",
        "time_class",
        "unit",
        "quantity",
        "quantity_estimated",
    ]
    plain = (
        meta.filter(~pl.col("_tou"))
        .with_columns(
            pl.when(pl.col("interval_minutes") < 1440)
            .then(pl.lit("ANYTIME"))
            .otherwise(pl.col("register_time_class"))
            .alias("time_class")
        )
        .select(cols)
    )
    parts = [plain]
    tou = (  # the scheme, holiday rule and local clock only for the time-of-use register-days
        meta.filter(pl.col("_tou"))
        .join(plans.select("plan_id", "tou_scheme_id", "holidays_as_weekend"), on="plan_id", how="left")
        .join(windows.select("account_id", "jurisdiction", "timezone"), on="account_id", how="left")
        .with_columns(pl.col("day").alias("read_date"), pl.col("holidays_as_weekend").fill_null(True))
    )
    if tou.height:
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
            bad = (
                t.with_columns(pl.Series("_n", lens))
                .filter(pl.col("_n") != pl.col("_len"))
                .row(0, named=True)
            )
            raise ValueError(
                f"usage of account {bad['account_id']} on {bad['day']}: {bad['_n']} values, "
                f"but a day of {bad['interval_minutes']}-minute intervals has {bad['_len']}"
            )
        k = len(names)
        size = t.height * k
        count = np.zeros(size, np.int64)
        q = np.zeros(size)
        qe = np.zeros(size)
        starts = t["_start"].to_numpy()
        for n in np.unique(lens):  # one pass per interval length (48, 96, 288 …): rows × intervals
            sel = np.flatnonzero(lens == n)
            at = np.arange(n)
            value_pos = offsets[sel][:, None] + at
            group = (sel[:, None] * k + codes[starts[sel][:, None] + at]).ravel()
            v = flat[value_pos].ravel()
            count += np.bincount(group, minlength=size)
            q += np.bincount(group, weights=v, minlength=size)
            qe += np.bincount(group, weights=v * est[value_pos].ravel(), minlength=size)
        present = np.flatnonzero(count)  # a (register-day, class) row only where the class occurs
        masked = t.select(c for c in cols if c not in ("time_class", "quantity", "quantity_estimated"))[
            present // k
        ].with_columns(
            pl.Series("time_class", np.array(names, dtype=object)[present % k], dtype=pl.String),
            pl.Series("quantity", q[present]),
            pl.Series("quantity_estimated", qe[present]),
        )
        parts.append(masked.select(cols))
    return _sum_duplicates(
        pl.concat(parts), ["account_id", "day", "year_mnth", "plan_id", "item_type", "time_class", "unit"],
        ["quantity", "quantity_estimated"],
    ).with_columns((pl.col("quantity") - pl.col("quantity_estimated")).alias("quantity_actual"))  # fmt: skip


def _sum_duplicates(df: pl.DataFrame, keys: list[str], values: list[str]) -> pl.DataFrame:
    """``keys`` + the ``values`` summed per distinct ``keys``; rows already unique by keys pass as they are.

    Register-day rows are nearly always unique by (account, day, item, class, unit) — a second
    register of the same stream is rare — so the group-by (hashing string keys over every row) is
    only run when some key occurs twice. The sum of one row is the row, so the values are the same.
    Test: as many distinct key hashes as rows means no key occurs twice (equal keys hash equal; a
    hash collision of two different keys only costs the group-by).
    """
    if df.height == 0 or df.select(pl.struct(keys).hash().n_unique()).item() == df.height:
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
    keys = ["account_id", "day", "year_mnth", "plan_id", "item_type", "rate_class", "unit"]
    values = ["quantity", "quantity_actual", "quantity_estimated"]
    rate_cols = ["block_limit", "rate_block", "rate_rest"]
    e = energy.join(
        rates.select("plan_id", "day", "item_type", "time_class", *rate_cols, pl.lit(True).alias("_exact")),
        on=["plan_id", "day", "item_type", "time_class"],
        how="left",
    )
    exact = e.filter(pl.col("_exact").is_not_null()).with_columns(pl.col("time_class").alias("rate_class"))
    other = _match_rate_class(e.filter(pl.col("_exact").is_null()).drop(*rate_cols, "_exact"), rates)
    missing = _no_rate(other.filter(pl.col("rate_class").is_null()))
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
    # threshold and usage before the day: only accounts with a block-limited row need them (the
    # threshold and the running sum of an account's other rows are never read)
    blocked_accounts = e.filter(pl.col("block_limit").is_not_null())["account_id"].unique()
    e_block = e.filter(pl.col("account_id").is_in(blocked_accounts.implode()))
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
    e_rest = e.filter(~pl.col("account_id").is_in(blocked_accounts.implode()))
    blocked = pl.col("block_limit").is_not_null() & pl.col("threshold").is_not_null()
    first = pl.min_horizontal(
        pl.max_horizontal(pl.col("threshold") - pl.col("_before"), pl.lit(0.0)), pl.col("quantity")
    )
    e_block = e_block.with_columns(
        pl.when(blocked).then(first).otherwise(pl.col("quantity")).alias("_q1"),
    ).with_columns((pl.col("quantity") - pl.col("_q1")).alias("_q2"))
    share = lambda part: pl.when(pl.col("quantity") != 0).then(part / pl.col("quantity")).otherwise(0.0)  # noqa: E731
    sign = pl.when(pl.col("item_type") == "FEED_IN").then(-1.0).otherwise(1.0)

    def part(frame: pl.DataFrame, q: pl.Expr, feature: pl.Expr, rate: pl.Expr) -> pl.DataFrame:
        return frame.select(
            "account_id",
            "day",
            "year_mnth",
            "item_type",
            feature.alias("feature_type_name"),
            pl.col("rate_class").alias("time_class_name"),
            "unit",
            q.alias("quantity"),
            (pl.col("quantity_actual") * share(q)).alias("quantity_actual"),
            (pl.col("quantity_estimated") * share(q)).alias("quantity_estimated"),
            rate.alias("_rate"),
            "plan_id",
            pl.col("rate_class").alias("time_class"),
        )

    # first block (or the whole quantity), then the rest over the first block: rows of accounts
    # without a block limit are never blocked (quantity as it is, the item, the remainder rate)
    rows = pl.concat(
        [
            part(e_block, pl.col("_q1"), pl.when(blocked).then(pl.col("item_type") + "_BLOCK_1").otherwise(pl.col("item_type")),
                 pl.when(blocked).then(pl.col("rate_block")).otherwise(pl.col("rate_rest"))),
            part(e_rest, pl.col("quantity"), pl.col("item_type"), pl.col("rate_rest")),
            part(e_block.filter(blocked), pl.col("_q2"), pl.col("item_type") + "_BLOCK_2", pl.col("rate_rest")),
        ]
    )  # fmt: skip
    unrated = rows.filter(pl.col("_rate").is_null() & (pl.col("quantity") != 0))
    rows = rows.filter(pl.col("_rate").is_not_null()).with_columns(
        (pl.col("quantity") * pl.col("_rate") * sign).alias("net_amount")
    )
    keep = ["account_id", "day", "year_mnth", "item_type", "feature_type_name", "time_class_name", "unit",
            "quantity", "quantity_actual", "quantity_estimated", "net_amount"]  # fmt: skip
    return rows.select(keep), combine([missing, _no_rate(unrated)])


def rate_unbilled(
    windows: pl.DataFrame,
    account_days_: pl.DataFrame,
    usage: pl.DataFrame,
    account_plans: pl.DataFrame,
    plans: pl.DataFrame,
    plan_rates: pl.DataFrame,
    tou_windows: pl.DataFrame,
    discounts: pl.DataFrame,
    propensity: pl.DataFrame,
    gst_rate: float = 0.10,
    row_sums: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``invoice_line_item_monthly`` rows (without run_id/run_date) and exceptions for one shard.

    ``windows``: account_id, account_number, ili_state, jurisdiction, timezone. ``account_days_``:
    account_id, day, year_mnth (:func:`tasks.domain.unbilled.account_days`). ``usage``: the estimation
    frame contract (docs/DESIGN.md).
    """
    days, exc_plans = plan_days(account_days_, account_plans)
    rates = day_rates(days, plan_rates)
    supply, exc_supply = supply_rows(days, rates)
    energy = usage_by_class(usage, days, plans, windows, tou_windows, row_sums)
    energy_day, exc_energy = energy_rows(energy, days, rates)
    day_rows = pl.concat([supply, energy_day.select(supply.columns)])
    day_rows = apply_discounts(day_rows, discount_days(account_days_, discounts), propensity)
    lines = aggregate_lines(day_rows, windows, gst_rate)
    return lines, combine([exc_plans, exc_supply, exc_energy])


def aggregate_lines(day_rows: pl.DataFrame, windows: pl.DataFrame, gst_rate: float) -> pl.DataFrame:
    """Sum day rows to one row per (account, month, item, feature, time class, unit); GST; round once."""
    g = day_rows.group_by(
        "account_id", "year_mnth", "item_type", "feature_type_name", "time_class_name", "unit"
    ).agg(
        pl.col(
            "quantity",
            "quantity_actual",
            "quantity_estimated",
            "net_amount",
            "discount_net",
            "discount_net_propensity",
        ).sum(),
        pl.col("discount_rank").max(),
    )
    gst = (
        pl.when(pl.col("item_type") == "FEED_IN")
        .then(0.0)
        .otherwise(gst_rate * (pl.col("net_amount") - pl.col("discount_net_propensity")))
    )
    q = {
        c: round_half_away(pl.col(c), 3).alias(c)
        for c in ("quantity", "quantity_actual", "quantity_estimated")
    }
    out = (
        g.with_columns(gst.alias("gst_amount"))
        .with_columns(
            *[
                round_half_away(pl.col(c), 2).alias(c)
                for c in ("net_amount", "discount_net", "discount_net_propensity", "gst_amount")
            ],
            q["quantity"],
            q["quantity_actual"],
        )
        .with_columns(
            (pl.col("quantity") - pl.col("quantity_actual")).round(3).alias("quantity_estimated"),
            pl.col("item_type").replace_strict(PLAN_ITEM_TYPE).alias("plan_item_type_name"),
            pl.col("discount_rank")
            .replace_strict(RANK_STATE, return_dtype=pl.String)
            .alias("discount_state"),
        )
    )
    return (
        out.join(windows.select("account_id", "account_number", "ili_state"), on="account_id", how="left")
        .select(LINE_COLUMNS)
        .sort(
            "account_id", "year_mnth", "plan_item_type_name", "feature_type_name", "time_class_name", "unit"
        )
    )
