"""Fingerprints, cache keys and output manifests of the phase tasks (docs/ORCHESTRATION.md).

- A **location's version**: a local file's size, mtime, ctime and inode (every atomic write makes a
  new inode), an S3 object's size and ETag, a table's row count for the run (``table:NAME``). The
  bytes are never read back (gigabytes of work files at 100k accounts).
- A **task's fingerprint**: sha256 of the versions of what it wrote and its stats; what depends on
  it hashes that into its own cache key.
- A **source's fingerprint** (cheap, taken at the start of every run): row count and greatest key
  of every source table; the meter store's files per shard; the previous run's totals.
- A task's **cache key**: phase, shard, the run's parameters, the output-relevant settings, the code
  version and its inputs' fingerprints.
- A task's **manifest** (beside the work files): the versions of what it wrote. A cached task whose
  outputs are gone or changed (a deleted CSV, the run's rows deleted from a table) is re-run.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tasks.adapters import storage
from tasks.adapters.db import engine_for, redact_url
from tasks.pipeline.spec import RunSpec
from tasks.settings import Settings, join_url

# Settings that change what a run computes or where it writes (the rest — runners, retries,
# secrets, Slack, lock timings — are not in the cache keys).
KEY_SETTINGS = (
    "meter_store", "output_url", "quarantine_url", "integration_url", "segment_with_tni", "gst_rate",
    "grace_days", "min_registers", "max_rows_per_file", "timezone", "reporting_currency", "use_weather",
    "engine_enabled",  # the external billing engine's lines instead of rating's (issue 16)
)  # fmt: skip
# Run parameters and settings that only some phases read: in their keys only (Phase.keyed_by), so
# `bua run --backtest-months 3` after a month end recomputes the validation and what reads it.
PHASE_ONLY = ("backtest_months", "backtest_registers")


def sha(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def settings_key(settings: Settings) -> dict[str, Any]:
    """The output-relevant settings; the database by its redacted URL (no password in a key)."""
    out = {name: getattr(settings, name) for name in KEY_SETTINGS}
    out.update({k: v for k, v in settings.model_dump().items() if k.startswith("plausible_")})
    out["database"] = redact_url(settings.db_url)
    return out


def cache_key(
    spec: RunSpec,
    settings: Settings,
    phase: str,
    shard: int | None,
    inputs: dict[str, Any],
    keyed_by: tuple[str, ...] = (),
) -> str:
    run = {k: v for k, v in spec.parameters().items() if k not in PHASE_ONLY}
    values = {**settings.model_dump(include=set(PHASE_ONLY)), **spec.parameters()}
    digest = sha(
        {
            "phase": phase,
            "shard": shard,
            "run": run,
            "only": {k: values[k] for k in sorted(keyed_by)},
            "code_version": spec.code_version,
            "settings": settings_key(settings),
            "inputs": inputs,
        }
    )
    where = "all" if shard is None else f"{shard:03d}"
    return f"bua-{spec.run_date.isoformat()}-{phase}-{where}-{digest[:40]}"


def group_key(spec: RunSpec, phase: str, shards: list[int], keys: list[str]) -> str:
    """The cache key of a task run over a group of shards (flows/phase_tasks.py): made of its
    shards' own keys, and never equal to one of them (a group's result holds one per shard)."""
    where = f"g{shards[0]:03d}-{shards[-1]:03d}"
    return f"bua-{spec.run_date.isoformat()}-{phase}-{where}-{sha({'group': shards, 'keys': keys})[:40]}"


def version(location: str, spec: RunSpec, settings: Settings) -> str:
    """The current version of a written location ('-' when it is gone)."""
    if location.startswith("table:"):
        return _table_version(location[len("table:") :], spec, settings)
    if storage.is_s3(location):
        try:
            info = storage._fs(settings).info(location[len("s3://") :])
        except (FileNotFoundError, IsADirectoryError):
            return "-"
        return "-" if info.get("type") == "directory" else f"{info.get('size')}:{info.get('ETag', '')}"
    try:
        st = os.stat(location)
    except (FileNotFoundError, NotADirectoryError):
        return "-"
    if not stat.S_ISREG(st.st_mode):
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def _table_version(table: str, spec: RunSpec, settings: Settings) -> str:
    from sql.schema import metadata

    tbl = metadata.tables[table]
    with engine_for(settings.db_url).connect() as conn:
        n = conn.execute(
            sa.select(sa.func.count())
            .select_from(tbl)
            .where((tbl.c.run_date == spec.run_date) & (tbl.c.run_id == spec.run_id))
        ).scalar()
    return f"rows:{n}"


def relative(location: str, settings: Settings) -> str:
    base = settings.output_url.rstrip("/") + "/"
    if location.startswith(base):
        return location[len(base) :]
    if not location.startswith(("s3://", "table:")):
        try:
            return str(Path(location).resolve().relative_to(Path(settings.output_url).resolve()))
        except ValueError:
            pass
    return location


def versions(locations: list[str], spec: RunSpec, settings: Settings) -> dict[str, str]:
    return {loc: version(loc, spec, settings) for loc in sorted(set(locations))}


def fingerprint(written: dict[str, str], stats: dict[str, Any], settings: Settings) -> str:
    """A task's fingerprint: what it wrote (relative names, versions) and its stats."""
    return sha({"written": {relative(k, settings): v for k, v in written.items()}, "stats": stats})


# ---------------------------------------------------------------- manifests


def manifest_url(spec: RunSpec, settings: Settings, phase: str, shard: int | None) -> str:
    name = phase if shard is None else f"{phase}.{shard:03d}"
    root = join_url(settings.output_url, "work", spec.run_date.isoformat(), spec.run_id)
    return join_url(root, "_manifests", f"{name}.json")


def write_manifest(
    spec: RunSpec, settings: Settings, phase: str, shard: int | None, written: dict[str, str]
) -> None:
    data = json.dumps({"written": written}, sort_keys=True).encode()
    storage.write_bytes_atomic(data, manifest_url(spec, settings, phase, shard), settings)


def outputs_intact(spec: RunSpec, settings: Settings, phase: str, shard: int | None) -> bool:
    """Whether everything the task last wrote is still there, unchanged (False: no manifest)."""
    url = manifest_url(spec, settings, phase, shard)
    try:
        written = json.loads(storage.read_bytes(url, settings))["written"]
    except (FileNotFoundError, KeyError, ValueError):
        return False
    return all(v != "-" and version(loc, spec, settings) == v for loc, v in written.items())


# ---------------------------------------------------------------- sources


def source_fingerprints(spec: RunSpec, settings: Settings) -> dict[str, Any]:
    """``billing_source`` (table counts and greatest keys), ``meter_data`` per shard (files, sizes,
    mtimes/ETags), ``previous_accrual`` (the previous run's totals) and ``prechecks`` (the run's
    recorded pre-run checks)."""
    return {**data_fingerprints(spec, settings), **prechecks_fingerprint(spec, settings)}


def prechecks_fingerprint(spec: RunSpec, settings: Settings) -> dict[str, Any]:
    """The fingerprint of the run's pre-run checks as recorded (taken once they are)."""
    from tasks.pipeline.prechecks import recorded

    return {"prechecks": sha(recorded(settings, spec).rows())}


def data_fingerprints(spec: RunSpec, settings: Settings) -> dict[str, Any]:
    """Every source's fingerprint but the pre-run checks': what the run reads, not what it recorded.
    ``bua_monthly`` takes these beside the pre-run checks (they read, the checks read and then
    record a table none of these fingerprints covers), so neither waits for the other."""
    from sql.schema import SOURCE_TABLES, metadata
    from tasks.adapters.validation_tables import previous_run_fingerprint

    counts: dict[str, Any] = {}
    engine = engine_for(settings.db_url)
    present = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        for name in SOURCE_TABLES:
            if name not in present:
                continue
            table = metadata.tables[name]
            cols: list[Any] = [sa.func.count()]
            pk = list(table.primary_key.columns)
            if len(pk) == 1:
                cols.append(sa.func.max(pk[0]))
            counts[name] = [str(v) for v in conn.execute(sa.select(*cols).select_from(table)).one()]
    per_shard: dict[int, list[Any]] = {}
    for entry in _store_listing(settings):
        shard = _shard_of(entry[0])
        per_shard.setdefault(-1 if shard is None else shard, []).append(entry)
    common = sha(per_shard.get(-1, []))
    return {
        "billing_source": sha(counts),
        "meter_data": [sha([common, per_shard.get(s, [])]) for s in range(spec.shards)],
        "previous_accrual": sha(previous_run_fingerprint(settings.db_url, spec.run_date)),
        "booked_summary": "" if spec.booked else sha(_booked_totals(spec, settings)),
    }


def _booked_totals(spec: RunSpec, settings: Settings) -> list[str]:
    """Count and sums of the booked run's accrual_summary of the run date (what a what-if compares with)."""
    from sql.schema import metadata

    acc = metadata.tables["accrual_summary"]
    query = sa.select(
        sa.func.count(), sa.func.sum(acc.c.net_amount_less_discount), sa.func.sum(acc.c.volume)
    ).where((acc.c.run_date == spec.run_date) & (acc.c.scenario == ""))
    with engine_for(settings.db_url).connect() as conn:
        return [str(v) for v in conn.execute(query).one()]


def _store_listing(settings: Settings) -> list[list[Any]]:
    if storage.is_s3(settings.meter_store):
        fs = storage._fs(settings)
        base = settings.meter_store[len("s3://") :].rstrip("/")
        if not fs.exists(base):
            return []
        return [
            [k[len(base) :], i.get("size"), str(i.get("ETag", ""))]
            for k, i in sorted(fs.find(base, detail=True).items())
        ]
    root = Path(settings.meter_store)
    if not root.exists():
        return []
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out.append([str(p.relative_to(root)), st.st_size, st.st_mtime_ns])
    return out


def _shard_of(path: str) -> int | None:
    for part in path.split("/"):
        if part.startswith("shard="):
            try:
                return int(part[len("shard=") :])
            except ValueError:
                return None
    return None
