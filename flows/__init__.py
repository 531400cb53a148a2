"""Prefect flows, deployments' entry points and the `bua` CLI. Importing ``tasks`` first sets the
polars allocator's page decay before anything loads polars (tasks/__init__.py)."""

import tasks  # noqa: F401
