"""bua settings: one pydantic-settings class, prefix ``BUA_``, embedded defaults.

Every value can be overridden by an environment variable (``BUA_DATABASE_URL`` …) or by the
CLI's global options; flows take explicit parameters that override both. Secrets are
``SecretStr`` so that they never print in a repr, a log line or an artifact.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All configuration of bua. Defaults run everything embedded on one machine."""

    model_config = SettingsConfigDict(env_prefix="BUA_", extra="ignore")

    # where things are
    database_url: SecretStr = Field(
        SecretStr("sqlite:///.bua/bua.db"),
        description="SQLAlchemy URL of the billing database (a secret: it may hold a password)",
    )
    meter_store: str = Field(".bua/meter-store", description="path or s3:// prefix of the parquet meter store")
    output_url: str = Field(".bua/out", description="path or s3:// prefix for exports, NEM12 estimates, report")
    quarantine_url: str | None = Field(None, description="where rejected input goes (default OUTPUT_URL/quarantine)")
    integration_url: str | None = Field(None, description="exports are also copied here when set")
    slack_webhook_url: SecretStr | None = Field(None, description="Slack incoming webhook (secret)")

    # S3 (moto in tests, AWS in production); None means the SDK's own chain
    s3_endpoint_url: str | None = None
    aws_region: str = "ap-southeast-2"
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None

    # sharding and runners
    shards: int = Field(16, ge=1, le=4096, description="number of NMI-hash shards")
    task_runner: Literal["thread", "dask"] = "thread"
    max_workers: int = Field(2, ge=1, description="ThreadPoolTaskRunner max_workers / Dask workers")
    dask_address: str | None = Field(None, description="Dask scheduler address; None = local cluster")
    task_retries: int = 2
    task_retry_delay_seconds: float = 2.0

    # method
    basic_method: Literal["scalar", "seasonal"] = "seasonal"
    gst_rate: float = 0.10
    grace_days: int = 7
    min_registers: int = 20
    segment_with_tni: bool = False
    max_rows_per_file: int = 1_000_000
    timezone: str = "Australia/Sydney"
    reporting_currency: str = "AUD"
    # weather (SPEC §2 weather_daily, §4.3; tasks/adapters/weather.py, docs/METHOD.md "Weather")
    weather_stations: str | None = Field(
        None,
        description="CSV (station_id,jurisdiction) mapping BoM station numbers to jurisdictions for "
        "`bua ingest weather`; default: the built-in table of tasks/adapters/weather.py",
    )
    use_weather: bool = Field(True, description="basic estimation uses weather_daily where it has observations")

    # validation (SPEC §4.6: back-test and true-up, tasks/pipeline/validation.py)
    backtest_months: int = Field(1, ge=1, le=11, description="the back-test estimates as at run_date minus this many months")
    backtest_registers: int = Field(5000, ge=0, description="back-test the first shards holding at least this many interval registers (0 = every shard)")

    # pre-run checks (SPEC §4.0, tasks/domain/prechecks.py; docs/METHOD.md "Pre-run checks")
    precheck_coverage_pass: float = Field(0.95, ge=0, le=1, description="share of interval registers with data in the 7 days before the run date for PASS")
    precheck_coverage_fail: float = Field(0.80, ge=0, le=1, description="below this share: FAIL")
    precheck_invoice_warn_days: int = Field(3, ge=0, description="WARN when the newest invoice is older than this many days")
    precheck_invoice_fail_days: int = Field(10, ge=0, description="FAIL when the newest invoice is older than this many days")
    precheck_stale_basic_warn: float = Field(0.05, ge=0, le=1, description="WARN above this share of basic registers without a read within their cycle + a month")
    precheck_stale_basic_fail: float = Field(0.25, ge=0, le=1, description="FAIL above this share")

    # --- orchestration (flows/monthly.py, tasks/adapters/run_lock.py) ---
    result_url: str | None = Field(
        None, description="Prefect task-result storage, path or s3:// (default OUTPUT_URL/prefect-results)"
    )
    run_lock_wait_seconds: float = Field(
        0.0, ge=0, description="how long a second run of the same run date waits for the first (0 = refuse)"
    )
    run_lock_lease_seconds: float = Field(
        120.0, ge=2, description="the run lock's lease: a dead run's lock is taken over this long after its last heartbeat"
    )
    slack_webhook_secret_name: str | None = Field(
        None, description="name of an AWS Secrets Manager secret holding the Slack webhook (bua_monthly)"
    )
    # --- end orchestration ---

    # ---- companion flows (SPEC §7): billing CSV ingest, daily aggregation, revenue alert
    billing_inbox_url: str | None = Field(None, description="s3:// prefix (or folder) where billing CSVs land")
    billing_rejects_url: str | None = Field(None, description="rejects files (default QUARANTINE/billing-csv)")
    aggregate_fresh_tables: list[str] = Field(["invoice", "payment", "billing_record"], description="tables that must have rows for the day")
    aggregate_count_tolerance: float = Field(0.5, ge=0, description="allowed relative change of a day's row count vs the previous day")
    aggregate_history_days: int = Field(90, ge=1, description="days of dated history copies kept")
    successful_payment_statuses: list[str] = Field(["SUCCESS", "SUCCEEDED", "SETTLED", "CLEARED", "COMPLETED"], description="payment.status values that count as received money")
    write_off_method: str = Field("WRITE_OFF", description="payment.method of a write-off (not cash)")
    alert_timezone: str | None = Field(None, description="timezone of the 6-hour revenue windows (default TIMEZONE)")
    slack_webhook_block: str | None = Field(None, description="name of a Prefect Secret block holding the Slack webhook")

    @property
    def db_url(self) -> str:
        """The database URL in clear, for the database layer only (never log or store it)."""
        return self.database_url.get_secret_value()

    def storage_options(self) -> dict[str, str]:
        """polars/object_store options for S3 paths (the ``aws_*`` keys polars understands)."""
        opts: dict[str, str] = {"aws_region": self.aws_region}
        if self.s3_endpoint_url:
            opts["aws_endpoint_url"] = self.s3_endpoint_url
            if self.s3_endpoint_url.startswith("http://"):
                opts["aws_allow_http"] = "true"
        if self.aws_access_key_id is not None:
            opts["aws_access_key_id"] = self.aws_access_key_id.get_secret_value()
        if self.aws_secret_access_key is not None:
            opts["aws_secret_access_key"] = self.aws_secret_access_key.get_secret_value()
        return opts

    def quarantine(self) -> str:
        return self.quarantine_url or join_url(self.output_url, "quarantine")


def join_url(base: str, *parts: str) -> str:
    """Join a local path or s3:// prefix with more parts using '/'."""
    out = base.rstrip("/")
    for p in parts:
        out = f"{out}/{p.strip('/')}"
    return out


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with non-None keyword overrides on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
