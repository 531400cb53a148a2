"""Fingerprints and cache keys of ``bua_monthly``'s phase tasks (see flows/glue.py).

A phase's fingerprint is a sha256 over the files it wrote (names relative to the output location,
and bytes), whole, for the files outside ``shard=NNN`` folders, and per shard. A task's cache key
hashes the phase, the shard, the run's output-relevant parameters, its inputs' fingerprints (the
shard's own where the upstream has per-shard ones) and the code version. The run's inputs are
fingerprinted cheaply: source-table row counts and greatest keys, meter-store file listings.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.settings import Settings

if TYPE_CHECKING:
    from flows.glue import RunSpec


def _sha(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def files_fingerprint(urls: list[str], settings: Settings) -> tuple[str, str, dict[int, str]]:
    """sha256 over the files a phase wrote, whole and per ``shard=NNN`` path part.

    Each file counts by its name (relative to the output location) and its *version*: size, mtime,
    ctime and inode of a local file (every atomic write makes a new inode), size and ETag of an S3
    object (the content's MD5 for a single-part upload); never by reading the bytes back, which at
    100k accounts meant hashing gigabytes of work files after every phase. So a phase that
    re-executes changes its fingerprint even when it wrote the same bytes, and what depends on it
    re-executes too (docs/ORCHESTRATION.md "Caching and resume"). A URL that is not a file (a table
    name, a folder that was not created) counts by its name.
    """
    whole, common = hashlib.sha256(), hashlib.sha256()
    per_shard: dict[int, Any] = {}
    for url in sorted(set(urls)):
        name = _relative_name(url, settings)
        line = f"{name}\0{_file_version(url, settings)}\n".encode()
        whole.update(line)
        shard = _shard_of(url)
        if shard is None:
            common.update(line)
        else:
            per_shard.setdefault(shard, hashlib.sha256()).update(line)
    return whole.hexdigest(), common.hexdigest(), {k: v.hexdigest() for k, v in per_shard.items()}


def _file_version(url: str, settings: Settings) -> str:
    """``size:mtime_ns:ctime_ns:inode`` of a local file, ``size:ETag`` of an S3 object, ``-`` if none."""
    from tasks.adapters import storage

    if storage.is_s3(url):
        try:
            info = storage._fs(settings).info(url[len("s3://") :])
        except (FileNotFoundError, IsADirectoryError):
            return "-"
        if info.get("type") == "directory":
            return "-"
        return f"{info.get('size')}:{info.get('ETag', '')}"
    try:
        st = os.stat(url)
    except (FileNotFoundError, NotADirectoryError):
        return "-"
    if not stat.S_ISREG(st.st_mode):
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def _relative_name(url: str, settings: Settings) -> str:
    """The URL relative to the output location, so that two output locations compare equal."""
    base = settings.output_url.rstrip("/") + "/"
    if url.startswith(base):
        return url[len(base) :]
    if not url.startswith("s3://"):
        try:
            return str(Path(url).resolve().relative_to(Path(settings.output_url).resolve()))
        except ValueError:
            pass
    return url


def _shard_of(url: str) -> int | None:
    for part in url.split("/"):
        if part.startswith("shard="):
            try:
                return int(part[len("shard=") :])
            except ValueError:
                return None
    return None


def source_fingerprint(settings: Settings, tables: bool = True) -> tuple[str, dict[int, str]]:
    """Cheap fingerprint of a run's inputs: billing-database tables and the meter store.

    Database: row count and greatest primary key of every source table (SQLAlchemy Core over the
    schema metadata, no hand-written SQL). Meter store: each file's path, size and mtime (local) or
    ETag (S3), also per ``shard=NNN`` so that new data in one shard re-runs only that shard's
    meter-reading phases. An in-place UPDATE that changes neither count nor key is not seen: run
    with ``refresh=True`` after such a fix.
    """
    import sqlalchemy as sa

    from sql.schema import SOURCE_TABLES, metadata
    from tasks.adapters import db, storage

    counts: dict[str, Any] = {}
    if tables:
        engine = db.engine_for(settings.database_url)
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
    store: list[list[Any]] = []
    if storage.is_s3(settings.meter_store):
        fs = storage._fs(settings)
        base = settings.meter_store[len("s3://") :].rstrip("/")
        if fs.exists(base):
            for key, info in sorted(fs.find(base, detail=True).items()):
                store.append([key[len(base) :], info.get("size"), str(info.get("ETag", ""))])
    else:
        root = Path(settings.meter_store)
        if root.exists():
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    st = p.stat()
                    store.append([str(p.relative_to(root)), st.st_size, st.st_mtime_ns])
    per_shard: dict[int, list[Any]] = {}
    common: list[Any] = []
    for entry in store:
        shard = _shard_of(entry[0])
        (common if shard is None else per_shard.setdefault(shard, [])).append(entry)
    return _sha({"db": counts, "meter_store": common}), {k: _sha(v) for k, v in per_shard.items()}


def input_fingerprints(inputs: dict[str, Any], shard: int | None) -> dict[str, Any]:
    """The fingerprints a task's cache key depends on: per-shard when the upstream has them."""
    out: dict[str, Any] = {}
    for name, value in sorted(inputs.items()):
        if isinstance(value, list):
            out[name] = [v["fingerprint"] if isinstance(v, dict) else v for v in value]
        elif isinstance(value, dict) and "fingerprint" in value:
            shards = value.get("shard_fingerprints") or {}
            if shard is not None and shards:
                # A per-shard task depends on its own shard's files plus the shared ones only.
                out[name] = [value["phase"], shard, shards.get(shard, "-"), value.get("common_fingerprint")]
            else:
                out[name] = value["fingerprint"]
        else:
            out[name] = value
    return out


def phase_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Cache key of a phase task: phase, shard, run parameters, input fingerprints, code version."""
    spec: RunSpec = parameters["spec"]
    phase: str = parameters["phase"]
    shard: int | None = parameters.get("shard")
    digest = _sha(
        {
            "phase": phase,
            "shard": shard,
            "run": spec.key_fields(),
            "inputs": input_fingerprints(parameters.get("inputs") or {}, shard),
            **extra_key_parts(phase, spec),
        }
    )
    where = "all" if shard is None else f"{shard:03d}"
    return f"bua-{spec.run_date.isoformat()}-{phase}-{where}-{digest[:40]}"


def _previous_run(spec: RunSpec) -> list[str]:
    from tasks.pipeline.validation import previous_run_fingerprint

    return previous_run_fingerprint(spec.settings.database_url, spec.run_date)


# Settings only the validation phase reads (the back-test's as-at date and sample): in its key, not
# in every phase's run parameters (RunSpec.key_fields), so `bua run --backtest-months 3` after a
# month-end run recomputes the validation and what follows it, not the accrual.
PHASE_ONLY_SETTINGS = ("backtest_months", "backtest_registers")


def _backtest_settings(spec: RunSpec) -> dict[str, Any]:
    return {name: getattr(spec.settings, name) for name in PHASE_ONLY_SETTINGS}


# Extra cache-key inputs a phase declares: what it reads that neither the run parameters nor its
# inputs' fingerprints cover. phase -> {key part name: function of the run's spec -> JSON-able value}.
EXTRA_KEY_INPUTS: dict[str, dict[str, Callable[[RunSpec], Any]]] = {
    "validation": {
        # the true-up reads the previous run date's outputs (bua_account_summary), which no input
        # fingerprint covers
        "previous_run": _previous_run,
        "backtest": _backtest_settings,
    },
}


def extra_key_parts(phase: str, spec: RunSpec) -> dict[str, Any]:
    """The extra cache-key parts ``phase`` declares in :data:`EXTRA_KEY_INPUTS` (none for most)."""
    return {name: part(spec) for name, part in sorted(EXTRA_KEY_INPUTS.get(phase, {}).items())}
