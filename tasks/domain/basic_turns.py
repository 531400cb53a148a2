"""Hidden dial turns of large basic registers (``seasonal`` only, tasks.domain.basic_estimate):
how many times the dial turned over each read pair, and AMBIGUOUS_READ when it is a guess."""

from __future__ import annotations

import polars as pl

from tasks.domain.basic_macro import KeyedMacro
from tasks.domain.basic_pairs import basic_registers
from tasks.domain.interval_estimate import EXCEPTION_SCHEMA
from tasks.domain.profiles import one_row_per_register

MAX_EXTRA_TURNS = 3  # turns of the dial a pair may hide beyond the SPEC's (0 or 1)
TURN_CHECK_FRACTION = 0.3  # registers whose largest pair reaches 30% of a turn are checked
TURN_REL_TOLERANCE = 0.2  # an assignment "fits" when its pairs' rms residual is <= 0.2 turn
TURN_RIVAL_RATIO = 0.5  # another number of turns fitting twice as well makes the choice a guess


def resolve_turns(
    pairs_m: pl.DataFrame, registers: pl.DataFrame, rmacro: pl.DataFrame | KeyedMacro
) -> pl.DataFrame:
    """Infer how many times the dial turned over each read pair of large registers (``seasonal``).

    SPEC §4.3 adds one turn (10^dial_digits × multiplier) to a negative difference; a register
    using close to a turn between reads may hide one more (a difference that went up after a full
    turn). For each register with dial_digits whose largest pair reaches ``TURN_CHECK_FRACTION``
    of a turn (and ≥ 2 pairs), every candidate rate ρ = (c_j + k·T) / e_j (pair j, k = 0 …
    ``MAX_EXTRA_TURNS`` extra turns, e_j = Σ M over the pair) gives each pair the k_i that brings
    c_i + k_i·T closest to ρ·e_i; ρ is then refitted (Σ c' ÷ Σ e) and k re-chosen once. An
    assignment fits when the day-weighted rms of its pairs' residuals c_i − ρ·e_i is at most
    ``TURN_REL_TOLERANCE`` turns (a missed turn leaves a residual of about a turn; seasons the
    macro profile does not follow leave much less). Absolute, not relative: adding a turn to
    every pair always makes their relative differences smaller. The
    fitting assignment with the fewest turns wins (more turns can always fit a few pairs as well:
    a register turning twice a quarter is rarer than one turning once). The pairs of a checked
    register carry the chosen consumption and are fitted on (``ambiguous`` false); they are marked
    ``turns_ambiguous`` (exception AMBIGUOUS_READ by the caller, never silent) when no assignment
    fits (the best one is used) or another number of turns fits ``TURN_RIVAL_RATIO`` × better
    (rms residual). Adds ``extra_turns``, ``turns_ambiguous``.
    Pairs of registers not checked keep read_pairs' values (and its ``ambiguous``).
    """
    out = pairs_m.with_columns(extra_turns=pl.lit(0, pl.Int64), turns_ambiguous=pl.lit(False))
    if "ambiguous" not in out.columns:
        out = out.with_columns(ambiguous=pl.lit(False))
    turn = one_row_per_register(basic_registers(registers)).select(
        "meter_register_id",
        (
            pl.lit(10.0).pow(pl.col("dial_digits").cast(pl.Float64)) * pl.col("multiplier").cast(pl.Float64)
        ).alias("_T"),
    )
    if isinstance(rmacro, KeyedMacro):
        mean_m = rmacro.regkey.join(
            rmacro.keyed.group_by("macro_key").agg(pl.col("daily").mean().alias("_mm")), on="macro_key"
        ).select("meter_register_id", "_mm")
    else:
        mean_m = rmacro.group_by("meter_register_id").agg(pl.col("daily").mean().alias("_mm"))
    p = (
        out.with_row_index("_pid")
        .join(turn, on="meter_register_id", how="left")
        .join(mean_m, on="meter_register_id", how="left")
        .with_columns(_e=pl.coalesce("sum_m", pl.col("days") * pl.col("_mm")))
        .filter(pl.col("_T").is_not_null() & (pl.col("_T") > 0) & (pl.col("_e") > 0))
    )
    if "billed" not in p.columns:
        p = p.with_columns(billed=pl.lit(None, pl.Float64))
    # the turns a billed pair hid: those that bring its count closest to what was billed
    p = p.with_columns(_kb=_turns_to(pl.col("billed")))
    check = (
        p.group_by("meter_register_id")
        .agg(
            n=pl.len(),
            big=(pl.col("consumption") / pl.col("_T")).max(),
            billed_turns=pl.col("_kb").max(),
            billed_pairs=pl.col("_kb").count(),
        )
        .filter(
            ((pl.col("n") >= 2) & (pl.col("big") >= TURN_CHECK_FRACTION))
            | (pl.col("billed_turns").fill_null(0) > 0)
        )
    )
    p = p.join(check.select("meter_register_id", "billed_pairs"), on="meter_register_id").select(
        "_pid", "meter_register_id", "consumption", "days", "_T", "_e", "_kb", "billed_pairs"
    )
    if p.height == 0:
        return out
    by_bill = p.filter(pl.col("billed_pairs") > 0)
    ks_of = pl.concat(
        [_turn_choices(p.filter(pl.col("billed_pairs") == 0)), _billed_turns(by_bill)], how="vertical_relaxed"
    )
    return (
        out.with_row_index("_pid")
        .join(ks_of, on="_pid", how="left")
        .join(turn, on="meter_register_id", how="left")
        .with_columns(
            extra_turns=pl.col("_kx").fill_null(0),
            consumption=pl.col("consumption") + pl.col("_kx").fill_null(0) * pl.col("_T").fill_null(0.0),
            # a checked register's pairs carry the chosen turns and are fitted on; when another
            # assignment is as good, the choice is reported (turns_ambiguous → AMBIGUOUS_READ)
            ambiguous=pl.when(pl.col("_amb").is_not_null()).then(False).otherwise(pl.col("ambiguous")),
            turns_ambiguous=pl.col("_amb").fill_null(False),
        )
        .sort("_pid")
        .drop("_pid", "_kx", "_amb", "_T")
    )


def _turns_to(target: pl.Expr) -> pl.Expr:
    """The extra turns (0 … ``MAX_EXTRA_TURNS``) that bring a pair's consumption closest to ``target``
    (rows with consumption and _T, the turn)."""
    return ((target - pl.col("consumption")) / pl.col("_T")).round(0).clip(0, MAX_EXTRA_TURNS).cast(pl.Int64)


def _billed_turns(p: pl.DataFrame) -> pl.DataFrame:
    """_pid, _kx, _amb of the pairs of registers with billed pairs: a billed pair takes the turns its
    billed quantity shows; the others the turns that bring them closest to the rate ρ = Σ c' ÷ Σ e
    of the billed pairs. Never a guess (``_amb`` false)."""
    rho = (pl.col("consumption") + pl.col("_kb") * pl.col("_T")).filter(
        pl.col("_kb").is_not_null()
    ).sum() / pl.col("_e").filter(pl.col("_kb").is_not_null()).sum()
    k = _turns_to(pl.col("_rho") * pl.col("_e"))
    return p.with_columns(_rho=rho.over("meter_register_id")).select(
        "_pid", pl.coalesce("_kb", k).alias("_kx"), pl.lit(False).alias("_amb")
    )


def _turn_choices(p: pl.DataFrame) -> pl.DataFrame:
    """_pid, _kx (the extra turns chosen for the pair), _amb (the choice is a guess) of the checked
    registers' pairs ``p`` (_pid, meter_register_id, consumption, days, _T, _e): see
    :func:`resolve_turns`."""
    ks = pl.DataFrame({"_k": list(range(MAX_EXTRA_TURNS + 1))}, schema={"_k": pl.Int64})
    cands = (
        p.join(ks, how="cross")
        .select(
            "meter_register_id",
            pl.concat_str([pl.col("_pid"), pl.col("_k")], separator=":").alias("cand"),
            ((pl.col("consumption") + pl.col("_k") * pl.col("_T")) / pl.col("_e")).alias("rho"),
        )
        .join(p, on="meter_register_id")
    )

    def assign(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(k=_turns_to(pl.col("rho") * pl.col("_e"))).with_columns(
            c=pl.col("consumption") + pl.col("k") * pl.col("_T")
        )

    x = assign(cands)
    x = assign(x.with_columns(rho=(pl.col("c").sum() / pl.col("_e").sum()).over("meter_register_id", "cand")))
    x = x.with_columns(rho=(pl.col("c").sum() / pl.col("_e").sum()).over("meter_register_id", "cand"))
    # day-weighted rms of the pairs' residuals from the rate's prediction, in turns of the dial
    pred = pl.col("rho") * pl.col("_e")
    scored = (
        x.group_by("meter_register_id", "cand")
        .agg(
            rel=(
                (pl.col("days") * ((pl.col("c") - pred) / pl.col("_T")) ** 2).sum() / pl.col("days").sum()
            ).sqrt(),
            turns=pl.col("k").sum(),
        )
        .with_columns(rel=pl.col("rel").fill_nan(None).fill_null(float("inf")))
    )
    fits = scored.filter(pl.col("rel") <= TURN_REL_TOLERANCE)
    # the fewest turns that fit; when none fits, the best fit (reported)
    chosen = pl.concat(
        [
            fits.sort("meter_register_id", "turns", "rel", "cand").unique("meter_register_id", keep="first"),
            scored.join(fits, on="meter_register_id", how="anti")
            .sort("meter_register_id", "rel", "turns", "cand")
            .unique("meter_register_id", keep="first"),
        ]
    )
    # another number of turns fitting much better makes the choice a guess
    rivals = (
        scored.join(
            chosen.select("meter_register_id", pl.col("turns").alias("_t"), pl.col("rel").alias("_r")),
            on="meter_register_id",
        )
        .filter((pl.col("turns") != pl.col("_t")) & (pl.col("rel") <= TURN_RIVAL_RATIO * pl.col("_r")))
        .select("meter_register_id")
        .unique()
    )
    verdict = chosen.select(
        "meter_register_id",
        "cand",
        (
            (pl.col("rel") > TURN_REL_TOLERANCE)
            | pl.col("meter_register_id").is_in(rivals["meter_register_id"].implode())
        ).alias("_amb"),
    )
    return x.join(verdict, on=["meter_register_id", "cand"]).select("_pid", pl.col("k").alias("_kx"), "_amb")


def _ambiguous_exceptions(pairs_m: pl.DataFrame) -> pl.DataFrame:
    """One AMBIGUOUS_READ row per register with read pairs whose number of dial turns is a guess."""
    amb = pairs_m.filter(pl.col("ambiguous") | pl.col("turns_ambiguous"))
    return (
        amb.group_by("meter_register_id", "account_id")
        .agg(n=pl.len(), first=pl.col("start").min(), last=pl.col("end").max(), c=pl.col("consumption").sum())
        .sort("meter_register_id", "account_id")
        .select(
            "account_id",
            "meter_register_id",
            pl.lit("AMBIGUOUS_READ").alias("code"),
            pl.format(
                "{} read pair(s) between {} and {} use about a full turn of the dial or more: the number "
                "of rollovers is a guess ({} units counted, the fewest turns that fit the register's rate)",
                "n",
                "first",
                "last",
                pl.col("c").round(0),
            ).alias("detail"),
        )
        .cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]
    )
