"""`bua anonymise`: a copy of a billing database and meter store for a test environment, identifiers pseudonymised.

What changes (:mod:`tasks.domain.pseudonym`, one HMAC key): site.identifier and the store's ``nmi``
(NMI/MIRN, the first ``BUA_ANONYMISE_NMI_KEEP`` characters kept), account.account_number,
meter.serial_number and the store's ``serial``, invoice.invoice_number, billing_record.id; free
text (billing_record.company_name, city, source_file; the store's source_file) becomes keyed
labels. Integer surrogate keys (account.id, site.id …) stay, so the copy's accrual is the
original's row for row once account numbers are mapped. Output tables (bua_*, accrual outputs,
companion reports) are not copied: the test environment runs its own.

Database: every source table (``sql.schema.SOURCE_TABLES``, foreign keys first) read in chunks of
``CHUNK_ROWS`` by ``id`` where it has one, pseudonymised with polars column expressions (a join on
the distinct values' map, never a loop over rows), written into the target in ONE transaction
that first empties those tables (a crash leaves the target as it was; a re-run gives the same
rows); an SQLite target is VACUUMed so deleted pages keep nothing. Meter store: partition by
partition, never more than one source partition in memory: rows pseudonymised, their new shard
computed from the pseudonymised NMI (:func:`tasks.domain.shard.shard_expr`), written as pieces
to ``{target}/_anonymise/``; then each target partition is its pieces concatenated and sorted
(one target partition in memory) and written atomically; the staging pieces are removed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
import sqlalchemy as sa

from sql.schema import SOURCE_TABLES, metadata
from tasks.adapters import storage
from tasks.adapters.db import DatabaseError, engine_for, init_db, insert_frame, redact_url, transaction
from tasks.adapters.meter_store import (
    SORT_KEY,
    _normalise,
    check_shards,
    interval_root,
    list_partitions,
    parquet_bytes,
    partition_url,
    read_partition,
)
from tasks.domain.pseudonym import pseudonym_map, text_pseudonym
from tasks.domain.shard import shard_expr
from tasks.settings import Settings, join_url

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
CHUNK_ROWS = 500_000
MIN_KEY_BYTES = 16

# table -> column -> identifier kind (shape-keeping pseudonym)
IDENTIFIERS: dict[str, dict[str, str]] = {
    "site": {"identifier": "nmi"},
    "account": {"account_number": "account"},
    "meter": {"serial_number": "serial"},
    "invoice": {"invoice_number": "invoice"},
    "billing_record": {"id": "billing_id"},
}
# table -> column -> label (free text: keyed label)
FREE_TEXT: dict[str, dict[str, str]] = {
    "billing_record": {"company_name": "name", "city": "place", "source_file": "file"},
}
STORE_IDENTIFIERS = {"nmi": "nmi", "serial": "serial"}
STORE_FREE_TEXT = {"source_file": "file"}


class AnonymiseError(RuntimeError):
    """The copy cannot be made as asked (no key, target not empty, …)."""


@dataclass
class Pseudonyms:
    """The key and the identifier maps of one copy (built once, used by the database and the store)."""

    key: bytes
    nmi_keep: int = 4
    maps: dict[str, pl.DataFrame] = field(default_factory=dict)
    moved: dict[str, int] = field(default_factory=dict)

    def keep(self, kind: str) -> int:
        return self.nmi_keep if kind == "nmi" else 0

    def build(self, kind: str, originals: pl.Series) -> None:
        self.maps[kind], self.moved[kind] = pseudonym_map(originals, self.key, kind, self.keep(kind))

    def apply(self, frame: pl.DataFrame, column: str, kind: str) -> pl.DataFrame:
        """``column`` replaced through the map; a value the map lacks is an error (it was not collected)."""
        m = self.maps[kind]
        out = frame.with_columns(
            pl.col(column).replace_strict(m["original"], m["pseudonym"], default=None, return_dtype=pl.String)
        )
        lost = out[column].null_count() - frame[column].null_count()
        if lost:
            raise AnonymiseError(f"{lost} value(s) of {column} have no pseudonym (kind {kind})")
        return out

    def text(self, frame: pl.DataFrame, column: str, label: str) -> pl.DataFrame:
        return frame.with_columns(text_pseudonym(frame[column], self.key, label).alias(column))


def anonymise_key(settings: Settings) -> bytes:
    """The HMAC key: BUA_ANONYMISE_KEY, or the Secrets Manager secret BUA_ANONYMISE_KEY_SECRET."""
    if settings.anonymise_key is not None:
        raw = settings.anonymise_key.get_secret_value()
    elif settings.anonymise_key_secret:
        from tasks.adapters.aws import AwsConfig, client, secret_value

        raw = secret_value(
            client("secretsmanager", AwsConfig.from_settings(settings)), settings.anonymise_key_secret, "key"
        )
    else:
        raise AnonymiseError("no key: set BUA_ANONYMISE_KEY or BUA_ANONYMISE_KEY_SECRET")
    key = raw.encode()
    if len(key) < MIN_KEY_BYTES:
        raise AnonymiseError(f"the anonymisation key is shorter than {MIN_KEY_BYTES} bytes")
    return key


# ------------------------------------------------------------------ reading the source database
def _read(url: str, stmt: sa.Select) -> pl.DataFrame:
    """A SELECT as a polars frame: connectorx where it can (Arrow), else SQLAlchemy rows."""
    from tasks.adapters.db import _connectorx_uri

    uri = _connectorx_uri(url)
    if uri is not None:
        try:
            import connectorx as cx

            engine_for(url).dispose()
            sql = str(stmt.compile(engine_for(url), compile_kwargs={"literal_binds": True}))
            return cx.read_sql(uri, sql, return_type="polars")
        except Exception:  # noqa: BLE001 - connectorx's limits (mixed NUMERIC kinds …): the slow path decides
            pass
    with engine_for(url).connect() as conn:
        return pl.read_database(stmt, conn, infer_schema_length=None)


def _chunks(url: str, name: str) -> list[sa.Select]:
    table = metadata.tables[name]
    if "id" not in table.c or not isinstance(table.c.id.type, sa.Integer):
        return [sa.select(table)]
    with engine_for(url).connect() as conn:
        lo, hi = conn.execute(sa.select(sa.func.min(table.c.id), sa.func.max(table.c.id))).one()
    if lo is None:
        return [sa.select(table)]
    return [
        sa.select(table).where(table.c.id >= start, table.c.id < start + CHUNK_ROWS).order_by(table.c.id)
        for start in range(lo, hi + 1, CHUNK_ROWS)
    ]


def _typed(frame: pl.DataFrame, name: str, sqlite_target: bool) -> pl.DataFrame:
    """Dates that arrive as text (SQLite through SQLAlchemy) parsed, so the target gets real dates;
    decimals as floats for an SQLite target (its driver binds no Decimal; SQLite keeps NUMERIC as REAL)."""
    table = metadata.tables[name]
    fix = [
        pl.col(c).cast(pl.Float64)
        for c, t in frame.schema.items()
        if sqlite_target and isinstance(t, pl.Decimal)
    ]
    for col in table.c:
        if col.name in frame.columns and frame.schema[col.name] == pl.String:
            if isinstance(col.type, sa.DateTime):
                fix.append(pl.col(col.name).str.replace("T", " ").str.to_datetime(strict=False))
            elif isinstance(col.type, sa.Date):
                fix.append(pl.col(col.name).str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
    return frame.with_columns(fix) if fix else frame


# ------------------------------------------------------------------ the copy
@dataclass
class CopyReport:
    tables: dict[str, int]
    partitions_in: int
    partitions_out: int
    register_days: int
    moved_off_originals: dict[str, int]
    seconds: dict[str, float]


def collect_identifiers(src_url: str, settings: Settings, p: Pseudonyms, progress: Progress) -> None:
    """Every original of every kind (database and store), then one map per kind."""
    originals: dict[str, list[pl.Series]] = {}
    for table, cols in IDENTIFIERS.items():
        t = metadata.tables[table]
        for col, kind in cols.items():
            frame = _read(src_url, sa.select(t.c[col]).distinct())
            originals.setdefault(kind, []).append(frame[col].cast(pl.String))
    files = storage.list_files(interval_root(settings), settings, suffix=".parquet")
    if files:
        store = (
            storage.scan_parquet(files, settings, hive_partitioning=False)
            .select(pl.col("nmi"), pl.col("serial"))
            .unique()
            .collect(engine="streaming")
        )
        for col, kind in STORE_IDENTIFIERS.items():
            originals.setdefault(kind, []).append(store[col].cast(pl.String))
    for kind, parts in originals.items():
        p.build(kind, pl.concat(parts).drop_nulls().unique())
        progress(f"{kind}: {p.maps[kind].height:,} identifiers, {p.moved[kind]} moved off an original")


def copy_database(
    src_url: str, dst_url: str, p: Pseudonyms, progress: Progress, replace: bool = False
) -> dict[str, int]:
    """Every source table into ``dst_url`` (schema created or migrated), pseudonymised, in one transaction."""
    if src_url == dst_url:
        raise AnonymiseError("the copy's database is the source database")
    init_db(dst_url)
    counts: dict[str, int] = {}
    with transaction(dst_url) as conn:
        present = {
            name: conn.execute(sa.select(sa.func.count()).select_from(metadata.tables[name])).scalar_one()
            for name in SOURCE_TABLES
        }
        if any(present.values()) and not replace:
            full = ", ".join(f"{n} ({c:,})" for n, c in present.items() if c)
            raise AnonymiseError(
                f"target database {redact_url(dst_url)} is not empty: {full}; pass --replace to overwrite"
            )
        for name in reversed(SOURCE_TABLES):
            conn.execute(metadata.tables[name].delete())
        for name in SOURCE_TABLES:
            n = 0
            for stmt in _chunks(src_url, name):
                frame = _typed(_read(src_url, stmt), name, dst_url.startswith("sqlite"))
                for col, kind in IDENTIFIERS.get(name, {}).items():
                    frame = p.apply(frame.with_columns(pl.col(col).cast(pl.String)), col, kind)
                for col, label in FREE_TEXT.get(name, {}).items():
                    frame = p.text(frame, col, label)
                n += insert_frame(conn, name, frame)
            counts[name] = n
            progress(f"table {name}: {n:,} rows")
    if dst_url.startswith("sqlite"):
        engine = engine_for(dst_url)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM"))
    return counts


def copy_store(
    src: Settings, dst: Settings, p: Pseudonyms, progress: Progress, replace: bool = False
) -> tuple[int, int, int]:
    """The interval store re-partitioned by the pseudonymised NMIs; returns (partitions in, out, register-days)."""
    if storage.exists(interval_root(dst), dst) and storage.list_files(interval_root(dst), dst):
        if not replace:
            raise AnonymiseError(
                f"target meter store {dst.meter_store} is not empty; pass --replace to overwrite"
            )
        storage.delete(storage.list_files(interval_root(dst), dst), dst)
    check_shards(src, create=False)
    staging = join_url(dst.meter_store, "_anonymise")
    storage.delete(storage.list_files(staging, dst), dst)  # an interrupted earlier copy's pieces
    sources = list_partitions(src)  # each read with its deltas (daily deliveries) folded in
    targets: set[tuple[int, str]] = set()
    for (shard_in, month), part in sources.items():
        from_shard = f"{shard_in:03d}"
        frame = read_partition(part, src)
        for col, kind in STORE_IDENTIFIERS.items():
            frame = p.apply(frame, col, kind)
        for col, label in STORE_FREE_TEXT.items():
            frame = p.text(frame, col, label)
        keyed = frame.with_columns(shard_expr("nmi", dst.shards))
        for (shard,), piece in keyed.partition_by("shard", as_dict=True, include_key=False).items():
            targets.add((int(shard), month))
            piece_url = join_url(
                staging, f"shard={int(shard):03d}", f"month={month}", f"from={from_shard}.parquet"
            )
            storage.write_parquet_atomic(piece, piece_url, dst)
    check_shards(dst, create=True)
    days = 0
    for shard, month in sorted(targets):
        pieces = storage.list_files(
            join_url(staging, f"shard={shard:03d}", f"month={month}"), dst, suffix=".parquet"
        )
        merged = (
            pl.concat([storage.scan_parquet(u, dst, hive_partitioning=False).collect() for u in pieces])
            .pipe(_normalise)
            .sort(list(SORT_KEY))
        )
        days += merged.height
        storage.write_bytes_atomic(parquet_bytes(merged), partition_url(dst, shard, month), dst)
    storage.delete(storage.list_files(staging, dst), dst)
    progress(f"meter store: {len(sources)} partitions in, {len(targets)} out, {days:,} register-days")
    return len(sources), len(targets), days


def anonymise(
    src: Settings, dst: Settings, key: bytes, progress: Progress = log.info, replace: bool = False
) -> CopyReport:
    """The whole copy: identifier maps, database, meter store (in that order)."""
    if src.shards != dst.shards:
        raise AnonymiseError("the copy keeps the source's shard count")
    try:
        engine_for(src.db_url).connect().close()
    except Exception as exc:  # noqa: BLE001
        raise DatabaseError(
            f"cannot connect to database {redact_url(src.db_url)}: {type(exc).__name__}"
        ) from None
    p = Pseudonyms(key, dst.anonymise_nmi_keep)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    collect_identifiers(src.db_url, src, p, progress)
    seconds["maps"] = time.perf_counter() - t
    t = time.perf_counter()
    tables = copy_database(src.db_url, dst.db_url, p, progress, replace)
    seconds["database"] = time.perf_counter() - t
    t = time.perf_counter()
    n_in, n_out, days = copy_store(src, dst, p, progress, replace)
    seconds["meter_store"] = time.perf_counter() - t
    return CopyReport(tables, n_in, n_out, days, dict(p.moved), seconds)
