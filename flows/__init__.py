"""Prefect flows, deployments' entry points and the `bua` CLI. Importing ``tasks`` first sets the
polars allocator's page decay before anything loads polars (tasks/__init__.py). Every flow and
task run log record of this process passes through ``tasks.redact`` (docs/DEPLOY.md "Secrets")."""

import tasks  # noqa: F401
from tasks.redact import install_log_redaction

install_log_redaction()
