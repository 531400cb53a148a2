"""Market time → local time, day types and TOU classes (SPEC §4.4)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.domain.calendar import KEYS, interval_time_classes, time_class_codes, time_class_masks

D = dt.date
TOU = pl.DataFrame(
    {
        "tou_scheme_id": [1, 1, 1],
        "time_class": ["PEAK", "SHOULDER", "OFFPEAK"],
        "day_type": ["WEEKDAY", "ALL", "ALL"],
        "start_minute": [840, 420, 1320],
        "end_minute": [1200, 1320, 420],
    }
)


def _keys(j: str, tz: str, day: D, minutes: int = 30, hol: bool = True) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "tou_scheme_id": [1],
            "holidays_as_weekend": [hol],
            "jurisdiction": [j],
            "timezone": [tz],
            "read_date": [day],
            "interval_minutes": [minutes],
        }
    )


def test_adelaide_winter_is_half_an_hour_behind_market_time() -> None:
    # SA in June is ACST (UTC+9:30): market 14:30 = local 14:00 → first PEAK interval is market idx 29 (not 28)
    c = interval_time_classes(_keys("SA", "Australia/Adelaide", D(2026, 6, 10)), TOU)
    peak = c.filter(pl.col("time_class") == "PEAK")["idx"].to_list()
    assert (peak[0], peak[-1], len(peak)) == (29, 40, 12)


def test_brisbane_has_no_daylight_saving() -> None:
    # QLD stays UTC+10 in January: local = market, PEAK 14:00–20:00 → idx 28..39
    c = interval_time_classes(_keys("QLD", "Australia/Brisbane", D(2026, 1, 14)), TOU)
    assert c.filter(pl.col("time_class") == "PEAK")["idx"].to_list() == list(range(28, 40))


def test_offpeak_window_wraps_midnight_and_masks_partition_the_day() -> None:
    # OFFPEAK 22:00–07:00 wraps: Sydney in January (AEDT): local 22:00 = market 21:00 → idx 42..47 and 0..11 (local 01:00..06:30
    # after the day's local start at 01:00); shoulder the rest outside PEAK; the masks add to 1 in every interval
    m = time_class_masks(_keys("NSW", "Australia/Sydney", D(2026, 1, 14)), TOU)
    masks = {r["time_class"]: r["mask"] for r in m.iter_rows(named=True)}
    assert [sum(v) for v in zip(*masks.values(), strict=True)] == [1.0] * 48
    off = [i for i, v in enumerate(masks["OFFPEAK"]) if v]
    assert off == list(range(0, 12)) + list(range(42, 48))
    assert sum(masks["PEAK"]) == 12 and sum(masks["SHOULDER"]) == 48 - 12 - 18


def test_five_minute_intervals_and_weekend() -> None:
    # Saturday: no PEAK; 288 five-minute intervals
    c = interval_time_classes(_keys("VIC", "Australia/Melbourne", D(2026, 10, 10), minutes=5), TOU)
    assert c.height == 288 and "PEAK" not in c["time_class"].to_list()


def _codes(keys: pl.DataFrame) -> list[list[str]]:
    indexed, names, codes = time_class_codes(keys, TOU)
    return [
        [names[c] for c in codes[r["_start"] : r["_start"] + r["_len"]]]
        for r in indexed.iter_rows(named=True)
    ]


def test_class_codes_dst_start_and_public_holiday() -> None:
    # Sydney, Sunday 2026-10-04: AEST→AEDT at local 02:00 (market 02:00 = local 03:00 from then on).
    # Sunday → WEEKEND: no PEAK. Local 07:00 is market 06:00 → SHOULDER from idx 12; local 22:00 is
    # market 21:00 → OFFPEAK from idx 42. Before the change local = market (idx 0..3 = local 00:00..01:30).
    (sun,) = _codes(_keys("NSW", "Australia/Sydney", D(2026, 10, 4)))
    assert [i for i, c in enumerate(sun) if c == "SHOULDER"] == list(range(12, 42))
    assert "PEAK" not in sun
    # Monday 2026-10-05 is Labour Day in NSW: a WEEKEND day when holidays count as weekend …
    (hol,) = _codes(_keys("NSW", "Australia/Sydney", D(2026, 10, 5)))
    assert "PEAK" not in hol
    # … and a weekday otherwise: PEAK local 14:00–20:00 = market 13:00–19:00 → idx 26..37
    (work,) = _codes(_keys("NSW", "Australia/Sydney", D(2026, 10, 5), hol=False))
    assert [i for i, c in enumerate(work) if c == "PEAK"] == list(range(26, 38))


def test_class_codes_equal_the_frame_classification() -> None:
    # every key of a mixed set (zones with and without DST, 5/15/30 minutes, both holiday rules, a
    # key without time zone) gets the classes interval_time_classes gives, interval by interval
    days = [D(2026, 1, 26), D(2026, 4, 5), D(2026, 6, 10), D(2026, 10, 4), D(2026, 12, 25), D(2027, 1, 1)]
    zones = [("NSW", "Australia/Sydney"), ("SA", "Australia/Adelaide"), ("QLD", "Australia/Brisbane")]
    keys = pl.concat(
        [_keys(j, tz, d, m, h) for j, tz in zones for d in days for m in (5, 15, 30) for h in (True, False)]
    )
    indexed, names, codes = time_class_codes(pl.concat([keys, _keys(None, None, days[0])]), TOU)  # type: ignore[arg-type]
    cols = [*KEYS, "idx", "time_class"]
    ref = interval_time_classes(keys, TOU).select(cols)
    got = (
        indexed.filter(pl.col("_len") > 0)
        .with_columns(pl.int_ranges(0, "_len").alias("idx"))
        .explode("idx")
        .with_columns(
            pl.Series([names[c] for c in codes]).alias("time_class")  # keys are in _start order
        )
        .select(cols)
    )
    assert indexed.filter(pl.col("timezone").is_null())["_len"].to_list() == [0]
    assert got.sort(cols).equals(ref.sort(cols))
