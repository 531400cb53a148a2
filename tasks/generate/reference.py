"""Reference data of the synthetic portfolio: jurisdictions, networks, TNIs, segments, plans, tariffs.

Everything here is a small fixed catalogue (no randomness): the real distribution networks of NSW,
VIC, QLD and SA with their NMI/MIRN prefixes, transmission node identifiers in the AEMO style,
finance segments, and a plan catalogue (flat, time-of-use, two-block; residential and business;
electricity and gas) per jurisdiction whose rates step up on 1 July each year.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

JURISDICTIONS = ("NSW", "VIC", "QLD", "SA")
TIMEZONES = {
    "NSW": "Australia/Sydney",
    "VIC": "Australia/Melbourne",
    "QLD": "Australia/Brisbane",
    "SA": "Australia/Adelaide",
}
# hours to add to market time (UTC+10) to get local standard time: SA is UTC+9:30
LOCAL_OFFSET_HOURS = {"NSW": 0.0, "VIC": 0.0, "QLD": 0.0, "SA": -0.5}

# code, name, jurisdiction, service_type, identifier prefix (4 chars), weight within (jurisdiction, fuel)
NETWORKS: tuple[tuple[str, str, str, str, str, float], ...] = (
    ("AUSGRID", "Ausgrid", "NSW", "ELECTRICITY", "4102", 0.45),
    ("ENDEAVOUR", "Endeavour Energy", "NSW", "ELECTRICITY", "4310", 0.33),
    ("ESSENTIAL", "Essential Energy", "NSW", "ELECTRICITY", "4001", 0.22),
    ("CITIPOWER", "CitiPower", "VIC", "ELECTRICITY", "6102", 0.13),
    ("POWERCOR", "Powercor", "VIC", "ELECTRICITY", "6203", 0.27),
    ("JEMENA_EL", "Jemena Electricity Networks", "VIC", "ELECTRICITY", "6001", 0.12),
    ("UNITED", "United Energy", "VIC", "ELECTRICITY", "6407", 0.24),
    ("AUSNET_EL", "AusNet Services", "VIC", "ELECTRICITY", "6305", 0.24),
    ("ENERGEX", "Energex", "QLD", "ELECTRICITY", "3114", 0.68),
    ("ERGON", "Ergon Energy", "QLD", "ELECTRICITY", "3051", 0.32),
    ("SAPN", "SA Power Networks", "SA", "ELECTRICITY", "2002", 1.0),
    ("JEMENA_GAS", "Jemena Gas Networks NSW", "NSW", "GAS", "5240", 1.0),
    ("AUSNET_GAS", "AusNet Gas Services", "VIC", "GAS", "5330", 0.40),
    ("MULTINET", "Multinet Gas", "VIC", "GAS", "5310", 0.35),
    ("AGN_VIC", "Australian Gas Networks VIC", "VIC", "GAS", "5350", 0.25),
    ("AGN_QLD", "Australian Gas Networks QLD", "QLD", "GAS", "5420", 1.0),
    ("AGN_SA", "Australian Gas Networks SA", "SA", "GAS", "5560", 1.0),
)
# transmission node identifiers (AEMO style: state letter + 3 characters of the connection point)
TNIS = {
    "NSW": ("NSYS", "NBFB", "NLP1", "NWST", "NMRK"),
    "VIC": ("VAPR", "VBTS", "VTTS", "VGTS", "VKTS"),
    "QLD": ("QBCK", "QSPN", "QLGH", "QTNL", "QMKY"),
    "SA": ("SADL", "SMBY", "SPAR", "SNBY"),
}
SEGMENTS = ("RESIDENTIAL", "SME", "C&I")

# jurisdiction weights of sites by fuel
JURISDICTION_WEIGHTS = {
    "ELECTRICITY": {"NSW": 0.36, "VIC": 0.30, "QLD": 0.20, "SA": 0.14},
    "GAS": {"NSW": 0.30, "VIC": 0.48, "QLD": 0.06, "SA": 0.16},
}
# TOU scheme per jurisdiction (1: weekday peak/shoulder/off-peak, weekend off-peak+shoulder;
# 2: weekday peak, everything else off-peak; 3: one ALL-days evening peak)
TOU_SCHEME = {"NSW": 1, "VIC": 2, "QLD": 3, "SA": 3}
TIME_CLASSES = ("PEAK", "SHOULDER", "OFFPEAK")

# price steps: rates valid from these 1 July dates (the last open-ended)
RATE_STEPS = (dt.date(2024, 7, 1), dt.date(2025, 7, 1), dt.date(2026, 7, 1))
STEP_FACTOR = (0.94, 1.0, 1.07)
PRICE_LEVEL = {"NSW": 1.0, "VIC": 0.92, "QLD": 0.97, "SA": 1.12}


def jurisdiction_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": list(range(1, 5)),
            "code": list(JURISDICTIONS),
            "timezone": [TIMEZONES[j] for j in JURISDICTIONS],
        },
        schema={"id": pl.Int64, "code": pl.String, "timezone": pl.String},
    )


def network_frame() -> pl.DataFrame:
    """Network rows plus generator-only columns (jurisdiction code, prefix, weight)."""
    jid = {j: i + 1 for i, j in enumerate(JURISDICTIONS)}
    return pl.DataFrame(
        {
            "id": list(range(1, len(NETWORKS) + 1)),
            "code": [n[0] for n in NETWORKS],
            "name": [n[1] for n in NETWORKS],
            "jurisdiction_id": [jid[n[2]] for n in NETWORKS],
            "service_type": [n[3] for n in NETWORKS],
            "jurisdiction": [n[2] for n in NETWORKS],
            "prefix": [n[4] for n in NETWORKS],
            "weight": [n[5] for n in NETWORKS],
        },
        schema_overrides={"id": pl.Int64, "jurisdiction_id": pl.Int64},
    )


def tni_frame() -> pl.DataFrame:
    codes = [(j, c) for j in JURISDICTIONS for c in TNIS[j]]
    return pl.DataFrame(
        {
            "id": list(range(1, len(codes) + 1)),
            "code": [c for _, c in codes],
            "jurisdiction": [j for j, _ in codes],
        },
        schema={"id": pl.Int64, "code": pl.String, "jurisdiction": pl.String},
    )


def segment_frame() -> pl.DataFrame:
    return pl.DataFrame({"id": [1, 2, 3], "name": list(SEGMENTS)}, schema={"id": pl.Int64, "name": pl.String})


def tou_window_frame() -> pl.DataFrame:
    """TOU windows in local clock minutes (end exclusive); every day type covers 0–1440 exactly."""
    rows = [
        # scheme 1 (NSW style)
        (1, "OFFPEAK", "WEEKDAY", 0, 420), (1, "SHOULDER", "WEEKDAY", 420, 840), (1, "PEAK", "WEEKDAY", 840, 1200),
        (1, "SHOULDER", "WEEKDAY", 1200, 1320), (1, "OFFPEAK", "WEEKDAY", 1320, 1440),
        (1, "OFFPEAK", "WEEKEND", 0, 420), (1, "SHOULDER", "WEEKEND", 420, 1320), (1, "OFFPEAK", "WEEKEND", 1320, 1440),
        # scheme 2 (VIC style)
        (2, "OFFPEAK", "WEEKDAY", 0, 900), (2, "PEAK", "WEEKDAY", 900, 1260), (2, "OFFPEAK", "WEEKDAY", 1260, 1440),
        (2, "OFFPEAK", "WEEKEND", 0, 1440),
        # scheme 3 (QLD/SA style, every day alike)
        (3, "OFFPEAK", "ALL", 0, 600), (3, "SHOULDER", "ALL", 600, 960), (3, "PEAK", "ALL", 960, 1260),
        (3, "SHOULDER", "ALL", 1260, 1440),
    ]  # fmt: skip
    return pl.DataFrame(
        rows, schema=["tou_scheme_id", "time_class", "day_type", "start_minute", "end_minute"], orient="row"
    )


# base rates (NSW level, 2025-26): per plan kind and class
_SUPPLY = {
    ("ELECTRICITY", "RES"): 1.10,
    ("ELECTRICITY", "BUS"): 1.55,
    ("GAS", "RES"): 0.78,
    ("GAS", "BUS"): 1.20,
}
_USAGE = {
    ("ELECTRICITY", "RES"): 0.305,
    ("ELECTRICITY", "BUS"): 0.285,
    ("GAS", "RES"): 0.036,
    ("GAS", "BUS"): 0.031,
}
_TOU = {"PEAK": 1.45, "SHOULDER": 0.98, "OFFPEAK": 0.70}
_BLOCK_LIMIT = {
    ("ELECTRICITY", "RES"): 11.0,
    ("ELECTRICITY", "BUS"): 60.0,
    ("GAS", "RES"): 55.0,
    ("GAS", "BUS"): 400.0,
}


def plan_catalogue() -> tuple[pl.DataFrame, pl.DataFrame]:
    """(plan with generator columns jurisdiction/customer_class/kind, plan_rate)."""
    plans: list[dict[str, object]] = []
    rates: list[dict[str, object]] = []
    for j in JURISDICTIONS:
        for fuel in ("ELECTRICITY", "GAS"):
            for cls in ("RES", "BUS"):
                kinds = ("FLAT", "TOU", "BLOCK") if fuel == "ELECTRICITY" else ("FLAT", "BLOCK")
                for kind in kinds:
                    pid = len(plans) + 1
                    code = f"{j}-{'E' if fuel == 'ELECTRICITY' else 'G'}-{cls}-{kind}"
                    name = f"{j} {fuel.title()} {'Home' if cls == 'RES' else 'Business'} {kind.title()}"
                    plans.append(
                        {
                            "id": pid, "code": code, "name": name, "service_type": fuel,
                            "tou_scheme_id": TOU_SCHEME[j] if kind == "TOU" else None,
                            # QLD TOU plans rate public holidays as ordinary days
                            "holidays_as_weekend": not (kind == "TOU" and j == "QLD"),
                            "jurisdiction": j, "customer_class": cls, "kind": kind,
                        }
                    )  # fmt: skip
                    for step, factor in zip(RATE_STEPS, STEP_FACTOR, strict=True):
                        valid_to = None if step == RATE_STEPS[-1] else dt.date(step.year + 1, 6, 30)
                        lvl = PRICE_LEVEL[j] * factor

                        def add(
                            item: str,
                            tc: str,
                            rate: float,
                            limit: float | None = None,
                            _s=step,
                            _v=valid_to,
                            _p=pid,
                        ) -> None:
                            rates.append(
                                {"plan_id": _p, "item_type": item, "time_class": tc, "block_limit_per_day": limit,
                                 "rate": round(rate, 6), "valid_from": _s, "valid_to": _v}
                            )  # fmt: skip

                        add("SUPPLY", "ANYTIME", _SUPPLY[(fuel, cls)] * lvl)
                        usage = _USAGE[(fuel, cls)] * lvl
                        if kind == "FLAT":
                            add("USAGE", "ANYTIME", usage)
                        elif kind == "BLOCK":
                            add("USAGE", "ANYTIME", usage * 0.92, _BLOCK_LIMIT[(fuel, cls)])
                            add("USAGE", "ANYTIME", usage * 1.10)
                        else:
                            for tc in TIME_CLASSES if TOU_SCHEME[j] != 2 else ("PEAK", "OFFPEAK"):
                                add("USAGE", tc, usage * _TOU[tc])
                        if fuel == "ELECTRICITY":
                            add("CONTROLLED_LOAD", "CONTROLLED", 0.17 * lvl)
                            add("FEED_IN", "ANYTIME", 0.05 * factor)
    plan = pl.DataFrame(plans, schema_overrides={"id": pl.Int64, "tou_scheme_id": pl.Int64})
    plan_rate = pl.DataFrame(rates, schema_overrides={"plan_id": pl.Int64, "block_limit_per_day": pl.Float64})
    plan_rate = plan_rate.with_row_index("id", offset=1).with_columns(pl.col("id").cast(pl.Int64))
    return plan, plan_rate
