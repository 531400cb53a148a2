"""What a flow run resolves inside the worker, never from its parameters: the Settings (environment,
CLI options), where Prefect persists task results, and the task runner."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from tasks.settings import Settings, join_url, load_settings

_settings_override: ContextVar[Settings | None] = ContextVar("bua_settings", default=None)


@contextmanager
def use_settings(settings: Settings) -> Iterator[None]:
    """Run flows in this context with ``settings`` (the CLI's options) instead of the environment
    (threads of the task runner inherit the context; Dask workers read their own environment)."""
    token = _settings_override.set(settings)
    try:
        yield
    finally:
        _settings_override.reset(token)


def current_settings() -> Settings:
    return _settings_override.get() or load_settings()


def run_settings(**overrides: object) -> Settings:
    """The worker's Settings with a flow run's non-None, non-secret parameters on top (the companion
    flows' output location, tolerances …). Credentials never come in as parameters."""
    extra = {k: v for k, v in overrides.items() if v is not None}
    return current_settings().model_copy(update=extra) if extra else current_settings()


def result_storage(settings: Settings) -> Any:
    """Where Prefect persists task results: an S3Bucket block for s3://, else a local folder.

    The block is saved server-side under a name derived from the location (``bua-results-{hash}``),
    so every run and every ECS task resolves the same storage. No keys are stored in it: on ECS the
    task role's credentials are used, and tests give moto's endpoint through the environment.
    """
    url = settings.result_url or join_url(settings.output_url, "prefect-results")
    block: Any
    if url.startswith("s3://"):
        from prefect_aws import AwsCredentials, S3Bucket
        from prefect_aws.client_parameters import AwsClientParameters

        bucket, _, folder = url[len("s3://") :].partition("/")
        creds = AwsCredentials(
            region_name=settings.aws_region,
            aws_client_parameters=AwsClientParameters(endpoint_url=settings.s3_endpoint_url),
        )
        block = S3Bucket(bucket_name=bucket, bucket_folder=folder, credentials=creds)
    else:
        from prefect.filesystems import LocalFileSystem

        url = str(Path(url).resolve())
        block = LocalFileSystem(basepath=url)
    return _saved(block, f"bua-results-{hashlib.sha256(url.encode()).hexdigest()[:16]}")


_saved_blocks: dict[tuple[str, str], Any] = {}


def _saved(block: Any, name: str) -> Any:
    """Save ``block`` under ``name`` once per process and API."""
    from prefect.settings import PREFECT_API_URL

    key = (PREFECT_API_URL.value() or "ephemeral", block.model_dump_json())
    if key not in _saved_blocks:
        block.save(name, overwrite=True)
        _saved_blocks[key] = block
    return _saved_blocks[key]


def task_runner(settings: Settings) -> Any:
    """ThreadPoolTaskRunner (max_workers from settings) by default; Dask by setting."""
    if settings.task_runner == "dask":
        import dask
        from prefect_dask import DaskTaskRunner

        # extract reads the billing database in child processes: a local cluster's workers must not be
        # daemonic (a remote cluster's workers set DASK_DISTRIBUTED__WORKER__DAEMON=False, infra/dask)
        dask.config.set({"distributed.worker.daemon": False})

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": settings.max_workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=settings.max_workers)
