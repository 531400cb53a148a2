"""The profiles' store read in one compiled pass per part (tasks/domain/profiles.py).

For the rows of one interval length in one month chunk of a shard (store order), reading each
row's values and quality straight from the chunk's arrow buffers, :func:`reduce_part` does what
the numpy steps of tasks/domain/interval_grids.py and profiles do one array pass at a time —
the plausibility caps (:func:`tasks.domain.plausibility.flag_rows`), the half hours
(:func:`tasks.domain.half_hour_grid.half_hours`), the day sum (``slot_sum``), the sums per
(segment, day, slot), the register counts, the largest register day (robust_profile) and the day
grid rows — without copying the month's values into a (48, rows) array first. The numpy steps
stay the reference (the scalars' store path uses them); tests/tasks/test_profile_kernel.py checks
the two agree. Arithmetic per row is the numpy steps' own, in their order (a half hour is its
sub-intervals added first to last, then × 1.0 or 0.0; a day sum is slot 0 + slot 1 + …), so a
day grid row has the same bytes as the scalars' store path; the (segment, day) sums add rows in
store order.

Measured at 100k accounts (16 shards): the numpy steps cost about as much CPU as decoding the
parquet values (docs/SCALE.md).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tasks.domain.half_hour_grid import SLOTS
from tasks.domain.interval_grids import RawPart
from tasks.domain.plausibility import ABOVE_DAY, ABOVE_INTERVAL, NEGATIVE, NOT_FINITE, RegisterCaps

_A, _S, _F = ord("A"), ord("S"), ord("F")


@njit(nogil=True, cache=True)
def _flag(values, nan, nan_stored, vb, n, rate_cap, day_cap, minutes, allow_negative):  # noqa: ANN001, ANN202
    """flag_rows for one row: (reason, value, cap)."""
    total = values[vb]
    vmax = values[vb]
    vmin = values[vb]
    for t in range(1, n):  # when the total is finite every value is: a plain max and min
        v = values[vb + t]
        total += v
        vmax = max(vmax, v)
        vmin = min(vmin, v)
    nonfinite = False
    first_bad = 0.0
    if not np.isfinite(total):
        total = 0.0
        vmax = -np.inf
        vmin = np.inf
        first = True
        found = False
        for t in range(n):
            v = values[vb + t]
            fin = np.isfinite(v)
            bad = (not fin) and (v == v)  # ±inf
            if (nan_stored and v != v) or (nan.shape[0] > 0 and nan[vb + t]):
                bad = True  # a stored NaN (a null is missing data, not a bad value)
            if bad and not found:
                first_bad = v
                found = True
            if not fin:
                v = 0.0
            if first:
                total, vmax, vmin, first = v, v, v, False
            else:
                total += v
                vmax = max(vmax, v)
                vmin = min(vmin, v)
        nonfinite = found
        if not found:
            first_bad = values[vb]
    interval_cap = rate_cap * (minutes / 60)
    negative = (vmin < 0) and not allow_negative
    above = vmax > interval_cap
    over_day = total > day_cap
    reason = 0
    value = total
    if nonfinite:
        reason, value = NOT_FINITE, first_bad
    elif negative:
        reason, value = NEGATIVE, vmin
    elif above:
        reason, value = ABOVE_INTERVAL, vmax
    elif over_day:
        reason = ABOVE_DAY
    cap = interval_cap if above else day_cap
    return reason, value, cap


@njit(nogil=True, cache=True)
def _half_hours(values, quality, vb, qb, k, plausible, hh, hok):  # noqa: ANN001, ANN202
    """half_hours + slot_sum + slot_mask for one row into ``hh``/``hok``: (any actual, mask, day sum)."""
    any_ok = False
    mask = np.int64(0)
    day_sum = 0.0
    for j in range(48):
        s = 0.0
        allok = True
        for kk in range(k):
            t = j * k + kk
            q = quality[qb + t]
            v = values[vb + t]
            ok = plausible and (q == _A or q == _S or q == _F) and v == v
            kept = v if ok else 0.0
            if kk == 0:
                s = kept
            else:
                s += kept
            allok = allok and ok
        if k > 1:
            s = s * (1.0 if allok else 0.0)
        hh[j] = s
        hok[j] = allok
        if allok:
            any_ok = True
            mask |= np.int64(1) << np.int64(j)
        if j == 0:
            day_sum = s
        else:
            day_sum += s
    return any_ok, mask, day_sum


# fmt: off
@njit(nogil=True, cache=True)
def _reduce_rows(  # noqa: ANN202, PLR0913
    values, voff, quality, qoff, nan, nan_stored, rows, rg, dy, n, minutes,  # noqa: ANN001
    check, rate_cap, day_cap, allow_negative, seg_of_reg, dlo, g_from,  # noqa: ANN001
    tot, cnt, nreg, nrows, top_day, top,  # noqa: ANN001  (dense (segment, day[, slot]) sums)
    grid_reg, grid_day, grid_sum, grid_mask,  # noqa: ANN001  (day-grid rows, filled from 0)
    flag_i, flag_reason, flag_value, flag_cap,  # noqa: ANN001  (flagged rows, filled from 0)
):
    """The part's rows in order: flags, half hours, sums; returns (day-grid rows, flagged rows)."""
# fmt: on
    k = n // 48
    hh = np.empty(48)
    hok = np.empty(48, dtype=np.bool_)
    ngrid = 0
    nflag = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        vb = voff[r]
        qb = qoff[r]
        reason = 0
        if check:
            reg = rg[i]
            reason, value, cap = _flag(
                values, nan, nan_stored, vb, n, rate_cap[reg], day_cap[reg], minutes, allow_negative
            )
            if reason > 0:
                flag_i[nflag] = i
                flag_reason[nflag] = reason
                flag_value[nflag] = value
                flag_cap[nflag] = cap
                nflag += 1
        seg = seg_of_reg[rg[i]]
        if seg < 0:
            continue
        any_ok, mask, day_sum = _half_hours(values, quality, vb, qb, k, reason == 0, hh, hok)
        d = dy[i] - dlo
        for j in range(48):
            tot[seg, d, j] += hh[j]
            if hok[j]:
                cnt[seg, d, j] += 1.0
        if any_ok:
            nreg[seg, d] += 1.0
        nrows[seg, d] += 1
        if day_sum > top_day[seg, d]:  # the first row with the largest day wins
            top_day[seg, d] = day_sum
            for j in range(48):
                top[seg, d, j] = hh[j]
        if any_ok and dy[i] >= g_from:
            grid_reg[ngrid] = rg[i]
            grid_day[ngrid] = dy[i]
            grid_sum[ngrid] = day_sum
            grid_mask[ngrid] = mask
            ngrid += 1
    return ngrid, nflag


def reduce_part(
    part: RawPart, caps: RegisterCaps | None, seg_of_reg: np.ndarray, nseg: int, g_from: int | None
) -> tuple:
    """One part's (rows of one length, store order) contribution, on the days it covers:
    (dlo, tot, cnt, nreg, rows, top_day, top) dense over (segment, day − dlo[, slot]), the day
    grid rows (reg, day, actual_sum, ok_mask) of days ≥ ``g_from`` with an actual half hour, and
    the flagged rows (reg, day, reason, value, cap, minutes) when ``caps`` is given."""
    values, voff, quality, qoff, nan = part.values, part.voff, part.quality, part.qoff, part.nan
    rows, rg, dy, minutes = part.rows, part.reg, part.day, part.minutes
    n = 1440 // minutes
    dlo = int(dy.min())
    span = int(dy.max()) - dlo + 1
    tot = np.zeros((nseg, span, SLOTS))
    cnt = np.zeros((nseg, span, SLOTS))
    nreg = np.zeros((nseg, span))
    nrows = np.zeros((nseg, span), dtype=np.int64)
    top_day = np.full((nseg, span), -np.inf)
    top = np.zeros((nseg, span, SLOTS))
    m = len(rows)
    grid = (np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m), np.empty(m, np.int64))
    flags = (np.empty(m, np.int64), np.empty(m, np.int8), np.empty(m), np.empty(m))
    rate, day, allow = (caps.rate, caps.day, caps.allow_negative) if caps is not None else (np.zeros(0), np.zeros(0), True)
    ngrid, nflag = _reduce_rows(
        values, voff, quality, qoff, nan if nan is not None else np.zeros(0, np.bool_), part.nan_stored,
        rows, rg, dy, n, float(minutes), caps is not None, rate, day, allow,
        seg_of_reg, dlo, g_from if g_from is not None else np.iinfo(np.int64).max,
        tot, cnt, nreg, nrows, top_day, top, *grid, *flags,
    )  # fmt: skip
    grid_rows = tuple(a[:ngrid] for a in grid) if g_from is not None else ()
    fi = flags[0][:nflag]
    flagged = (rg[fi], dy[fi], flags[1][:nflag], flags[2][:nflag], flags[3][:nflag], np.full(nflag, minutes))
    return (dlo, tot, cnt, nreg, nrows, top_day, top), grid_rows, flagged


@njit(nogil=True, cache=True)
def _masked_profile_sums(pvals, seg, day, mask, out_sum, out_slots):  # noqa: ANN001, ANN202
    for i in range(seg.shape[0]):
        s = 0.0
        c = 0
        for j in range(48):
            ok = (mask[i] >> np.int64(j)) & np.int64(1)
            x = pvals[seg[i], day[i], j] * (1.0 if ok else 0.0)
            s = x if j == 0 else s + x
            c += ok
        out_sum[i] = s
        out_slots[i] = c


def masked_profile_sums(
    pvals: np.ndarray, seg: np.ndarray, day: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(Σ profile over each row's actual half hours, number of actual half hours) of day-grid rows
    (segment, day, ok_mask bits) — ``slot_sum(pvals[seg, day].T * unpack_mask(mask))`` and
    ``unpack_mask(mask).sum(axis=0)`` with the same arithmetic in the same order (the same
    bytes as the scalars' store path), without the (48, rows) arrays."""
    out_sum, out_slots = np.empty(len(seg)), np.empty(len(seg), np.int64)
    _masked_profile_sums(
        np.ascontiguousarray(pvals, dtype=np.float64), seg.astype(np.int64), day.astype(np.int64),
        mask.astype(np.int64), out_sum, out_slots,
    )  # fmt: skip
    return out_sum, out_slots


def warm_up() -> None:
    """Compile the kernel into numba's cache (``cache=True``: next to this file, else the user's
    cache folder) on one tiny part, so that a run loads it instead of compiling (~2 s); the image
    build calls it (infra/Dockerfile)."""
    one = np.zeros(1, np.int64)
    part = RawPart(np.ones(48), np.array([0, 48]), np.full(48, ord("A"), np.uint8), np.array([0, 48]), None, True,
                   one, one, one, 30)  # fmt: skip
    reduce_part(part, RegisterCaps(np.ones(1), np.ones(1), False), one, 1, 0)
    masked_profile_sums(np.ones((1, 1, 48)), np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones(1, np.int64))
