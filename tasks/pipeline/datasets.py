"""The datasets of a month-end run and the one I/O layer that loads and saves them (an IO manager in
Dagster's sense): phases are plain functions of frames and never open a file or a connection.

A dataset is one of
- a **work frame**: parquet (or Arrow IPC) under ``{output}/work/{run_date}/{run_id}/{folder}/``
  (per shard in ``shard=NNN/``), written atomically with sorted rows, so the same inputs give the
  same bytes; run-once frames are decoded once per process and shared by the shards;
- a **source**: what a phase reads from outside the run (the billing database's datasets, the
  meter store, earlier runs' outputs), loaded by a function of the run;
- a **sink**: what a phase publishes (output tables, CSV exports, NEM12 files, the report), saved
  by a function that returns the locations it wrote.
Work files are keyed by run (run_id), so two runs never read each other's files.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import polars as pl

from tasks.adapters import storage
from tasks.pipeline.spec import RunSpec
from tasks.settings import Settings, join_url

Kind = Literal["parquet", "ipc", "json", "source", "sink"]
Loader = Callable[["Datasets", int | None], Any]
Saver = Callable[["Datasets", Any, int | None], list[str]]


@dataclass(frozen=True)
class Dataset:
    """A named input or output of phases; ``folder`` groups work files, ``per_shard`` splits them."""

    name: str
    folder: str = ""
    per_shard: bool = False
    kind: Kind = "parquet"
    load: Loader | None = None
    save: Saver | None = None
    # per-shard: a reader of every shard gets a ShardFrames, each shard read as it is reached (a fold
    # over the shards holds one at a time, however many shards there are)
    stream: bool = False


class ShardFrames(Sequence[pl.DataFrame]):
    """Every shard's frame of a per-shard dataset, in shard order, read when indexed or iterated
    (never all at once)."""

    def __init__(self, read: Callable[[int], pl.DataFrame], shards: int) -> None:
        self._read, self._shards = read, shards

    def __len__(self) -> int:
        return self._shards

    @overload
    def __getitem__(self, i: int) -> pl.DataFrame: ...
    @overload
    def __getitem__(self, i: slice) -> list[pl.DataFrame]: ...
    def __getitem__(self, i: int | slice) -> pl.DataFrame | list[pl.DataFrame]:
        if isinstance(i, slice):
            return [self._read(s) for s in range(self._shards)[i]]
        if not -self._shards <= i < self._shards:
            raise IndexError(i)
        return self._read(i % self._shards)

    def __iter__(self) -> Iterator[pl.DataFrame]:
        return (self._read(s) for s in range(self._shards))


@dataclass(frozen=True)
class PhaseContext:
    """What a phase function gets besides its frames: the run, the settings, and its shard."""

    spec: RunSpec
    settings: Settings
    shard: int | None = None

    @property
    def run_date(self):  # noqa: ANN201
        return self.spec.run_date

    @property
    def period_start(self):  # noqa: ANN201
        return self.spec.period_start

    @property
    def period_end(self):  # noqa: ANN201
        return self.spec.period_end

    @property
    def basic_method(self) -> str:
        return self.spec.basic_method

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    @property
    def scenario(self) -> str:
        return self.spec.scenario

    @property
    def shards(self) -> int:
        return self.spec.shards


# Run-once work frames (extract, windows, segments, ...) are read by every shard of the per-shard
# phases: decoded once per process and shared (polars frames are immutable). Keyed by local path,
# modification time and size, so a rewritten file is read again; s3:// files are not kept.
_ONCE: dict[tuple[str, int, int], pl.DataFrame] = {}
_ONCE_LOCK = threading.Lock()
_ONCE_MAX = 48


class Datasets:
    """Loads and saves the datasets of one run (``REGISTRY``, tasks/pipeline/graph.py)."""

    def __init__(self, spec: RunSpec, settings: Settings, registry: dict[str, Dataset]) -> None:
        self.spec, self.settings, self.registry = spec, settings, registry
        self.stats: dict[str, Any] = {}  # what sinks report (row counts, the summary)

    @property
    def work_root(self) -> str:
        return join_url(self.settings.output_url, "work", self.spec.run_date.isoformat(), self.spec.run_id)

    def context(self, shard: int | None = None) -> PhaseContext:
        return PhaseContext(self.spec, self.settings, shard)

    def url(self, name: str, shard: int | None = None) -> str:
        ds = self.registry[name]
        ext = {"parquet": ".parquet", "ipc": ".arrow", "json": ".json"}.get(ds.kind, "")
        parts = [ds.folder] + ([f"shard={shard:03d}"] if shard is not None else []) + [name + ext]
        return join_url(self.work_root, *parts)

    # ------------------------------------------------------------------ load

    def load(self, name: str, shard: int | None = None) -> Any:
        """The dataset (a per-shard dataset without a shard: the list of every shard's, in order)."""
        ds = self.registry[name]
        if ds.load is not None:
            return ds.load(self, shard)
        if ds.per_shard and shard is None:
            if ds.stream:
                return ShardFrames(lambda s: self._read(ds, s), self.spec.shards)
            return [self._read(ds, s) for s in range(self.spec.shards)]
        return self._read(ds, shard if ds.per_shard else None)

    def _read(self, ds: Dataset, shard: int | None) -> Any:
        url = self.url(ds.name, shard)
        if ds.kind == "json":
            return json.loads(storage.read_bytes(url, self.settings))
        if ds.kind == "ipc":
            return pl.read_ipc(io.BytesIO(storage.read_bytes(url, self.settings)))
        if shard is not None or storage.is_s3(url):
            return pl.read_parquet(io.BytesIO(storage.read_bytes(url, self.settings)))
        st = os.stat(url)
        key = (url, st.st_mtime_ns, st.st_size)
        with _ONCE_LOCK:
            hit = _ONCE.get(key)
        if hit is not None:
            return hit
        df = pl.read_parquet(io.BytesIO(storage.read_bytes(url, self.settings)))
        with _ONCE_LOCK:
            if len(_ONCE) >= _ONCE_MAX:
                _ONCE.clear()
            _ONCE[key] = df
        return df

    def exists(self, name: str, shard: int | None = None) -> bool:
        return storage.exists(self.url(name, shard), self.settings)

    # ------------------------------------------------------------------ save

    def save(self, name: str, value: Any, shard: int | None = None) -> list[str]:
        """Write the dataset; return the locations written (for fingerprints and artifacts)."""
        ds = self.registry[name]
        if ds.save is not None:
            return ds.save(self, value, shard)
        if ds.per_shard and shard is None:
            # a run-once phase writing a per-shard dataset: every shard's frame, in shard order
            if not isinstance(value, list) or len(value) != self.spec.shards:
                raise ValueError(
                    f"{name}: a run-once phase must give one frame per shard ({self.spec.shards})"
                )
            return [url for s, frame in enumerate(value) for url in self.save(name, frame, s)]
        url = self.url(name, shard if ds.per_shard else None)
        if ds.kind == "json":
            data = json.dumps(value, sort_keys=True, default=str).encode()
        elif ds.kind == "ipc":
            buf = io.BytesIO()
            # Arrow IPC with lz4: about half zstd parquet's CPU to write and read back
            value.write_ipc(buf, compression="lz4")
            data = buf.getvalue()
        else:
            data = storage.parquet_bytes(value)
        storage.write_bytes_atomic(data, url, self.settings)
        return [url]


def concat_shards(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Every shard's frame in shard order (empty, column-less frames skipped)."""
    frames = [f for f in frames if f.width]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
