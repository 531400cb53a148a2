"""The generator's calendar and random streams.

Day *i* of the portfolio is ``start + i`` (``start`` = first day of the month ``months − 1``
months before the month of ``end``). Every random draw comes from a numpy ``Generator`` seeded
with ``SeedSequence([seed, stream, part])``: a named stream per component and a part number per
chunk, so the same arguments always give the same numbers, whatever the chunk order.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass

import numpy as np


def rng_for(seed: int, stream: str, part: int = 0) -> np.random.Generator:
    """A numpy Generator for one named stream (and chunk) of one seed; stable across runs."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(stream.encode()), part]))


@dataclass(frozen=True)
class Calendar:
    start: dt.date
    end: dt.date

    @classmethod
    def for_months(cls, end: dt.date, months: int) -> Calendar:
        y, m = end.year, end.month - (months - 1)
        while m < 1:
            y, m = y - 1, m + 12
        return cls(dt.date(y, m, 1), end)

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def dates(self) -> np.ndarray:
        return np.arange(np.datetime64(self.start), np.datetime64(self.end) + 1, dtype="datetime64[D]")

    @property
    def weekday(self) -> np.ndarray:
        """0 = Monday … 6 = Sunday per day."""
        return ((self.dates.astype(np.int64) + 3) % 7).astype(np.int8)

    @property
    def weekend(self) -> np.ndarray:
        return self.weekday >= 5

    @property
    def day_of_year(self) -> np.ndarray:
        d = self.dates
        return (d - d.astype("datetime64[Y]")).astype(np.int64) + 1

    def index(self, day: dt.date) -> int:
        return (day - self.start).days


def to_dates(start: dt.date, idx: np.ndarray) -> np.ndarray:
    """Day indices (int, may be negative) → datetime64[D]."""
    return np.datetime64(start) + np.asarray(idx, dtype=np.int64).astype("timedelta64[D]")
