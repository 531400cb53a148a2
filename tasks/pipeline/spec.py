"""One run's specification: the run parameters of SPEC §4 with their defaults, the run_id and the code
version — the only thing a flow or task run is given (the Prefect server stores and shows it, so it
holds no location, URL or secret: the worker resolves those from its own Settings).

The run_id is deterministic (uuid5 of the parameters that change the figures), so a resumed or
repeated run writes the same bytes; a what-if scenario gets its own run_id and never replaces the
booked run's outputs (SPEC §4.5).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from tasks.settings import Settings

REPO = Path(__file__).resolve().parents[2]
RUN_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-4e0f-9b57-2a1c0d9e7b11")
BOOKED = ""  # the scenario of the booked run
BasicMethod = Literal["scalar", "seasonal"]
_SCENARIO = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class RunParameterError(ValueError):
    """A run parameter that cannot be used (bad date order, unknown method, bad scenario name)."""


@dataclass(frozen=True)
class RunSpec:
    """The parameters of one month-end run (JSON-safe, no secrets, no locations)."""

    run_date: dt.date
    period_start: dt.date
    period_end: dt.date
    basic_method: str
    shards: int
    scenario: str = BOOKED
    backtest_months: int = 1
    code_version: str = ""
    run_id: str = field(default="")

    @property
    def booked(self) -> bool:
        return self.scenario == BOOKED

    @property
    def label(self) -> str:
        """``2026-11-01`` for the booked run, ``2026-11-01 (what-if: name)`` for a scenario."""
        day = self.run_date.isoformat()
        return day if self.booked else f"{day} (what-if: {self.scenario})"

    def parameters(self) -> dict[str, Any]:
        """What ``bua_run.parameters`` records and what the cache keys hash."""
        return {
            "run_date": self.run_date.isoformat(),
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "basic_method": self.basic_method,
            "shards": self.shards,
            "scenario": self.scenario,
            "backtest_months": self.backtest_months,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.parameters(), "code_version": self.code_version, "run_id": self.run_id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        day = dt.date.fromisoformat
        return cls(
            run_date=day(data["run_date"]),
            period_start=day(data["period_start"]),
            period_end=day(data["period_end"]),
            basic_method=data["basic_method"],
            shards=int(data["shards"]),
            scenario=data.get("scenario", BOOKED),
            backtest_months=int(data.get("backtest_months", 1)),
            code_version=data.get("code_version", ""),
            run_id=data.get("run_id", ""),
        )


def default_run_date(timezone: str) -> dt.date:
    """Today in the retailer's timezone (the scheduled run on the 1st accrues as at that day)."""
    return dt.datetime.now(ZoneInfo(timezone)).date()


def default_period_start(run_date: dt.date) -> dt.date:
    """The 1st of the month twelve months before the run date (the look-back cap, SPEC §4)."""
    return dt.date(run_date.year - 1, run_date.month, 1)


def run_id_for(spec: RunSpec) -> str:
    """uuid5 of what changes the figures; the booked run's formula is the one bua always had."""
    key = f"{spec.run_date}|{spec.period_start}|{spec.period_end}|{spec.basic_method}|{spec.shards}"
    if not spec.booked:
        key += f"|scenario={spec.scenario}"
    return str(uuid.uuid5(RUN_NAMESPACE, key))


@lru_cache(maxsize=1)
def code_version() -> str:
    """``{package version}+{sha256 of the tasks/ and sql/ sources}[:12]``: changes when the engine does."""
    try:
        version = metadata.version("bua")
    except metadata.PackageNotFoundError:  # pragma: no cover - a checkout without an install
        version = "0"
    h = hashlib.sha256()
    for folder in ("tasks", "sql"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in (".py", ".sql") and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(REPO)).encode())
                h.update(path.read_bytes())
    return f"{version}+{h.hexdigest()[:12]}"


def resolve_run(
    settings: Settings,
    run_date: dt.date | None = None,
    period_start: dt.date | None = None,
    period_end: dt.date | None = None,
    basic_method: str | None = None,
    shards: int | None = None,
    scenario: str | None = None,
    backtest_months: int | None = None,
) -> RunSpec:
    """The run's parameters with SPEC §4's defaults, checked; settings give the defaults only."""
    r = run_date or default_run_date(settings.timezone)
    if r.year < 2000 or r.year > 2100:
        raise RunParameterError(f"run date {r} is outside 2000-01-01 … 2100-12-31")
    start = period_start or default_period_start(r)
    end = period_end or r - dt.timedelta(days=1)
    if start > end:
        raise RunParameterError(f"period_start {start} is after period_end {end}")
    if end >= r:
        raise RunParameterError(f"period_end {end} must be before the run date {r}")
    method = basic_method or settings.basic_method
    if method not in ("scalar", "seasonal"):
        raise RunParameterError(f"basic method must be scalar or seasonal, got {method!r}")
    months = backtest_months if backtest_months is not None else settings.backtest_months
    if not 1 <= months <= 11:
        raise RunParameterError(f"backtest_months must be 1 to 11, got {months}")
    name = (scenario or BOOKED).strip()
    if name and not _SCENARIO.match(name):
        raise RunParameterError(
            f"scenario {name!r}: use 1-40 lower-case letters, digits, '-' or '_' (it names a folder)"
        )
    n = shards or settings.shards
    spec = RunSpec(r, start, end, method, n, name, months, code_version())
    return replace(spec, run_id=run_id_for(spec))


def spec_dict(spec: RunSpec) -> dict[str, Any]:
    return asdict(spec)
