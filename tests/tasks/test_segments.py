"""Check and fix: invalid (segment, day) filled from same day type within 28 days, else parent."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.domain.segments import check_and_fix

SEG = "RES|NSW|CONSUMPTION"
PAR = "*|NSW|CONSUMPTION"


def _prof(rows: list[tuple[str, dt.date, float, int]]) -> pl.DataFrame:
    """Flat profiles: every slot = value."""
    return pl.DataFrame(
        {
            "segment": [r[0] for r in rows],
            "read_date": [r[1] for r in rows],
            "profile": [[r[2]] * 48 for r in rows],
            "registers": [r[3] for r in rows],
        },
        schema_overrides={"registers": pl.UInt32},
    )


def test_day_with_too_few_registers_filled_from_nearest_same_day_type() -> None:
    # Wed 2024-01-10 has 5 registers (< 20) -> invalid. Same-day-type candidates: Tue 9th
    # (1 day back, value 2.0) and Thu 11th (1 day ahead, 3.0): tie -> earlier day, 2.0.
    # Sat 13th has no row -> MISSING; nearest valid weekend day is Sun 14th (1 day) = 7.0,
    # not Fri 12th (a weekday, also 1 day away).
    wed, tue, thu, fri, sat, sun = (dt.date(2024, 1, d) for d in (10, 9, 11, 12, 13, 14))
    prof = _prof(
        [
            (SEG, tue, 2.0, 30),
            (SEG, wed, 9.0, 5),
            (SEG, thu, 3.0, 30),
            (SEG, fri, 4.0, 30),
            (SEG, sun, 7.0, 25),
        ]
        + [(PAR, d, 1.0, 100) for d in (tue, wed, thu, fri, sat, sun)]
    )
    fixed, fills = check_and_fix(prof, [SEG], tue, sun, min_registers=20)
    got = {
        r["read_date"]: (r["profile"][0], r["source"])
        for r in fixed.filter(pl.col("segment") == SEG).to_dicts()
    }
    assert got[wed] == (2.0, "SAME_DAY_TYPE")
    assert got[sat] == (7.0, "SAME_DAY_TYPE")
    assert got[tue] == (2.0, "OWN")
    rec = {r["read_date"]: r for r in fills.filter(pl.col("segment") == SEG).to_dicts()}
    assert set(rec) == {wed, sat}  # fills recorded, own days are not
    assert rec[wed]["reason"] == "TOO_FEW_REGISTERS" and rec[wed]["source_date"] == tue
    assert rec[sat]["reason"] == "MISSING" and rec[sat]["source_date"] == sun
    assert rec[sat]["source_segment"] == SEG


def test_parent_segment_used_when_no_same_day_type_within_28_days() -> None:
    # The segment has a single valid weekday, 2024-01-01; 2024-02-05 is 35 days later (> 28),
    # so it comes from the parent's own same day (value 4.0). 2024-01-29 is exactly 28 days
    # after 01-01 -> still same-day-type (value 1.5).
    d0, d28, d35 = dt.date(2024, 1, 1), dt.date(2024, 1, 29), dt.date(2024, 2, 5)
    prof = _prof([(SEG, d0, 1.5, 20), (PAR, d28, 3.0, 50), (PAR, d35, 4.0, 50), (PAR, d0, 2.0, 50)])
    fixed, fills = check_and_fix(prof, [SEG], d0, d35, min_registers=20)
    seg = {
        r["read_date"]: (r["profile"][0], r["source"])
        for r in fixed.filter(pl.col("segment") == SEG).to_dicts()
    }
    assert seg[d28] == (1.5, "SAME_DAY_TYPE")
    assert seg[d35] == (4.0, "PARENT")
    rec = fills.filter((pl.col("segment") == SEG) & (pl.col("read_date") == d35)).to_dicts()[0]
    assert rec["source_segment"] == PAR and rec["source_date"] == d35


def test_days_beyond_profile_use_latest_four_weeks_same_day_type() -> None:
    # Valid weekdays Mon 1st (1.0) and Tue 2nd (3.0) only, no parent data. Wed 2024-02-14 is
    # > 28 days after them -> rule 3: mean of same-day-type days in the latest 4 weeks = 2.0.
    d1, d2, far = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 2, 14)
    prof = _prof([(SEG, d1, 1.0, 20), (SEG, d2, 3.0, 20)])
    fixed, fills = check_and_fix(prof, [SEG], d1, far, min_registers=20)
    row = fixed.filter((pl.col("segment") == SEG) & (pl.col("read_date") == far)).to_dicts()[0]
    assert row["profile"][0] == 2.0 and row["source"] == "LATEST_4_WEEKS"
    # a weekend day with no weekend data anywhere cannot be filled: recorded as NONE
    sat = dt.date(2024, 2, 17) - dt.timedelta(days=7)
    none = fills.filter((pl.col("segment") == SEG) & (pl.col("read_date") == sat))
    assert none["source"].to_list() == ["NONE"]


def test_latest_weeks_mean_has_the_same_bytes_whatever_the_row_order() -> None:
    # issue 17: two runs wrote NEM12 estimates differing in the 17th digit. In floating point
    # 1.0 + 1e16 = 1e16, so a sum of 0.1, 0.2, 0.7, 1e16 and -1e16 depends on the order of the
    # additions; the latest-4-weeks mean adds the days in date order whatever the rows' order.
    days = [dt.date(2024, 1, d) for d in (1, 2, 3, 4, 5)]  # Mon … Fri
    values = [0.1, 0.2, 0.7, 1e16, -1e16]
    prof = _prof([(SEG, d, v, 20) for d, v in zip(days, values, strict=True)])
    far = dt.date(2024, 2, 14)
    outs = set()
    for seed in range(8):
        shuffled = prof.sample(fraction=1.0, shuffle=True, seed=seed)
        fixed, _ = check_and_fix(shuffled, [SEG], days[0], far, min_registers=20)
        row = fixed.filter((pl.col("segment") == SEG) & (pl.col("read_date") == far))
        outs.add(tuple(row["profile"][0].to_list()))
    assert len(outs) == 1
    # in date order: ((((0.1 + 0.2) + 0.7) + 1e16) − 1e16) / 5 = 0.0 (the small days are absorbed)
    assert outs.pop()[0] == ((((0.1 + 0.2) + 0.7) + 1e16) - 1e16) / 5
