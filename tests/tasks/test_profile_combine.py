"""The shards' profile partials folded one at a time (issue 14: never all shards in memory)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from tasks.domain.half_hour_grid import SLOTS
from tasks.domain.profile_combine import _partial_frame, combine_partials
from tasks.pipeline.datasets import ShardFrames

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)


def _part(rows: list[tuple[str, dt.date, float, float, float, float, float]]) -> pl.DataFrame:
    """(segment, day, total per slot, count per slot, registers, top_day, top per slot)."""
    keys = pl.DataFrame({"segment": [r[0] for r in rows], "read_date": [r[1] for r in rows]})
    full = lambda i: np.array([[r[i]] * SLOTS for r in rows], dtype=np.float64)  # noqa: E731
    return _partial_frame(
        keys, full(2), full(3), np.array([r[4] for r in rows]), np.array([r[5] for r in rows]), full(6)
    )


def test_fold_adds_each_segment_day_and_keeps_the_largest_top_first_on_ties() -> None:
    """By hand, every slot alike:
    - A / 1 Oct in shards 0 and 1: total 1.5 + 2.25 = 3.75, count 1 + 2 = 3, registers 1 + 2 = 3;
      top_day 10 (shard 0) against 12 (shard 1): 12 wins, its top 0.25.
    - A / 2 Oct only in shard 1: as given (total 4, count 1, registers 1, top_day 7, top 0.5).
    - B / 1 Oct in shard 0 and twice in shard 2 (a key twice in one partial, added in row order):
      total 1 + 2 + 3 = 6, count 3, registers 3; top_day 5, 5, 5: a tie, the first (shard 0, top 0.1).
    Rows come out in (segment, read_date) order."""
    shards = [
        _part([("A", D1, 1.5, 1, 1, 10.0, 0.75), ("B", D1, 1.0, 1, 1, 5.0, 0.1)]),
        _part([("A", D2, 4.0, 1, 1, 7.0, 0.5), ("A", D1, 2.25, 2, 2, 12.0, 0.25)]),
        _part([("B", D1, 2.0, 1, 1, 5.0, 0.2), ("B", D1, 3.0, 1, 1, 5.0, 0.3)]),
        _part([]),
    ]
    got = combine_partials(shards)
    assert got.select("segment", "read_date").rows() == [("A", D1), ("A", D2), ("B", D1)]
    total = got["total"].to_numpy()
    assert total[:, 0].tolist() == [3.75, 4.0, 6.0] and (total == total[:, :1]).all()
    assert got["count"].to_numpy()[:, 5].tolist() == [3.0, 1.0, 3.0]
    assert got["registers"].to_list() == [3.0, 1.0, 3.0]
    assert got["top_day"].to_list() == [12.0, 7.0, 5.0]
    assert got["top"].to_numpy()[:, 47].tolist() == [0.25, 0.5, 0.1]


def test_fold_gives_the_bytes_of_one_sum_over_all_partials_concatenated() -> None:
    """Random partials (values that do not add exactly in floating point): each (segment, day) sum
    equals numpy's bincount over every partial's rows concatenated in shard order — the sum the
    combine computed before it folded — bit for bit."""
    rng = np.random.default_rng(7)
    segs = ["A", "B", "C"]
    parts = []
    for _ in range(5):
        keys = sorted({(segs[i], D1 + dt.timedelta(days=int(d))) for i, d in zip(rng.integers(0, 3, 8),
                                                                              rng.integers(0, 4, 8), strict=True)})  # fmt: skip
        n = len(keys)
        parts.append(_partial_frame(
            pl.DataFrame({"segment": [k[0] for k in keys], "read_date": [k[1] for k in keys]}),
            rng.random((n, SLOTS)) * 1e3, rng.random((n, SLOTS)), rng.random(n), rng.random(n), rng.random((n, SLOTS)),
        ))  # fmt: skip
    allp = pl.concat(parts)
    gid = (
        allp.select(pl.struct("segment", "read_date").rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
    )
    want = np.stack([np.bincount(gid, weights=allp["total"].to_numpy()[:, j]) for j in range(SLOTS)], axis=1)
    got = combine_partials(parts)["total"].to_numpy()
    assert got.shape == want.shape and np.array_equal(got, want)


def test_shard_frames_read_each_shard_only_when_reached() -> None:
    reads: list[int] = []

    def read(s: int) -> pl.DataFrame:
        reads.append(s)
        return pl.DataFrame({"s": [s]})

    frames = ShardFrames(read, 3)
    assert len(frames) == 3 and reads == []
    it = iter(frames)
    assert next(it)["s"].item() == 0 and reads == [0]
    assert [f["s"].item() for f in it] == [1, 2] and reads == [0, 1, 2]
    assert frames[-1]["s"].item() == 2 and [f["s"].item() for f in frames[1:]] == [1, 2]
