"""Rows of interval meter data for the unit tests that build them by hand."""

from __future__ import annotations

import datetime as dt


def actual_day(nmi: str, read_date: dt.date, value: float) -> dict:
    """One register-day of NMI ``nmi`` (suffix E1, 30-minute intervals): ``value`` kWh in each of
    its 48 half hours, every one quality A."""
    return {
        "nmi": nmi,
        "suffix": "E1",
        "read_date": read_date,
        "interval_minutes": 30,
        "values": [value] * 48,
        "quality": "A" * 48,
    }
