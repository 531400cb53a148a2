"""The engine's phase functions as the flow calls them (DESIGN.md "Pipeline phases").

``tasks.pipeline.accrual``'s phases take any object with the run's parameters (its ``Ctx`` protocol:
settings, run_date, period_start, period_end, basic_method, run_id), which
:class:`flows.glue.RunSpec` is, so they are used as they are: one function per phase, ``fn(spec)``
or ``fn(spec, shard)``, returning the URLs written (or files + stats for prepare). Tests swap this
module for ``tests.flows.fake_pipeline`` through ``BUA_PIPELINE``.
"""

from __future__ import annotations

from tasks.pipeline.accrual import (
    PHASES,
    basic_estimates,
    exceptions,
    export,
    extract,
    gas_shape,
    interval_estimates,
    prepare,
    profiles_combine,
    profiles_partial,
    rating,
    read_pairs,
    scalars,
    segments,
    windows,
)

__all__ = [
    "PHASES",
    "basic_estimates",
    "exceptions",
    "export",
    "extract",
    "gas_shape",
    "interval_estimates",
    "prepare",
    "profiles_combine",
    "profiles_partial",
    "rating",
    "read_pairs",
    "scalars",
    "segments",
    "windows",
]
