"""AEMO quality and method flags of bua's estimates (SPEC §4.3; docs/METHOD.md, "Quality and method flags").

MDFF (the NEM12/NEM13 file format) writes a QualityMethod field: a quality flag (A actual, E
forward estimate, S/F substitute, N null, V variable) followed, for E, S and F, by a two-digit
method flag from the Metrology Procedure Part B: 11–25 for interval metering installations
(types 1–4), 51–59 for type 5 (MRIM), 61–69 for basic accumulation meters (type 6). bua estimates
data it has not received yet, so its quality is always ``E``; the method flag says how:

- interval registers, s_r × P(segment, day, interval) — the segment's average interval profile
  scaled to the register's own actual data of the reference window: **24 Data Scaling**;
- basic registers (``scalar``, ``seasonal`` and its weather model): the register's own average
  daily load from its read pairs, spread over the days by its segment's shape or its degree days:
  **65 ADL** (average daily load);
- basic registers without a usable read pair (``NO_HISTORY``: scalar 1 on the segment's macro
  profile, i.e. the average register of its customer class): **63 Customer Class**.

Why these and not others is in docs/METHOD.md, with the MDFF table they come from.
"""

from __future__ import annotations

import polars as pl

ESTIMATE_QUALITY = "E"
INTERVAL_METHOD_FLAG = "24"  # Data Scaling (interval, types 1–4)
BASIC_ADL_FLAG = "65"  # ADL: average daily load from the register's own reads (type 6, EST)
BASIC_CUSTOMER_CLASS_FLAG = "63"  # Customer Class: no usable history (type 6, EST/SUB)

# bua's basic model (basic_estimate.fit_registers "model") → method flag
BASIC_MODEL_FLAGS = {
    "SEASONAL": BASIC_ADL_FLAG,
    "WEATHER": BASIC_ADL_FLAG,
    "SCALAR": BASIC_ADL_FLAG,
    "NONE": BASIC_CUSTOMER_CLASS_FLAG,
}

# MDFF method flags that may follow an E (forward estimate) quality flag, per installation family
# (MDFF table of method flags: type EST or EST/SUB); interval 11–25 are SUB-typed there, see METHOD.md
INTERVAL_FLAGS = tuple(str(n) for n in range(11, 26))
BASIC_FLAGS = tuple(str(n) for n in range(61, 70))


def basic_method_flag(model: pl.Expr) -> pl.Expr:
    """The method flag of a basic estimate from its model (SEASONAL | SCALAR | NONE)."""
    return model.replace_strict(BASIC_MODEL_FLAGS, default=BASIC_CUSTOMER_CLASS_FLAG, return_dtype=pl.String)
