"""Billing CSV records (SPEC §7.1): parse, validate and convert to the reporting currency.

Pure functions over polars frames, no database or storage. A file is read with every column as
text so that nothing is coerced silently; the line number of a row is its position in the file
(header = line 1; blank lines keep their numbers and are skipped; a quoted value spanning lines
is not supported and shifts later numbers). Each row is checked with polars expressions and
either accepted or rejected with every reason that applies: missing id, an id repeated within
the file (the first occurrence wins), a ``bill_date`` that is not ``YYYY-MM-DD``, a non-numeric
``bill_amount``, an unknown currency, or no rate valid on the bill date. The rate valid on a
bill date is the one with the latest ``valid_from`` on or before it (an as-of join per currency);
the reporting currency itself converts at 1 unless ``fx_rate`` says otherwise. Money is rounded
to cents half away from zero, as an invoice would.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import polars as pl

REQUIRED_COLUMNS = (
    "id",
    "company_name",
    "country",
    "city",
    "product_line",
    "item",
    "bill_date",
    "currency",
    "bill_amount",
)
FX_SCHEMA = {"currency": pl.String, "valid_from": pl.Date, "rate_to_base": pl.Float64}
_AMOUNT = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"
_EPOCH = dt.date(1, 1, 1)


class BillingCsvError(ValueError):
    """The file as a whole cannot be read (not CSV, missing columns): nothing of it loads."""


@dataclass(frozen=True)
class ParsedBillingCsv:
    """Rows ready to load (``accepted``) and rows refused (``rejects``: line, reason, original text)."""

    source: str
    rows_read: int
    accepted: pl.DataFrame
    rejects: pl.DataFrame


def read_billing_csv(data: bytes, source: str) -> pl.DataFrame:
    """The file as text columns plus ``line``; blank lines dropped. Raises :class:`BillingCsvError`."""
    try:
        raw = pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8-lossy")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BillingCsvError(f"{source}: not a readable CSV file: {first}") from None
    raw = raw.rename({c: c.strip().lower() for c in raw.columns})
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise BillingCsvError(f"{source}: line 1: missing column(s) {', '.join(missing)}")
    return (
        raw.select(REQUIRED_COLUMNS)
        .with_row_index("line", offset=2)
        .with_columns(pl.col("line").cast(pl.Int64))
        .filter(~pl.all_horizontal(pl.col(c).is_null() for c in REQUIRED_COLUMNS))
    )


def _text(name: str) -> pl.Expr:
    return pl.col(name).str.strip_chars()


def _bill_date() -> pl.Expr:
    return _text("bill_date").str.to_date("%Y-%m-%d", strict=False)


def _amount_is_numeric() -> pl.Expr:
    return _text("bill_amount").str.contains(_AMOUNT).fill_null(False)


def _amount() -> pl.Expr:
    return pl.when(_amount_is_numeric()).then(_text("bill_amount").cast(pl.Float64, strict=False))


def _cents(expr: pl.Expr) -> pl.Expr:
    return expr.round(2, mode="half_away_from_zero")


def _currency() -> pl.Expr:
    return _text("currency").str.to_uppercase()


def fx_with_base(fx: pl.DataFrame, reporting_currency: str) -> pl.DataFrame:
    """``fx_rate`` rows, plus the reporting currency at 1 from the beginning of time if absent."""
    fx = fx.select(
        pl.col("currency").str.strip_chars().str.to_uppercase(),
        pl.col("valid_from").cast(pl.Date),
        pl.col("rate_to_base").cast(pl.Float64),
    )
    base = reporting_currency.upper()
    if fx.filter(pl.col("currency") == base).height == 0:
        fx = pl.concat(
            [
                fx,
                pl.DataFrame(
                    {"currency": [base], "valid_from": [_EPOCH], "rate_to_base": [1.0]}, schema=FX_SCHEMA
                ),
            ]
        )
    return fx.sort("currency", "valid_from")


def _reasons(known_currencies: list[str]) -> pl.Expr:
    """Every reason a row is refused, joined by '; ' (null when the row is good)."""
    ident = _text("id")
    first_line = pl.col("line").min().over(ident)
    parts = [
        pl.when(ident.is_null() | (ident == "")).then(pl.lit("missing id")),
        pl.when((ident != "") & (pl.col("line") != first_line)).then(
            pl.format("duplicate id {} (first at line {})", ident, first_line)
        ),
        pl.when(_bill_date().is_null()).then(
            pl.format("bad bill_date '{}' (expected YYYY-MM-DD)", pl.col("bill_date").fill_null(""))
        ),
        pl.when(~_amount_is_numeric()).then(
            pl.format("non-numeric bill_amount '{}'", pl.col("bill_amount").fill_null(""))
        ),
        pl.when(~_currency().is_in(known_currencies).fill_null(False)).then(
            pl.format("unknown currency '{}'", pl.col("currency").fill_null(""))
        ),
        pl.when(
            _currency().is_in(known_currencies).fill_null(False)
            & _bill_date().is_not_null()
            & pl.col("rate_to_base").is_null()
        ).then(pl.format("no fx rate for {} valid on {}", _currency(), _bill_date().cast(pl.String))),
    ]
    joined = pl.concat_str(parts, separator="; ", ignore_nulls=True)
    return pl.when(joined != "").then(joined).alias("reason")


def parse_billing_csv(
    data: bytes, source: str, fx: pl.DataFrame, reporting_currency: str
) -> ParsedBillingCsv:
    """Validate and convert one billing CSV; see the module docstring for the rules."""
    raw = read_billing_csv(data, source)
    rates = fx_with_base(fx, reporting_currency)
    typed = (
        raw.with_columns(_currency().alias("_currency"), _bill_date().alias("_bill_date"))
        .sort("_bill_date", "line", nulls_last=True)
        .join_asof(
            rates.rename({"currency": "_currency"}),
            left_on="_bill_date",
            right_on="valid_from",
            by="_currency",
            strategy="backward",
            check_sortedness=False,
        )
        .sort("line")
        .with_columns(_reasons(rates["currency"].unique().to_list()))
    )
    rejects = typed.filter(pl.col("reason").is_not_null()).select("line", "reason", *REQUIRED_COLUMNS)
    accepted = typed.filter(pl.col("reason").is_null()).select(
        _text("id").alias("id"),
        *[_text(c).alias(c) for c in ("company_name", "country", "city", "product_line", "item")],
        _bill_date().alias("bill_date"),
        _currency().alias("currency"),
        _cents(_amount()).alias("bill_amount"),
        _cents(_cents(_amount()) * pl.col("rate_to_base")).alias("bill_amount_base"),
        pl.col("line").alias("source_line"),
    )
    return ParsedBillingCsv(source=source, rows_read=raw.height, accepted=accepted, rejects=rejects)
