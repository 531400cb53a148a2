"""A table's rows written in slices (issue 14: prepare's memory at 1M accounts): the rows come shard
by shard, are split into slices on disk, and are read back one slice at a time — the writer never
holds every shard's rows at once, and neither does the SQLite child.

A :class:`ShardRows` is written as if every shard's frame were concatenated in shard order
(``how="diagonal_relaxed"``) and stably sorted by ``by``: each shard's rows are split at ``bounds``
(sorted values of ``by``; slice k holds ``bounds[k-1] <= by < bounds[k]``) into one Arrow file per
(slice, group of consecutive shards); a slice is its files concatenated in shard order and stably
sorted by ``by``. A stable sort of a concatenation keeps, among equal keys, the concatenation's
order, and splitting by key range keeps each shard's order, so slice after slice gives exactly the
rows, in exactly the order, of the one sort of everything. Every slice is cast to the columns and
types the whole concatenation would have (an empty frame of every shard's schema, concatenated the
same way, leads each slice).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

# shards split together in the writer (the flow process holds about this many rows at a time)
GROUP_ROWS = 131_072


@dataclass(frozen=True)
class ShardRows:
    """A table's rows as every shard's frame (each read when reached), to be written as their
    concatenation stably sorted by ``by`` (None: in shard order), in slices starting at ``bounds``."""

    shards: Sequence[pl.DataFrame]
    by: str | None = None
    bounds: pl.Series | None = None  # sorted values of ``by``: where slices after the first start
    each: Callable[[pl.DataFrame], pl.DataFrame] | None = None  # applied to each shard's frame


def slice_bounds(shards: Sequence[pl.DataFrame], by: str, per_slice: int) -> pl.Series:
    """Every ``per_slice``-th distinct value of ``by`` over the shards (the first excepted): the
    starts of slices of ``per_slice`` distinct keys each (one column of each shard held at a time)."""
    keys = [df.get_column(by).unique() for df in shards if df.width]
    if not keys:
        return pl.Series(by, [], pl.Int64)
    return pl.concat(keys).unique().sort().gather_every(per_slice, offset=per_slice)


def spill(rows: pl.DataFrame | ShardRows, folder: str, group_rows: int = GROUP_ROWS) -> dict[str, Any]:
    """Write ``rows`` under ``folder`` as slices of Arrow files; return their description (JSON-safe:
    what :func:`read_slices` reads back, also in the SQLite writer's child).

    Consecutive shards of the same schema are split together, up to ``group_rows`` rows (one file
    per slice and group: the files grow as slices × groups, not slices × shards)."""
    os.makedirs(folder, exist_ok=True)
    if isinstance(rows, pl.DataFrame):
        rows = ShardRows([rows])
    slices: dict[int, list[str]] = {}
    empties: list[pl.DataFrame] = []
    group: list[pl.DataFrame] = []
    total = groups = 0

    def split(frames: list[pl.DataFrame], g: int) -> None:
        df = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]  # shard order
        if rows.by is None:
            parts = {g: df}  # shard order: the groups are the slices
        else:
            bounds = rows.bounds if rows.bounds is not None else pl.Series([], dtype=df.schema[rows.by])
            k = bounds.search_sorted(df.get_column(rows.by), side="right").alias("_slice")
            parts = {key[0]: part for key, part in df.with_columns(k).partition_by(
                "_slice", maintain_order=True, include_key=False, as_dict=True).items()}  # fmt: skip
        for k, part in parts.items():
            path = f"{folder}/{k:06d}-{g:06d}.arrow"
            part.write_ipc(path)
            slices.setdefault(k, []).append(path)

    for frame in rows.shards:
        if not frame.width:  # a shard without columns (concat_shards skips it too)
            continue
        df = rows.each(frame) if rows.each is not None else frame
        empties.append(df.clear())
        total += df.height
        if df.height == 0:
            continue
        if group and (df.schema != group[0].schema or sum(f.height for f in group) + df.height > group_rows):
            split(group, groups)
            group, groups = [], groups + 1
        group.append(df)
    if group:
        split(group, groups)
    schema = f"{folder}/schema.arrow"
    (pl.concat(empties, how="diagonal_relaxed") if empties else pl.DataFrame()).write_ipc(schema)
    return {"slices": [slices[k] for k in sorted(slices)], "schema": schema, "by": rows.by, "rows": total}


def read_slices(spilled: dict[str, Any]) -> Iterator[pl.DataFrame]:
    """The slices of :func:`spill`, in order: each its shards' rows in shard order, typed like the
    whole concatenation, stably sorted by ``by``."""
    empty = pl.read_ipc(spilled["schema"])
    by = spilled["by"]
    for files in spilled["slices"]:
        df = pl.concat([empty, *(pl.read_ipc(f) for f in files)], how="diagonal_relaxed")
        yield df.sort(by, maintain_order=True) if by is not None else df
