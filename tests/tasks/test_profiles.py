"""Segment profiles: mean per register over actual (A/S/F) half hours only, 30-minute grid."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from tasks.domain.profiles import combine_profiles, half_hours, lex_order, profile_partial_sums, slot_mask

D = dt.date(2024, 2, 1)


def _regs(n: int, minutes: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_register_id": list(range(1, n + 1)),
            "account_id": list(range(1, n + 1)),
            "nmi": [f"N{i}" for i in range(1, n + 1)],
            "suffix": ["E1"] * n,
            "customer_class": ["RES"] * n,
            "jurisdiction": ["NSW"] * n,
            "stream": ["CONSUMPTION"] * n,
            "tni": [None] * n,
            "interval_minutes": minutes,
            "register_start": [dt.date(2024, 1, 1)] * n,
            "register_end": [None] * n,
        },
        schema_overrides={"register_end": pl.Date, "tni": pl.Utf8},
    )


def _day(nmi: str, values: list[float | None], quality: str, minutes: int = 30) -> dict:
    return {
        "nmi": nmi,
        "suffix": "E1",
        "read_date": D,
        "interval_minutes": minutes,
        "values": values,
        "quality": quality,
    }


def test_mean_excludes_e_and_n_quality() -> None:
    # slot 0: N1 = 1.0 (A), N2 = 3.0 (S), N3 = 100.0 (E, excluded), N4 = 50 (N, excluded)
    # P(slot 0) = (1 + 3) / 2 = 2.0; slot 1: all four actual 1, 2, 3, 4 -> 2.5
    rows = [
        _day("N1", [1.0, 1.0] + [0.0] * 46, "A" * 48),
        _day("N2", [3.0, 2.0] + [0.0] * 46, "S" + "A" * 47),
        _day("N3", [100.0, 3.0] + [0.0] * 46, "E" + "A" * 47),
        _day("N4", [50.0, 4.0] + [0.0] * 46, "N" + "F" * 47),
    ]
    part = profile_partial_sums(_regs(4, [30] * 4), pl.DataFrame(rows).lazy())
    prof = combine_profiles([part]).filter(pl.col("segment") == "RES|NSW|CONSUMPTION")
    p = prof["profile"][0].to_list()
    assert p[0] == pytest.approx(2.0)
    assert p[1] == pytest.approx(2.5)
    assert prof["registers"][0] == 4


def test_five_minute_data_summed_to_half_hours_and_partials_combine() -> None:
    # N1 (5-min): slot 0 = six 0.5 values = 3.0 (all A). N2 (30-min, other shard): slot 0 = 1.0.
    # P = (3 + 1) / 2 = 2.0. Slot 1 of N1 has one N sub-interval -> whole half hour not actual,
    # so P(slot 1) = N2's 5.0 alone.
    regs = _regs(2, [5, 30])
    v5 = [0.5] * 288
    q5 = "A" * 6 + "AANAAA" + "A" * 276
    v30 = [1.0, 5.0] + [0.0] * 46
    p1 = profile_partial_sums(regs, pl.DataFrame([_day("N1", v5, q5, 5)]).lazy())
    p2 = profile_partial_sums(regs, pl.DataFrame([_day("N2", v30, "A" * 48)]).lazy())
    prof = combine_profiles([p1, p2]).filter(pl.col("segment") == "*|NSW|CONSUMPTION")
    p = prof["profile"][0].to_list()
    assert p[0] == pytest.approx(2.0)
    assert p[1] == pytest.approx(5.0)
    assert p[2] == pytest.approx((3.0 + 0.0) / 2)


def test_slot_without_actual_data_is_null() -> None:
    # the only register's slot 5 is N -> no register contributes -> P(slot 5) is null
    part = profile_partial_sums(
        _regs(1, [30]), pl.DataFrame([_day("N1", [1.0] * 48, "A" * 5 + "N" + "A" * 42)]).lazy()
    )
    p = combine_profiles([part])["profile"][0].to_list()
    assert p[5] is None and p[4] == 1.0


def test_register_held_by_two_accounts_is_counted_once() -> None:
    # N1 appears twice in the registers frame (a move: accounts 1 and 9 held it in turn); its day
    # of 2.0 per half hour must count once: P = (2 + 4) / 2 = 3.0 with 2 registers, not
    # (2 + 2 + 4) / 3.
    regs = _regs(2, [30, 30])
    regs = pl.concat([regs, regs.head(1).with_columns(account_id=pl.lit(9, dtype=pl.Int64))])
    rows = [_day("N1", [2.0] * 48, "A" * 48), _day("N2", [4.0] * 48, "A" * 48)]
    prof = combine_profiles([profile_partial_sums(regs, pl.DataFrame(rows).lazy())])
    seg = prof.filter(pl.col("segment") == "RES|NSW|CONSUMPTION").row(0, named=True)
    assert seg["profile"][0] == pytest.approx(3.0) and seg["registers"] == 2


def test_kept_rows_are_the_store_rows_of_the_keys_whatever_their_shape() -> None:
    # keys: N1 and N2 on D, N3 on D + 1 (no such row), N4 on D. Expected, by hand, in store order:
    # N1 (a normal 30-minute day), N2 (a malformed day: 3 values, left out of the profile but kept
    # as stored, since the interval estimate decides what to do with it) and N4 (a 1-minute day
    # of an unsupported length whose register has no segment: never reduced, still kept); N5 is
    # read but not asked for.
    from tasks.domain.profiles import KEPT_COLUMNS, profile_read

    regs = _regs(5, [30] * 5).with_columns(
        pl.when(pl.col("nmi") == "N4").then(None).otherwise(pl.col("stream")).alias("stream")
    )
    rows = [
        _day("N1", [1.0] * 48, "A" * 48),
        _day("N2", [2.0, None, 3.0], "AAN"),
        _day("N4", [0.5] * 1440, "A" * 1440, minutes=1),
        _day("N5", [4.0] * 48, "A" * 48),
    ]
    keep = pl.DataFrame(
        {
            "nmi": ["N4", "N1", "N2", "N3"],
            "suffix": ["E1"] * 4,
            "read_date": [D, D, D, D + dt.timedelta(days=1)],
        }
    )
    partial, _, kept = profile_read(regs, pl.DataFrame(rows).lazy(), date_from=D, date_to=D, keep=keep)
    assert kept.columns == KEPT_COLUMNS
    assert kept["nmi"].to_list() == ["N1", "N2", "N4"]
    assert kept["data_minutes"].to_list() == [30, 30, 1]
    assert kept["values"].to_list()[1] == [2.0, None, 3.0]
    assert kept["quality"].to_list()[1] == "AAN"
    assert len(kept["values"].to_list()[2]) == 1440
    # the profile is unchanged by keeping: N1 and N5 (1.0 and 4.0) -> registers 2 on the segment
    assert partial.filter(pl.col("segment") == "RES|NSW|CONSUMPTION")["registers"].to_list() == [2.0]
    # nothing kept when no key is asked for
    assert profile_read(regs, pl.DataFrame(rows).lazy(), date_from=D, date_to=D)[2].height == 0


def test_lex_order_is_lexsort_by_hand() -> None:
    # keys (secondary, primary) = ([2, 1, 2, 1, 1], [0, 1, 0, 0, 1]); lexsort sorts by the
    # primary key, then the secondary, ties in input order: primary 0 → rows 0, 2, 3 with
    # secondary 2, 2, 1 → 3, 0, 2; primary 1 → rows 1, 4 (secondary 1, 1: a tie) → 1, 4
    keys = (np.array([2, 1, 2, 1, 1]), np.array([0, 1, 0, 0, 1]))
    assert lex_order(keys).tolist() == [3, 0, 2, 1, 4]


def test_lex_order_equals_lexsort_on_random_keys_with_negatives_ties_and_fallback() -> None:
    rng = np.random.default_rng(7)
    n = 5000
    cases = [
        # small ranges (many ties), negative values, a constant key, mixed dtypes
        (rng.integers(-3, 3, n), rng.integers(-1000, 1000, n).astype(np.int32), np.full(n, -5),
         rng.integers(0, 4, n).astype(np.uint8), rng.integers(0, 2, n).astype(bool)),
        # 40 + 40 bits: more than 63, np.lexsort itself
        (rng.integers(-(2**39), 2**39, n), rng.integers(0, 2**40, n)),
        # full int64 range in one key: 64 bits, fallback
        (rng.integers(-(2**62), 2**62, n) * 2, rng.integers(0, 3, n)),
        # uint64 past int64: fallback
        (rng.integers(0, 3, n).astype(np.uint64) + np.uint64(2**63),),
    ]  # fmt: skip
    for keys in cases:
        assert np.array_equal(lex_order(keys), np.lexsort(keys))
    assert lex_order((np.zeros(0, np.int64),)).tolist() == []


def test_slot_mask_sets_bit_j_for_actual_slot_j_of_selected_rows() -> None:
    # three rows (columns): row 0 actual in slots 0 and 47 → 1 + 2**47; row 1 in none (not
    # selected, left out); row 2 in slots 1, 8 and 40 → 2 + 256 + 2**40
    ok = np.zeros((48, 3), dtype=bool)
    ok[[0, 47], 0] = True
    ok[[1, 8, 40], 2] = True
    sel = np.array([True, False, True])
    assert slot_mask(ok, sel).tolist() == [1 + 2**47, 2 + 256 + 2**40]
    # a column-sliced view (as the reduce passes) gives the same
    assert slot_mask(ok[:, 1:], sel[1:]).tolist() == [2 + 256 + 2**40]


@pytest.mark.parametrize("minutes", [30, 15])
def test_half_hours_overwrite_gives_the_same_sums(minutes: int) -> None:
    # 15-minute rows: slot 0 = 1 + 2 = 3 (both A); slot 1 has an E sub-interval → 0, not actual;
    # slot 2 has a null (NaN) value → 0, not actual. 30-minute rows: slot 0 = 1, slot 1 = 0 (E),
    # slot 2 = 0 (NaN); the other slots are 0.5 (A) per sub-interval
    n = 1440 // minutes
    values = np.full((n, 1), 0.5)
    quality = np.full((n, 1), ord("A"), dtype=np.uint8)
    k = 30 // minutes
    values[0:k, 0] = [1.0, 2.0][:k]
    quality[k, 0] = ord("E")
    values[2 * k, 0] = np.nan
    plain_hh, plain_ok = half_hours(values.copy(), quality, minutes)
    hh, ok = half_hours(values, quality, minutes, overwrite=True)
    expected = [3.0, 0.0, 0.0] if minutes == 15 else [1.0, 0.0, 0.0]
    assert hh[:3, 0].tolist() == expected and hh[3, 0] == 0.5 * k
    assert ok[:3, 0].tolist() == [True, False, False]
    assert np.array_equal(hh.view(np.int64), plain_hh.view(np.int64)) and np.array_equal(ok, plain_ok)


def test_one_registers_outlier_is_capped_at_twenty_times_the_others_mean_day() -> None:
    # issue 17: N1..N4 use 1 kWh a day (1/48 per half hour); N5 uses 1,000 kWh a day, over 20x
    # the others' mean day (1 kWh): its day counts as 20 kWh (its shape kept), so
    # P = (4 x 1/48 + 20/48) / 5 = 24/240 per half hour, in the segment and in its parent.
    def day(nmi: str, kwh: float) -> dict:
        return _day(nmi, [kwh / 48] * 48, "A" * 48)

    regs = _regs(5, [30] * 5)
    part = profile_partial_sums(
        regs, pl.DataFrame([day(f"N{i}", 1.0) for i in range(1, 5)] + [day("N5", 1000.0)]).lazy()
    )
    prof = combine_profiles([part])
    for segment in ("RES|NSW|CONSUMPTION", "*|NSW|CONSUMPTION"):
        p = prof.filter(pl.col("segment") == segment)["profile"][0].to_list()
        assert p == pytest.approx([24 / 240] * 48), segment
    # a register 15x the others is within bounds: the plain mean (4 + 15) / (5 x 48)
    part = profile_partial_sums(
        regs, pl.DataFrame([day(f"N{i}", 1.0) for i in range(1, 5)] + [day("N5", 15.0)]).lazy()
    )
    p = combine_profiles([part]).filter(pl.col("segment") == "RES|NSW|CONSUMPTION")["profile"][0].to_list()
    assert p == pytest.approx([19 / 240] * 48)


def test_the_largest_register_is_found_across_shards() -> None:
    # the outlier in one shard's partial, the others in another's: the same 24/240 as in one shard
    regs = _regs(5, [30] * 5)
    small = [_day(f"N{i}", [1.0 / 48] * 48, "A" * 48) for i in range(1, 5)]
    big = [_day("N5", [1000.0 / 48] * 48, "A" * 48)]
    parts = [profile_partial_sums(regs, pl.DataFrame(rows).lazy()) for rows in (small, big)]
    p = combine_profiles(parts).filter(pl.col("segment") == "RES|NSW|CONSUMPTION")["profile"][0].to_list()
    assert p == pytest.approx([24 / 240] * 48)
