"""The profiles' compiled store read (tasks/domain/profile_kernel.py) against the numpy steps it
replaces (interval_grids' gather, plausibility.flag_rows, half_hour_grid.half_hours, slot_sum,
slot_mask), on a store with every case those steps handle: 5-, 15- and 30-minute days, qualities
A/S/F/E/N/V, nulls, a stored NaN, inf, a negative value, values above the interval and the day
caps, a register without a segment, days before the grid's first day, two month chunks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from tasks.domain.half_hour_grid import slot_mask, slot_sum
from tasks.domain.interval_grids import Grid, calendar_chunks, interval_grids
from tasks.domain.plausibility import Caps, register_caps
from tasks.domain.profile_kernel import reduce_part
from tasks.domain.profile_keys import interval_registers, one_row_per_register, segment_codes

START = dt.date(2024, 1, 28)
DAYS = 8  # 28 Jan .. 4 Feb: two month chunks
G_FROM = (dt.date(2024, 2, 1) - dt.date(1970, 1, 1)).days


def _registers() -> pl.DataFrame:
    n = 7
    return pl.DataFrame(
        {
            "meter_register_id": list(range(1, n + 1)),
            "account_id": list(range(1, n + 1)),
            "nmi": [f"N{i}" for i in range(1, n + 1)],
            "suffix": ["E1"] * n,
            "customer_class": ["RES", "RES", "BUS", "BUS", "RES", None, "RES"],  # N6: no segment
            "jurisdiction": ["NSW"] * 4 + ["VIC"] * 3,
            "stream": ["CONSUMPTION"] * n,
            "tni": [None] * n,
            "unit": ["KWH"] * n,
            "interval_minutes": [30, 15, 5, 30, 30, 30, 15],
            "register_start": [dt.date(2024, 1, 1)] * n,
            "register_end": [None] * n,
        },
        schema_overrides={"register_end": pl.Date, "tni": pl.Utf8},
    )


def _store() -> pl.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    regs = _registers()
    for nmi, minutes in zip(regs["nmi"], regs["interval_minutes"], strict=True):
        n = 1440 // minutes
        for d in range(DAYS):
            values: list[float | None] = list(np.round(rng.random(n) * (0.4 * minutes / 30), 3))
            quality = rng.choice(list("AAAAAASFEN"), n)
            k = int(rng.integers(0, 9))
            if k == 1:
                values[3] = None  # a null: missing, not implausible
            elif k == 2:
                values[5] = float("nan")  # a stored NaN: implausible (not finite)
            elif k == 3:
                values[7] = float("inf")
            elif k == 4:
                values[2] = -0.5  # negative
            elif k == 5:
                values[1] = 9000.0  # above the interval cap (residential 50 kW)
            elif k == 6:
                # 30 x minutes / n kWh an interval: 900 kWh a day (within a residential interval cap
                # of 50 kW x 0.5 h at 30 minutes), above the day cap of 20 kWh used below
                values = [30.0 * minutes / n] * n
            rows.append(
                {
                    "nmi": nmi,
                    "suffix": "E1",
                    "read_date": START + dt.timedelta(days=d),
                    "interval_minutes": minutes,
                    "values": values,
                    "quality": "".join(quality),
                }
            )
    return pl.DataFrame(rows, schema_overrides={"values": pl.List(pl.Float64)}).sort(
        "nmi", "suffix", "read_date"
    )


def test_one_compiled_pass_gives_what_the_numpy_steps_give() -> None:
    regs = one_row_per_register(interval_registers(_registers(), False))
    names, seg_of_reg = segment_codes(regs)
    assert (seg_of_reg < 0).sum() == 1  # N6 (no class) has no segment
    caps = register_caps(regs, Caps(day_kwh_residential=20.0))  # k == 6 days (30 kWh) are above it
    lf = _store().lazy()
    chunks = calendar_chunks(START, START + dt.timedelta(days=DAYS - 1))
    nseg = len(names)

    found: list[tuple[np.ndarray, ...]] = []
    grids = list(interval_grids(regs, lf, chunks, lambda g: g, caps=caps, flagged=found))
    parts = list(
        interval_grids(
            regs, lf, chunks, lambda g: g,
            raw=lambda p: reduce_part(p, caps, seg_of_reg, nseg, G_FROM),
        )
    )  # fmt: skip
    assert len(parts) == len(grids) == 6  # two month chunks x three interval lengths
    flagged_seen = 0
    for g, ((dlo, tot, cnt, nreg, nrows, top_day, top), grid, flags) in zip(grids, parts, strict=True):
        assert isinstance(g, Grid)
        seg = seg_of_reg[g.reg]
        ds = slot_sum(g.hh)
        # expected dense sums, one row at a time in store order (the kernel's order)
        span = tot.shape[1]
        e_tot, e_cnt = np.zeros_like(tot), np.zeros_like(cnt)
        e_nreg, e_rows = np.zeros_like(nreg), np.zeros_like(nrows)
        e_top_day, e_top = np.full_like(top_day, -np.inf), np.zeros_like(top)
        for i in np.flatnonzero(seg >= 0):
            s, d = seg[i], g.day[i] - dlo
            assert 0 <= d < span
            e_tot[s, d] += g.hh[:, i]
            e_cnt[s, d] += g.ok[:, i]
            e_nreg[s, d] += g.ok[:, i].any()
            e_rows[s, d] += 1
            if ds[i] > e_top_day[s, d]:
                e_top_day[s, d], e_top[s, d] = ds[i], g.hh[:, i]
        np.testing.assert_array_equal(tot, e_tot)
        np.testing.assert_array_equal(cnt, e_cnt)
        np.testing.assert_array_equal(nreg, e_nreg)
        np.testing.assert_array_equal(nrows, e_rows)
        np.testing.assert_array_equal(top_day, e_top_day)
        np.testing.assert_array_equal(top, e_top)
        # the day grid: the same rows, the same bytes (actual_sum is slot_sum's)
        sel = (seg >= 0) & g.ok.any(axis=0) & (g.day >= G_FROM)
        np.testing.assert_array_equal(grid[0], g.reg[sel])
        np.testing.assert_array_equal(grid[1], g.day[sel])
        assert grid[2].tobytes() == ds[sel].tobytes()
        np.testing.assert_array_equal(grid[3], slot_mask(g.ok, sel))
        flagged_seen += len(flags[0])
    # the flagged rows: the same (register, day, reason, value, cap, minutes) as flag_rows'

    def key(arrays: tuple[np.ndarray, ...]) -> list[tuple]:
        return sorted(zip(*(a.tolist() for a in arrays), strict=True), key=repr)

    expected = key(tuple(np.concatenate(c) for c in zip(*found, strict=True)))
    got = key(tuple(np.concatenate(c) for c in zip(*[p[2] for p in parts], strict=True)))
    assert len(got) == flagged_seen
    assert repr(got) == repr(expected)  # repr: a stored NaN's value is NaN in both
    reasons = {r[2] for r in got}
    assert reasons == {1, 2, 3, 4}, reasons  # not finite, negative, above interval, above day


def test_a_half_hour_is_its_sub_intervals_and_actual_only_when_all_are() -> None:
    # One 15-minute day: half hour 0 = 0.25 + 0.5 = 0.75 (A, A); half hour 1 has an E: 0, not
    # actual; every other half hour 0.1 + 0.1 = 0.2 (A, S). Day sum = 0.75 + 46 x 0.2 = 9.95;
    # mask = every bit but bit 1.
    regs = one_row_per_register(interval_registers(_registers().slice(1, 1), False))
    names, seg_of_reg = segment_codes(regs)
    values = [0.25, 0.5, 0.3, 0.3] + [0.1] * 92
    frame = pl.DataFrame(
        {"nmi": ["N2"], "suffix": ["E1"], "read_date": [dt.date(2024, 2, 2)], "interval_minutes": [15],
         "values": [values], "quality": ["AA" + "AE" + "AS" * 46]},
        schema_overrides={"values": pl.List(pl.Float64)},
    )  # fmt: skip
    (part,) = interval_grids(
        regs, frame.lazy(), calendar_chunks(dt.date(2024, 2, 2), dt.date(2024, 2, 2)), lambda g: g,
        raw=lambda p: reduce_part(p, None, seg_of_reg, len(names), G_FROM),
    )  # fmt: skip
    (_, tot, cnt, nreg, nrows, top_day, _), grid, flags = part
    assert tot[0, 0, :3].tolist() == pytest.approx([0.75, 0.0, 0.2])
    assert cnt[0, 0, :3].tolist() == [1.0, 0.0, 1.0]
    assert nreg[0, 0] == 1.0 and nrows[0, 0] == 1
    assert grid[2][0] == pytest.approx(9.95) and top_day[0, 0] == grid[2][0]
    assert grid[3][0] == (2**48 - 1) - 2
    assert len(flags[0]) == 0


def test_profile_sums_over_a_day_grid_mask_are_the_numpy_bytes() -> None:
    # masked_profile_sums replaces slot_sum(pvals[seg, day].T * unpack_mask(mask)) in the scalars'
    # day-grid path: same bytes; and by hand, a row whose mask is bits 0 and 2 of a profile
    # 0.1, 0.2, 0.3, … sums 0.1 + 0.3 = 0.4 over 2 half hours.
    from tasks.domain.half_hour_grid import unpack_mask
    from tasks.domain.profile_kernel import masked_profile_sums

    rng = np.random.default_rng(3)
    pvals = rng.random((3, 10, 48)) * 2.0
    pvals[0, 0] = np.arange(1, 49) / 10
    seg, day = rng.integers(0, 3, 500), rng.integers(0, 10, 500)
    mask = rng.integers(0, 2**48, 500)
    seg[0], day[0], mask[0] = 0, 0, 0b101
    got_sum, got_slots = masked_profile_sums(pvals, seg, day, mask)
    ok = unpack_mask(mask)
    assert got_sum.tobytes() == slot_sum(pvals[seg, day].T * ok).tobytes()
    np.testing.assert_array_equal(got_slots, ok.sum(axis=0))
    assert got_sum[0] == pytest.approx(0.4) and got_slots[0] == 2


@pytest.mark.parametrize(
    ("fifth", "flagged"),
    [(float("nan"), True), (None, False)],
    ids=["stored NaN in a column without nulls: not finite", "a null: missing, not implausible"],
)
def test_a_stored_nan_is_flagged_and_a_null_is_missing(fifth: float | None, flagged: bool) -> None:
    # one 30-minute day of 0.5 kWh a half hour with its fifth value replaced: a stored NaN is a bad
    # value (the day is read as missing, reason 1); a null is a missing half hour (47 actual
    # half hours, 23.5 kWh)
    regs = one_row_per_register(interval_registers(_registers().slice(0, 1), False))
    names, seg_of_reg = segment_codes(regs)
    caps = register_caps(regs, Caps())
    values = [0.5] * 48
    values[4] = fifth  # type: ignore[call-overload]
    frame = pl.DataFrame(
        {"nmi": ["N1"], "suffix": ["E1"], "read_date": [dt.date(2024, 2, 2)], "interval_minutes": [30],
         "values": [values], "quality": ["A" * 48]},
        schema_overrides={"values": pl.List(pl.Float64)},
    )  # fmt: skip
    (part,) = interval_grids(
        regs, frame.lazy(), calendar_chunks(dt.date(2024, 2, 2), dt.date(2024, 2, 2)), lambda g: g,
        raw=lambda p: reduce_part(p, caps, seg_of_reg, len(names), G_FROM),
    )  # fmt: skip
    (_, tot, cnt, _, _, _, _), grid, flags = part
    if flagged:
        assert flags[2].tolist() == [1] and np.isnan(flags[3][0])
        assert cnt.sum() == 0 and len(grid[0]) == 0
    else:
        assert len(flags[0]) == 0
        assert cnt.sum() == 47 and grid[2][0] == pytest.approx(23.5)
