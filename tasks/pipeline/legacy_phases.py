"""Optional phases for the legacy sources (issue 16), each a plain function of the run and the worker's Settings.

Off unless their setting is on; none is used by `bua demo`. What each reads and writes (for the
phase graph), and where it goes:

- ``rds_restore`` (first, before the pre-run checks; needs ``BUA_RDS_RESTORE``): returns the
  one-row frame ``restored_database`` (instance, snapshot, host, port, engine, reused) — never a
  URL or a password.
- :func:`run_settings` is not a phase: the worker calls it when it resolves Settings for a run, so
  every later phase reads the restored instance (the URL with the password exists only in the
  worker's memory; flow/task parameters and results never carry it).
- ``db_warmup`` (after ``rds_restore``, before ``extract``; ``BUA_DB_WARMUP``): returns
  ``warmup_report`` (table, step, index, seconds).
- ``engine_lines`` (instead of ``rating``'s lines when ``BUA_ENGINE_ENABLED``; after ``extract``):
  returns ``invoice_line_item_monthly`` rows (SPEC §4.5 shape, with run_id/run_date) for
  ``prepare``; scales the engine down on failure too.
- ``rds_teardown`` (last, after ``prepare``/``export`` succeeded; ``BUA_RDS_TEARDOWN``): returns
  ``teardown_report``. On a failed run it is not run: the instance stays for the retry, which
  reuses it; the next run date's ``rds_restore`` removes it (tagged orphan).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
from pydantic import SecretStr

from tasks.settings import Settings


def rds_restore(run_date: dt.date, settings: Settings) -> pl.DataFrame:
    from tasks.adapters import rds

    cfg = rds.RdsConfig.from_settings(settings)
    db = rds.restore(rds.Clients.for_config(cfg), cfg, run_date)
    return pl.DataFrame([dataclasses.asdict(db)])


def run_settings(settings: Settings, run_date: dt.date) -> Settings:
    """Settings whose database_url is the restored instance's (alias host when configured); unchanged when off."""
    if not settings.rds_restore:
        return settings
    from tasks.adapters import rds

    cfg = rds.RdsConfig.from_settings(settings)
    return settings.model_copy(
        update={"database_url": SecretStr(rds.database_url(rds.Clients.for_config(cfg), cfg, run_date))}
    )


def db_warmup(settings: Settings) -> pl.DataFrame:
    from tasks.adapters.warmup import warm_up

    return warm_up(settings.db_url)


def engine_lines(run_date: dt.date, run_id: str, settings: Settings) -> pl.DataFrame:
    from tasks.adapters import billing_engine as be

    token = settings.engine_http_token.get_secret_value() if settings.engine_http_token else None
    return be.engine_lines(
        be.EngineConfig.from_settings(settings), settings.db_url, run_date, run_id, http_token=token
    )


def rds_teardown(run_date: dt.date, settings: Settings) -> pl.DataFrame:
    from tasks.adapters import rds

    cfg = rds.RdsConfig.from_settings(settings)
    return pl.DataFrame([dataclasses.asdict(rds.teardown(rds.Clients.for_config(cfg), cfg, run_date))])
