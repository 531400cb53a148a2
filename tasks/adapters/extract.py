"""Extract: the billing database's datasets for one run, read through ``sql/*.sql`` (SPEC §2, §4).

Every query is a file in ``sql/`` (a retailer with another schema edits SQL, not Python) and is
cast explicitly to the types below (SQLite gives dates as text). Shaping done here, in polars:
each account keeps the site it held last before the run date (an account has one site at a
time); each register is attached to every account whose site period overlaps the register's life
(a site with a move-out and a move-in gives one row per account — the estimation counts the
meter data once); shards come from the NMI hash (:mod:`tasks.domain.shard`). Bad rows become
exceptions, not failures: a register whose meter is missing (NO_METER), a basic read that is
negative or not a number (NEGATIVE_READ). A missing table or an unreachable database stops the
run with :class:`tasks.adapters.db.DatabaseError`.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.adapters.db import read_sql_many, require_tables
from tasks.domain.billed import billed_quantities, with_billed
from tasks.domain.exceptions import NEGATIVE_READ, NO_METER, combine, exception_rows
from tasks.domain.shard import shard_expr
from tasks.domain.weather import daily_temperature

_NO_TEMPERATURE = pl.DataFrame(schema={"jurisdiction": pl.String, "read_date": pl.Date, "temp": pl.Float64})

HISTORY_DAYS = 400  # profiles, scalars and basic read pairs look back this far before the run date

SOURCE_TABLES_USED = (
    "jurisdiction", "network", "tni", "journal_segment", "account", "site", "account_site", "meter",
    "meter_register", "basic_read", "tou_window", "plan", "plan_rate", "account_plan", "account_discount", "invoice",
    "invoice_line", "weather_daily",
)  # fmt: skip

S, N, F, D, B = pl.String(), pl.Int64(), pl.Float64(), pl.Date(), pl.Boolean()
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "accounts": {
        "account_id": N, "account_number": S, "customer_class": S, "journal_segment": S, "service_type": S,
        "billing_cycle_months": N, "open_date": D, "close_date": D, "site_id": N, "nmi": S, "site_start": D,
        "site_end": D, "jurisdiction": S, "timezone": S, "network": S, "tni": S,
    },
    "registers": {
        "meter_register_id": N, "meter_id": N, "meter_found": N, "site_id": N, "nmi": S, "suffix": S, "stream": S,
        "time_class": S, "unit": S, "dial_digits": N, "multiplier": F, "register_start": D, "register_end": D,
        "installation_type": S, "interval_minutes": N, "meter_start": D, "meter_end": D,
    },
    "invoices": {
        "invoice_id": N, "account_id": N, "issue_date": D, "period_start": D, "period_end": D, "status": S,
        "due_date": D, "paid_date": D,
    },
    "plans": {"plan_id": N, "plan_code": S, "service_type": S, "tou_scheme_id": N, "holidays_as_weekend": B},
    "plan_rates": {
        "plan_id": N, "item_type": S, "time_class": S, "block_limit_per_day": F, "rate": F, "valid_from": D, "valid_to": D,
    },
    "tou_windows": {"tou_scheme_id": N, "time_class": S, "day_type": S, "start_minute": N, "end_minute": N},
    "account_plans": {"account_id": N, "plan_id": N, "start_date": D, "end_date": D},
    "discounts": {
        "account_id": N, "discount_type": S, "percent": F, "applies_to": S, "start_date": D, "end_date": D,
    },
    "basic_reads": {"meter_register_id": N, "read_date": D, "index_value": S, "quality": S},
    "billed_quantities": {"meter_register_id": N, "invoice_id": N, "period_start": D, "period_end": D, "quantity": F},
    "weather": {"jurisdiction": S, "station_id": S, "date": D, "min_temp_c": F, "max_temp_c": F},
}  # fmt: skip


# the order the queries start in on read_sql_many's threads (Settings.read_threads, default 2): the largest first (at 100k accounts:
# invoices ~790k rows, as long as all the others together; basic_reads ~320k, registers ~130k …)
READ_ORDER = (
    "invoices", "basic_reads", "registers", "billed_quantities", "accounts", "account_plans", "discounts", "plan_rates",
    "plans", "tou_windows", "weather",
)  # fmt: skip


def read_datasets(
    url: str, run_date: dt.date, period_start: dt.date, period_end: dt.date, threads: int
) -> dict[str, pl.DataFrame]:
    """Run every extraction query (``threads`` at a time, :func:`tasks.adapters.db.read_sql_many`);
    raise DatabaseError when the database or a table is missing."""
    require_tables(url, SOURCE_TABLES_USED)
    params = {
        "run_date": run_date,
        "period_start": period_start,
        "period_end": period_end,
        "history_start": run_date - dt.timedelta(days=HISTORY_DAYS),
    }
    queries = {
        name: ({k: v for k, v in params.items() if f":{k}" in _text(name)}, SCHEMAS[name])
        for name in sorted(SCHEMAS, key=READ_ORDER.index)
    }
    raw = read_sql_many(url, queries, sqlite_connectorx=True, threads=threads)
    return {name: raw[name] for name in SCHEMAS}


def _text(name: str) -> str:
    from tasks.adapters.db import sql_text

    return sql_text(name)


def shape(raw: dict[str, pl.DataFrame], n_shards: int) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """Accounts (one row each, with shard), registers per account, reads with shard; and exceptions."""
    # in a fixed order whatever the database returns (accounts.sql has no ORDER BY): the same bytes
    # on SQLite, MariaDB and PostgreSQL, and two sites starting the same day resolved the same way
    site_history = raw["accounts"].sort(["account_id", "site_start", "site_id"], nulls_last=True)
    accounts = (
        site_history.sort(
            ["account_id", "site_start"], descending=[False, True], nulls_last=True, maintain_order=True
        )
        .unique("account_id", keep="first", maintain_order=True)
        .with_columns(shard_expr(pl.coalesce("nmi", "account_number"), n_shards))
        .sort("account_id")
    )
    regs = raw["registers"]
    no_meter = regs.filter(pl.col("meter_found").is_null())
    ok = regs.filter(pl.col("meter_found").is_not_null())
    far = dt.date(9999, 12, 31)
    occupancy = site_history.filter(pl.col("site_id").is_not_null()).select(
        "account_id",
        "site_id",
        "site_start",
        "site_end",
        "customer_class",
        "service_type",
        "jurisdiction",
        "tni",
    )
    registers = (
        ok.join(occupancy, on="site_id", how="inner")
        .filter(
            (pl.col("site_start") <= pl.col("register_end").fill_null(far))
            & (pl.col("register_start") <= pl.col("site_end").fill_null(far))
        )
        .drop("site_start", "site_end", "meter_found")
        .with_columns(shard_expr("nmi", n_shards))
        .unique(["meter_register_id", "account_id"], keep="first")
        .sort("meter_register_id", "account_id")
    )
    reads = raw["basic_reads"].with_columns(
        pl.col("index_value").str.strip_chars().cast(pl.Float64, strict=False).alias("_v")
    )
    bad_reads = reads.filter(pl.col("_v").is_null() | (pl.col("_v") < 0) | ~pl.col("_v").is_finite())
    reg_shard = registers.select("meter_register_id", "shard", "account_id").unique(
        "meter_register_id", keep="last"
    )
    reads = (
        reads.filter(pl.col("_v").is_not_null() & (pl.col("_v") >= 0) & pl.col("_v").is_finite())
        .select("meter_register_id", "read_date", pl.col("_v").alias("index_value"), "quality")
        .join(reg_shard.select("meter_register_id", "shard"), on="meter_register_id", how="inner")
        .sort("meter_register_id", "read_date")
    )
    if "billed_quantities" in raw:
        reads = with_billed(reads, billed_quantities(raw["billed_quantities"], raw["invoices"]))
    exceptions = combine(
        [
            exception_rows(
                no_meter,
                NO_METER,
                pl.format(
                    "register {} (suffix {}) refers to meter {} which does not exist; not estimated",
                    "meter_register_id",
                    "suffix",
                    "meter_id",
                ),
            ),  # fmt: skip
            exception_rows(
                bad_reads.join(
                    reg_shard.select("meter_register_id", "account_id"), on="meter_register_id", how="left"
                ),
                NEGATIVE_READ,
                pl.format(
                    "basic read of {} has index '{}': negative or not a number; read ignored",
                    "read_date",
                    "index_value",
                ),
            ),
        ]
    )
    # every dataset in a stable row order, whatever order the database returned (deterministic bytes)
    datasets = {
        name: df.sort(df.columns, nulls_last=True) for name, df in raw.items() if name != "billed_quantities"
    }
    datasets.update(accounts=accounts, registers=registers, basic_reads=reads, site_history=site_history)
    # the jurisdictions' daily mean temperature from weather_daily (the basic weather model's input)
    datasets["temperature"] = daily_temperature(raw["weather"]) if "weather" in raw else _NO_TEMPERATURE
    return datasets, exceptions
