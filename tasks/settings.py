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
    meter_store: str = Field(
        ".bua/meter-store", description="path or s3:// prefix of the parquet meter store"
    )
    output_url: str = Field(
        ".bua/out", description="path or s3:// prefix for exports, NEM12 estimates, report"
    )
    quarantine_url: str | None = Field(
        None, description="where rejected input goes (default OUTPUT_URL/quarantine)"
    )
    # meter data ingest caps, checked before reading (docs/BAD-INPUTS.md)
    ingest_max_file_bytes: int = Field(
        2 << 30,
        ge=1,
        description="a file, or a zip member declaring more uncompressed bytes, is rejected unread",
    )
    ingest_max_zip_ratio: float = Field(
        500.0,
        gt=1,
        description="a zip member whose uncompressed/compressed size is above this is rejected unread (an all-zero 5-minute NEM12 file deflates 244x; a zip bomb 1000x)",
    )
    ingest_max_line_bytes: int = Field(
        1 << 20, ge=1, description="a NEM12/NEM13 file with a longer line is rejected"
    )
    # meter store deltas (docs/DESIGN.md "meter store", tasks/adapters/meter_deltas.py)
    store_max_deltas: int = Field(
        8,
        ge=0,
        description="an ingest into a partition already holding this many delta files folds them into it instead of adding one (0: never write deltas)",
    )
    store_delta_fraction: float = Field(
        0.5,
        ge=0,
        description="an ingest writes a delta only while the partition's deltas (with the new rows) hold fewer register-days than this share of the partition; else it folds them",
    )
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
    read_threads: int = Field(
        0,
        ge=0,
        description="extraction queries read at once (connectorx: one database connection and one core "
        "each); 0 = max_workers",
    )
    dask_address: str | None = Field(None, description="Dask scheduler address; None = local cluster")
    shard_tasks: int | None = Field(
        None,
        ge=0,
        description="task runs per per-shard phase in bua_monthly: the shards in this many contiguous "
        "groups, one task run each, run one shard after another (outputs, manifests and cache keys "
        "stay per shard); 0 = one task run per shard; None = 4 x max_workers on the thread runner, one "
        "per shard on Dask (docs/ORCHESTRATION.md, Shard groups)",
    )
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
    use_weather: bool = Field(
        True, description="basic estimation uses weather_daily where it has observations"
    )
    profile_composition: bool = Field(
        True,
        description="segment profiles are scaled to one register size whoever reported that day "
        "(docs/METHOD.md, 'Segment profiles: who reports'); false: SPEC §4.2's plain mean",
    )

    # validation (SPEC §4.6: back-test and true-up, tasks/pipeline/validation.py)
    backtest_months: int = Field(
        1, ge=1, le=11, description="the back-test estimates as at run_date minus this many months"
    )
    backtest_registers: int = Field(
        5000,
        ge=0,
        description="back-test the first shards holding at least this many interval registers (0 = every shard)",
    )

    # pre-run checks (SPEC §4.0, tasks/domain/prechecks.py; docs/METHOD.md "Pre-run checks")
    precheck_coverage_pass: float = Field(
        0.95,
        ge=0,
        le=1,
        description="share of interval registers with data in the 7 days before the run date for PASS",
    )
    precheck_coverage_fail: float = Field(0.80, ge=0, le=1, description="below this share: FAIL")
    precheck_invoice_warn_days: int = Field(
        3, ge=0, description="WARN when the newest invoice is older than this many days"
    )
    precheck_invoice_fail_days: int = Field(
        10, ge=0, description="FAIL when the newest invoice is older than this many days"
    )
    precheck_stale_basic_warn: float = Field(
        0.05,
        ge=0,
        le=1,
        description="WARN above this share of basic registers without a read within their cycle + a month",
    )
    precheck_stale_basic_fail: float = Field(0.25, ge=0, le=1, description="FAIL above this share")

    # --- orchestration (flows/monthly.py, tasks/adapters/run_lock.py) ---
    result_url: str | None = Field(
        None, description="Prefect task-result storage, path or s3:// (default OUTPUT_URL/prefect-results)"
    )
    run_lock_wait_seconds: float = Field(
        0.0, ge=0, description="how long a second run of the same run date waits for the first (0 = refuse)"
    )
    run_lock_lease_seconds: float = Field(
        120.0,
        ge=2,
        description="the run lock's lease: a dead run's lock is taken over this long after its last heartbeat",
    )
    slack_webhook_secret_name: str | None = Field(
        None, description="name of an AWS Secrets Manager secret holding the Slack webhook (bua_monthly)"
    )
    # --- end orchestration ---

    # ---- companion flows (SPEC §7): billing CSV ingest, daily aggregation, revenue alert
    billing_inbox_url: str | None = Field(
        None, description="s3:// prefix (or folder) where billing CSVs land"
    )
    billing_rejects_url: str | None = Field(
        None, description="rejects files (default QUARANTINE/billing-csv)"
    )
    aggregate_fresh_tables: list[str] = Field(
        ["invoice", "payment", "billing_record"], description="tables that must have rows for the day"
    )
    aggregate_count_tolerance: float = Field(
        0.5, ge=0, description="allowed relative change of a day's row count vs the previous day"
    )
    aggregate_history_days: int = Field(90, ge=1, description="days of dated history copies kept")
    successful_payment_statuses: list[str] = Field(
        ["SUCCESS", "SUCCEEDED", "SETTLED", "CLEARED", "COMPLETED"],
        description="payment.status values that count as received money",
    )
    write_off_method: str = Field("WRITE_OFF", description="payment.method of a write-off (not cash)")
    alert_timezone: str | None = Field(
        None, description="timezone of the 6-hour revenue windows (default TIMEZONE)"
    )
    slack_webhook_block: str | None = Field(
        None, description="name of a Prefect Secret block holding the Slack webhook"
    )

    # ==== legacy sources (issue 16): all off by default; none is needed for `bua demo` ====
    # AWS clients for these: a prefect-aws AwsCredentials block when named, else the SDK's chain.
    aws_credentials_block: str | None = Field(
        None, description="prefect-aws AwsCredentials block name (None = boto3's default chain)"
    )
    aws_endpoint_url: str | None = Field(
        None, description="one endpoint for RDS/KMS/Route 53/Secrets Manager/EKS (tests: moto)"
    )
    # restore the billing database from a shared RDS snapshot, tear it down after the run
    rds_restore: bool = Field(
        False, description="restore the billing database from rds_source_snapshot before the run"
    )
    rds_teardown: bool = Field(False, description="delete the restored instance after the run")
    rds_source_snapshot: str | None = Field(None, description="ARN or id of the shared, encrypted snapshot")
    rds_kms_key_id: str | None = Field(
        None, description="the project's KMS key (id, ARN or alias) the copy is encrypted with"
    )
    rds_instance_prefix: str = Field(
        "bua-billing", description="instances and snapshots are named {prefix}-{run_date:%Y%m%d}"
    )
    rds_instance_class: str = "db.r6g.large"
    rds_parameter_group: str | None = None
    rds_subnet_group: str | None = None
    rds_security_group_ids: list[str] = Field(default_factory=list)
    rds_wait_timeout_seconds: float = Field(
        3600.0, gt=0, description="bound on each wait for the snapshot copy / instance"
    )
    rds_poll_seconds: float = Field(30.0, gt=0)
    rds_final_snapshot: bool = Field(False, description="teardown takes a final snapshot {name}-final first")
    rds_app_user: str = Field("bua", description="application user whose password is reset from the secret")
    rds_password_secret: str | None = Field(
        None, description="Secrets Manager secret (id/ARN) with the application user's password"
    )
    rds_database_name: str = Field(
        "billing", description="schema/database name in the restored instance's URL"
    )
    rds_url_driver: str = Field(
        "mysql+pymysql", description="SQLAlchemy driver of the restored instance's URL"
    )
    rds_route53_zone_id: str | None = Field(
        None, description="hosted zone of the alias (None = no DNS change)"
    )
    rds_route53_name: str | None = Field(
        None, description="record (e.g. billing-db.internal.example.) pointed at the instance"
    )
    # warm the database before the extract
    db_warmup: bool = Field(
        False, description="ANALYZE the extract's tables and read their indexes before the extract"
    )
    # external billing engine on Kubernetes (instead of bua's rating)
    engine_enabled: bool = Field(False, description="use the external billing engine's invoice runs")
    engine_namespace: str = "billing"
    engine_deployments: dict[str, int] = Field(
        default_factory=dict, description="deployment name -> replicas while running"
    )
    engine_kube_context: str | None = Field(
        None, description="kubeconfig context (None = in-cluster, else default kubeconfig)"
    )
    engine_kube_host: str | None = Field(
        None, description="API server URL overriding kubeconfig (tests: a local server)"
    )
    engine_eks_cluster: str | None = None
    engine_eks_nodegroup: str | None = None
    engine_eks_nodes: int = Field(
        0, ge=0, description="desired nodes while running (0 = leave the node group alone)"
    )
    engine_trigger: Literal["sql", "http"] = "sql"
    engine_trigger_sql: str = Field(
        "engine_trigger", description="sql/{name}.sql: CALLs the engine's procedure for :run_date"
    )
    engine_status_sql: str = Field(
        "engine_status", description="sql/{name}.sql: the run's status for :run_date"
    )
    engine_lines_sql: str = Field(
        "engine_invoice_lines",
        description="sql/{name}.sql: the run's lines in invoice_line_item_monthly shape",
    )
    engine_http_url: str | None = Field(
        None, description="engine endpoint: POST {url}/runs, GET {url}/runs/{id}"
    )
    engine_http_token: SecretStr | None = None
    engine_timeout_seconds: float = Field(7200.0, gt=0)
    engine_poll_seconds: float = Field(15.0, gt=0)
    # anonymised copies (`bua anonymise`)
    anonymise_key: SecretStr | None = Field(
        None, description="HMAC key of the pseudonyms (or anonymise_key_secret)"
    )
    anonymise_key_secret: str | None = Field(None, description="Secrets Manager secret holding the HMAC key")
    anonymise_nmi_keep: int = Field(
        4, ge=0, le=9, description="leading NMI/MIRN characters kept (the network's allocation block)"
    )
    # ==== end legacy sources ====
    # plausibility caps (issue 17): meter data above them is IMPLAUSIBLE_VALUE and estimated (docs/METHOD.md)
    plausible_kw_residential: float = Field(
        50.0, gt=0, description="max demand (kW) of a residential register: interval cap = kW x minutes / 60"
    )
    plausible_kw_business: float = Field(2000.0, gt=0, description="max demand (kW) of a business register")
    plausible_day_kwh_residential: float = Field(
        600.0, gt=0, description="cap on a residential register's kWh per day"
    )
    plausible_day_kwh_business: float = Field(
        40000.0, gt=0, description="cap on a business register's kWh per day"
    )
    plausible_day_mj_residential: float = Field(
        5000.0, gt=0, description="cap on a residential gas register's MJ per day"
    )
    plausible_day_mj_business: float = Field(
        200000.0, gt=0, description="cap on a business gas register's MJ per day"
    )
    plausible_allow_negative: bool = Field(
        False, description="negative interval values are plausible (else IMPLAUSIBLE_VALUE)"
    )

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
