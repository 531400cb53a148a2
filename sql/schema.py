"""SQLAlchemy metadata of the billing database (SPEC §2) and the accrual outputs (SPEC §4.5).

Table and column names are the contract other programs read. Types are portable across SQLite,
MySQL/MariaDB and PostgreSQL: dates are ``DATE`` (inclusive unless ``*_exclusive``), money
``DECIMAL(14,2)``, rates ``DECIMAL(14,6)``. Alembic migrations in ``sql/migrations`` create and
evolve these tables; a test checks that the migrations and this metadata agree.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

MONEY = Numeric(14, 2)
RATE = Numeric(14, 6)
QTY = Numeric(18, 3)


def _id() -> Column:
    return Column("id", Integer, primary_key=True, autoincrement=True)


# ---------------------------------------------------------------- reference data
jurisdiction = Table(
    "jurisdiction",
    metadata,
    _id(),
    Column("code", String(8), nullable=False, unique=True),
    Column("timezone", String(64), nullable=False),
)
network = Table(
    "network",
    metadata,
    _id(),
    Column("code", String(32), nullable=False, unique=True),
    Column("name", String(128), nullable=False),
    Column("jurisdiction_id", Integer, ForeignKey("jurisdiction.id"), nullable=False),
    Column("service_type", String(16), nullable=False),
)
tni = Table("tni", metadata, _id(), Column("code", String(8), nullable=False, unique=True))
journal_segment = Table(
    "journal_segment", metadata, _id(), Column("name", String(32), nullable=False, unique=True)
)

# ---------------------------------------------------------------- customers and meters
account = Table(
    "account",
    metadata,
    _id(),
    Column("account_number", String(32), nullable=False, unique=True),
    Column("customer_class", String(8), nullable=False),
    Column("journal_segment_id", Integer, ForeignKey("journal_segment.id"), nullable=False),
    Column("service_type", String(16), nullable=False),
    Column("billing_cycle_months", Integer, nullable=False),
    Column("open_date", Date, nullable=False),
    Column("close_date", Date),
)
site = Table(
    "site",
    metadata,
    _id(),
    Column("identifier", String(16), nullable=False, unique=True),
    Column("service_type", String(16), nullable=False),
    Column("network_id", Integer, ForeignKey("network.id"), nullable=False),
    Column("tni_id", Integer, ForeignKey("tni.id")),
    Column("jurisdiction_id", Integer, ForeignKey("jurisdiction.id"), nullable=False),
)
account_site = Table(
    "account_site",
    metadata,
    Column("account_id", Integer, ForeignKey("account.id"), primary_key=True),
    Column("site_id", Integer, ForeignKey("site.id"), primary_key=True),
    Column("start_date", Date, primary_key=True),
    Column("end_date", Date),
)
meter = Table(
    "meter",
    metadata,
    _id(),
    Column("site_id", Integer, ForeignKey("site.id"), nullable=False, index=True),
    Column("serial_number", String(32), nullable=False),
    Column("installation_type", String(8), nullable=False),
    Column("interval_minutes", Integer),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
)
meter_register = Table(
    "meter_register",
    metadata,
    _id(),
    Column("meter_id", Integer, ForeignKey("meter.id"), nullable=False, index=True),
    Column("suffix", String(4), nullable=False),
    Column("stream", String(16), nullable=False),
    Column("time_class", String(16), nullable=False),
    Column("unit", String(8), nullable=False),
    Column("dial_digits", Integer),
    Column("multiplier", Numeric(12, 4), nullable=False, server_default="1"),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
)
basic_read = Table(
    "basic_read",
    metadata,
    _id(),
    Column("meter_register_id", Integer, ForeignKey("meter_register.id"), nullable=False),
    Column("read_date", Date, nullable=False),
    Column("index_value", Numeric(16, 3), nullable=False),
    Column("quality", String(1), nullable=False),
    # the MDFF record's UpdateDateTime of a read ingested from NEM13 (null for rows from elsewhere):
    # across files the latest update wins (tasks/adapters/nem13.py; migration 0005_estimates_weather)
    Column("update_datetime", DateTime),
    UniqueConstraint("meter_register_id", "read_date"),
)

# ---------------------------------------------------------------- tariffs
tou_window = Table(
    "tou_window",
    metadata,
    Column("tou_scheme_id", Integer, primary_key=True),
    Column("time_class", String(16), primary_key=True),
    Column("day_type", String(8), primary_key=True),
    Column("start_minute", Integer, primary_key=True),
    Column("end_minute", Integer, nullable=False),
)
plan = Table(
    "plan",
    metadata,
    _id(),
    Column("code", String(32), nullable=False, unique=True),
    Column("name", String(128), nullable=False),
    Column("service_type", String(16), nullable=False),
    Column("tou_scheme_id", Integer),
    Column("holidays_as_weekend", Boolean, nullable=False, server_default="1"),
)
plan_rate = Table(
    "plan_rate",
    metadata,
    _id(),
    Column("plan_id", Integer, ForeignKey("plan.id"), nullable=False, index=True),
    Column("item_type", String(16), nullable=False),
    Column("time_class", String(16), nullable=False),
    Column("block_limit_per_day", Numeric(14, 3)),
    Column("rate", RATE, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
)
account_plan = Table(
    "account_plan",
    metadata,
    Column("account_id", Integer, ForeignKey("account.id"), primary_key=True),
    Column("plan_id", Integer, ForeignKey("plan.id"), primary_key=True),
    Column("start_date", Date, primary_key=True),
    Column("end_date", Date),
)
account_discount = Table(
    "account_discount",
    metadata,
    Column("account_id", Integer, ForeignKey("account.id"), primary_key=True),
    Column("discount_type", String(16), primary_key=True),
    Column("percent", Numeric(6, 3), nullable=False),
    Column("applies_to", String(24), nullable=False),
    Column("start_date", Date, primary_key=True),
    Column("end_date", Date),
)

# ---------------------------------------------------------------- billing history
invoice = Table(
    "invoice",
    metadata,
    _id(),
    Column("account_id", Integer, ForeignKey("account.id"), nullable=False, index=True),
    Column("invoice_number", String(32), nullable=False, unique=True),
    Column("issue_date", Date, nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("status", String(12), nullable=False),
    Column("net_amount", MONEY, nullable=False),
    Column("gst_amount", MONEY, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("paid_date", Date),
)
invoice_line = Table(
    "invoice_line",
    metadata,
    _id(),
    Column("invoice_id", Integer, ForeignKey("invoice.id"), nullable=False, index=True),
    Column("meter_register_id", Integer),
    Column("item_type", String(16), nullable=False),
    Column("time_class", String(16), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("quantity", QTY, nullable=False),
    Column("rate", RATE, nullable=False),
    Column("net_amount", MONEY, nullable=False),
    Column("discount_amount", MONEY, nullable=False, server_default="0"),
)
payment = Table(
    "payment",
    metadata,
    _id(),
    Column("account_id", Integer, ForeignKey("account.id"), nullable=False, index=True),
    # a timestamp (market-neutral, stored naive in UTC): the revenue alert cuts 6-hour windows
    Column("payment_date", DateTime, nullable=False, index=True),
    Column("amount", MONEY, nullable=False),
    Column("method", String(16), nullable=False),
    Column("status", String(16), nullable=False),
)
billing_record = Table(
    "billing_record",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("company_name", String(128)),
    Column("country", String(64)),
    Column("city", String(64)),
    Column("product_line", String(64)),
    Column("item", String(128)),
    Column("bill_date", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("bill_amount", MONEY, nullable=False),
    Column("bill_amount_base", MONEY, nullable=False),
    Column("source_file", String(512)),
    Column("loaded_at", DateTime),
)
fx_rate = Table(
    "fx_rate",
    metadata,
    Column("currency", String(3), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("rate_to_base", Numeric(18, 8), nullable=False),
)

# ---------------------------------------------------------------- accrual outputs (SPEC §4.5)
bua_run = Table(
    "bua_run",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("run_date", Date, nullable=False, index=True),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("parameters", Text),
    Column("code_version", String(64), nullable=False),
    Column("scenario", String(40), nullable=False, server_default=""),  # SPEC §4.5: '' = booked
)
# The run lock (tasks/adapters/run_lock.py): one row per run date being accrued, a lease renewed by
# the holder's heartbeat; a dead holder's lease expires and the next run takes over. Migration 0005.
bua_run_lock = Table(
    "bua_run_lock",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("token", String(64), nullable=False),
    Column("attempt_id", String(36), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("acquired_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)
# Every attempt at a run (a flow run, a CLI invocation, a retry): bua_run keeps one row per run_id
# (the deterministic id every output row carries) with the latest attempt's status; this table keeps
# them all, so a killed attempt stays on record as FAILED after its re-run completed.
bua_run_attempt = Table(
    "bua_run_attempt",
    metadata,
    Column("attempt_id", String(36), primary_key=True),
    Column("run_id", String(36), nullable=False, index=True),
    Column("run_date", Date, nullable=False),
    Column("scenario", String(40), nullable=False),
    Column("flow_run_id", String(36)),
    Column("holder", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("detail", String(500)),
)
invoice_line_item_monthly = Table(
    "invoice_line_item_monthly",
    metadata,
    Column("run_id", String(36), nullable=False),
    Column("run_date", Date, nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("account_number", String(32), nullable=False),
    Column("year_mnth", Integer, nullable=False),
    Column("ili_state", String(20), nullable=False),
    Column("discount_state", String(16), nullable=False),
    Column("plan_item_type_name", String(32), nullable=False),
    Column("feature_type_name", String(32), nullable=False),
    Column("time_class_name", String(16), nullable=False),
    Column("unit", String(8), nullable=False),
    Column("quantity", QTY, nullable=False),
    Column("quantity_actual", QTY, nullable=False),
    Column("quantity_estimated", QTY, nullable=False),
    Column("net_amount", MONEY, nullable=False),
    Column("discount_net", MONEY, nullable=False),
    Column("discount_net_propensity", MONEY, nullable=False),
    Column("gst_amount", MONEY, nullable=False),
    Column("scenario", String(40), nullable=False, server_default=""),  # SPEC §4.5: '' = booked
    Index("ix_ilim_run_date_account", "run_date", "account_id"),
)
bua_account_summary = Table(
    "bua_account_summary",
    metadata,
    Column("run_id", String(36), nullable=False),
    Column("run_date", Date, nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("account_number", String(32), nullable=False),
    Column("service_type", String(16), nullable=False),
    Column("jurisdiction", String(8)),
    Column("network", String(32)),
    Column("journal_segment", String(32)),
    Column("customer_class", String(8)),
    Column("billing_cycle_months", Integer),
    Column("billed_to", Date),
    Column("unbilled_from", Date),
    Column("unbilled_to", Date),
    Column("unbilled_days", Integer, nullable=False),
    Column("ili_state", String(20), nullable=False),
    Column("estimation_method", String(12), nullable=False),
    Column("volume", QTY, nullable=False),
    Column("volume_actual", QTY, nullable=False),
    Column("volume_estimated", QTY, nullable=False),
    Column("net_amount", MONEY, nullable=False),
    Column("discount_net", MONEY, nullable=False),
    Column("discount_net_propensity", MONEY, nullable=False),
    Column("net_amount_less_discount", MONEY, nullable=False),
    Column("exception_count", Integer, nullable=False),
    Column("scenario", String(40), nullable=False, server_default=""),  # SPEC §4.5: '' = booked
    Index("ix_bas_run_date_account", "run_date", "account_id"),
)
accrual_summary = Table(
    "accrual_summary",
    metadata,
    Column("run_id", String(36), nullable=False),
    Column("run_date", Date, nullable=False, index=True),
    Column("ili_state", String(20), nullable=False),
    Column("discount_state", String(16), nullable=False),
    Column("feature_type_name", String(32), nullable=False),
    Column("state", String(8)),
    Column("fuel", String(16)),
    Column("segment", String(32)),
    Column("year_mnth", Integer, nullable=False),
    Column("time_class_name", String(16), nullable=False),
    Column("net_amount", MONEY, nullable=False),
    Column("volume", QTY, nullable=False),
    Column("days", Integer, nullable=False),
    Column("accounts", Integer, nullable=False),
    Column("discount_net", MONEY, nullable=False),
    Column("discount_net_propensity", MONEY, nullable=False),
    Column("net_amount_less_discount", MONEY, nullable=False),
    Column("scenario", String(40), nullable=False, server_default=""),  # SPEC §4.5: '' = booked
)
bua_exception = Table(
    "bua_exception",
    metadata,
    Column("run_id", String(36), nullable=False),
    Column("run_date", Date, nullable=False, index=True),
    Column("account_id", Integer),
    Column("meter_register_id", Integer),
    Column("code", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("scenario", String(40), nullable=False, server_default=""),  # SPEC §4.5: '' = booked
)
estimated_basic_read = Table(
    "estimated_basic_read",
    metadata,
    Column("run_id", String(36), nullable=False),
    Column("run_date", Date, nullable=False, index=True),
    Column("meter_register_id", Integer, nullable=False),
    Column("read_date", Date, nullable=False),
    Column("index_value", Numeric(16, 3), nullable=False),
    Column("consumption", QTY, nullable=False),
    Column("method", String(16), nullable=False),
    # AEMO method flag of the estimate (quality E): 65 ADL, 63 Customer Class (tasks/domain/flags.py);
    # null on rows written before migration 0005_estimates_weather
    Column("method_flag", String(2)),
    Column("scenario", String(40), nullable=False, server_default=""),  # SPEC §4.5: '' = booked
)

# Pre-run checks (SPEC §4.0, tasks/domain/prechecks.py): one row per check of a run. Migration 0006.
bua_precheck = Table(
    "bua_precheck",
    metadata,
    Column("run_id", String(36), nullable=False),
    Column("run_date", Date, nullable=False, index=True),
    Column("scenario", String(40), nullable=False, server_default=""),
    Column("check", String(32), nullable=False),
    Column("status", String(4), nullable=False),
    Column("figure", String(64), nullable=False),
    Column("threshold", String(128), nullable=False),
    Column("detail", Text, nullable=False),
    Column("checked_at", DateTime, nullable=False),
)

# ---------------------------------------------------------------- validation outputs (SPEC §4.6)
# tasks/pipeline/validation.py; migration 0004_validation. Percentages are DECIMAL(12,2), null when the
# denominator is 0.
PCT = Numeric(12, 2)
bua_backtest = Table(
    "bua_backtest",
    metadata,
    Column("run_id", String(36), nullable=False),
    Column("run_date", Date, nullable=False, index=True),
    Column("backtest_date", Date, nullable=False),
    Column("window_to", Date, nullable=False),
    Column("fuel", String(16), nullable=False),
    Column("method", String(12), nullable=False),
    Column("segment", String(64), nullable=False),
    Column("unit", String(8), nullable=False),
    Column("registers", Integer, nullable=False),
    Column("register_days", Integer, nullable=False),
    Column("actual_volume", QTY, nullable=False),
    Column("estimated_volume", QTY, nullable=False),
    Column("bias_pct", PCT),
    Column("mape_pct", PCT),
    Column("wape_pct", PCT),
    Column("scenario", String(40), nullable=False, server_default=""),  # SPEC §4.5: '' = booked
)
bua_trueup = Table(
    "bua_trueup",
    metadata,
    Column("run_id", String(36), nullable=False),
    Column("run_date", Date, nullable=False, index=True),
    Column("accrual_run_date", Date, nullable=False),
    Column("fuel", String(16), nullable=False),
    Column("segment", String(32), nullable=False),
    Column("accounts", Integer, nullable=False),
    Column("accounts_billed", Integer, nullable=False),
    Column("covered_days", Integer, nullable=False),
    Column("accrued_volume", QTY),
    Column("billed_volume", QTY),
    Column("volume_difference", QTY),
    Column("volume_difference_pct", PCT),
    Column("accrued_net", MONEY, nullable=False),
    Column("billed_net", MONEY, nullable=False),
    Column("net_difference", MONEY, nullable=False),
    Column("net_difference_pct", PCT),
    Column("accrued_net_total", MONEY, nullable=False),
    Column("scenario", String(40), nullable=False, server_default=""),  # SPEC §4.5: '' = booked
)
VALIDATION_TABLES = ("bua_backtest", "bua_trueup")

# ---------------------------------------------------------------- weather (SPEC §2, §4.3)
# Daily observations (e.g. the Bureau of Meteorology's daily minimum and maximum temperature) per
# station, mapped to a jurisdiction at ingest (`bua ingest weather`, tasks/adapters/weather.py);
# optional: estimation falls back to its methods without weather. Migration 0005_estimates_weather.
weather_daily = Table(
    "weather_daily",
    metadata,
    Column("jurisdiction_id", Integer, ForeignKey("jurisdiction.id"), nullable=False),
    Column("station_id", String(16), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("min_temp_c", Numeric(5, 1)),
    Column("max_temp_c", Numeric(5, 1)),
)

SOURCE_TABLES = (
    "jurisdiction",
    "network",
    "tni",
    "journal_segment",
    "account",
    "site",
    "account_site",
    "meter",
    "meter_register",
    "basic_read",
    "tou_window",
    "plan",
    "plan_rate",
    "account_plan",
    "account_discount",
    "invoice",
    "invoice_line",
    "payment",
    "billing_record",
    "fx_rate",
    "weather_daily",
)
OUTPUT_TABLES = (
    "bua_run",
    "invoice_line_item_monthly",
    "bua_account_summary",
    "accrual_summary",
    "bua_exception",
    "estimated_basic_read",
    "bua_precheck",
)

# ---------------------------------------------------------------- companion flows (SPEC §7)
# Owned by the companion flows (flows/billing_ingest.py, flows/aggregate.py); migration 0003_companion.
billing_csv_file = Table(
    "billing_csv_file",
    metadata,
    # one row per ingested billing CSV (local path or s3:// URL): the poller's memory and an audit trail
    Column("source_url", String(512), primary_key=True),
    Column("etag", String(64), nullable=False),
    Column("status", String(12), nullable=False),
    Column("rows_read", Integer, nullable=False),
    Column("rows_loaded", Integer, nullable=False),
    Column("rows_duplicate", Integer, nullable=False),
    Column("rows_rejected", Integer, nullable=False),
    Column("rejects_url", String(512)),
    Column("loaded_at", DateTime, nullable=False),
)


def _account_daily_columns() -> list[Column]:
    """Columns of the daily per-account billing report (money is GST-inclusive: what is owed)."""
    money = [
        "invoiced_day",
        "external_day",
        "payments_day",
        "write_offs_day",
        "charges_to_date",
        "payments_to_date",
        "write_offs_to_date",
        "balance",
        "debt_not_due",
        "debt_0_30",
        "debt_31_60",
        "debt_61_90",
        "debt_90_plus",
    ]
    return [
        Column("report_date", Date, nullable=False),
        Column("account_key", String(160), nullable=False),
        Column("account_id", Integer),
        Column("account_number", String(32)),
        Column("company_name", String(128)),
        *[Column(name, MONEY, nullable=False) for name in money],
        Column("created_at", DateTime, nullable=False),
    ]


billing_account_daily = Table(
    "billing_account_daily",
    metadata,
    *_account_daily_columns(),
    Index("ix_bad_report_date_account", "report_date", "account_key"),
)
billing_account_daily_history = Table(
    "billing_account_daily_history",
    metadata,
    Column("snapshot_date", Date, nullable=False),
    *_account_daily_columns(),
    Index("ix_badh_snapshot_account", "snapshot_date", "account_key"),
)
COMPANION_TABLES = ("billing_csv_file", "billing_account_daily", "billing_account_daily_history")
