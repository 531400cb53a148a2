"""Billing CSV records (SPEC §7.1): parse, validate and convert to the reporting currency.

Pure functions over polars frames, no database or storage. A file is read with every column as
text so that nothing is coerced silently; the line number of a row is its position in the file
(header = line 1; blank lines keep their numbers and are skipped; a quoted value spanning lines
is not supported and shifts later numbers). Each row is checked with polars expressions, the same
way whatever the database (nothing is left to a database to refuse or, worse, to truncate), and
either accepted or rejected with every reason that applies (docs/BAD-INPUTS.md "Billing CSV"):
a required value missing (id, bill_date, currency, bill_amount); bytes that are not UTF-8; text
longer than its column in the schema; a control character; an id that is not printable ASCII or
that repeats one earlier in the file ignoring case (the first occurrence wins); a ``bill_date``
that is not ``YYYY-MM-DD`` or outside 1900..2099; a ``bill_amount`` that is not a plain decimal
number, has more than 12 digits before the point or more than 2 after it (DECIMAL(14,2)); an
unknown currency, no rate valid on the bill date, or a converted amount beyond DECIMAL(14,2).
The rate valid on a bill date is the one with the latest ``valid_from`` on or before it (an as-of
join per currency); the reporting currency itself converts at 1 unless ``fx_rate`` says otherwise.
The converted amount is rounded to cents half away from zero, as an invoice would.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa

from sql.schema import metadata

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
_RECORD = metadata.tables["billing_record"]
# the longest text each column holds, in characters, from the schema (sql/schema.py billing_record)
TEXT_LIMITS = {
    c: _RECORD.c[c].type.length for c in REQUIRED_COLUMNS if isinstance(_RECORD.c[c].type, sa.String)
}
MONEY_PRECISION, MONEY_SCALE = _RECORD.c.bill_amount.type.precision, _RECORD.c.bill_amount.type.scale
MONEY_LIMIT = 10 ** (MONEY_PRECISION - MONEY_SCALE)  # DECIMAL(14,2) holds |x| < 10^12
REQUIRED_VALUES = ("id", "bill_date", "currency", "bill_amount")  # NOT NULL in the schema
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2099, 12, 31)  # a plausible bill_date
CUT_CHARS = 80  # values in messages and the rejects file are cut to this many characters
_ID = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces: compared the same on every database
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


class BillingCsvError(ValueError):
    """The file as a whole cannot be read (not CSV, missing columns): nothing of it loads."""


@dataclass(frozen=True)
class ParsedBillingCsv:
    """Rows ready to load (``accepted``) and rows refused (``rejects``: line, reason, original text)."""

    source: str
    rows_read: int
    accepted: pl.DataFrame
    rejects: pl.DataFrame


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_text_columns(data: bytes, source: str) -> pl.DataFrame:
    try:
        raw = pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8-lossy")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BillingCsvError(f"{source}: not a readable CSV file: {first}") from None
    raw = raw.rename({c: c.strip().lower() for c in raw.columns})
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise BillingCsvError(f"{source}: line 1: missing column(s) {', '.join(missing)}")
    return raw.select(REQUIRED_COLUMNS)


def read_billing_csv(data: bytes, source: str) -> pl.DataFrame:
    """The file as text columns plus ``line`` and ``_not_utf8_{column}`` flags; blank lines dropped.
    Raises :class:`BillingCsvError`.

    A file that is valid UTF-8 is read as it is (a U+FFFD it holds is its own). Otherwise a value
    holding bytes that are not UTF-8 is flagged (its row is rejected, never stored with U+FFFD) and
    shows those bytes escaped, ``Caf\\xe9``, so that the rejects file says what they were; other
    values are the same either way (the bad bytes are never a comma, quote or newline)."""
    raw = _read_text_columns(data, source)
    utf8 = is_utf8(data)
    flags = [
        (pl.lit(not utf8) & pl.col(c).str.contains("\ufffd", literal=True).fill_null(False)).alias(
            f"_not_utf8_{c}"
        )
        for c in REQUIRED_COLUMNS
    ]
    raw = raw.with_columns(flags)
    if not utf8:
        shown = _read_text_columns(data.decode("utf-8", "backslashreplace").encode(), source)
        if shown.height == raw.height:
            raw = raw.with_columns(shown)
    return (
        raw.with_row_index("line", offset=2)
        .with_columns(pl.col("line").cast(pl.Int64))
        .filter(~pl.all_horizontal(pl.col(c).is_null() for c in REQUIRED_COLUMNS))
    )


def _text(name: str) -> pl.Expr:
    return pl.col(name).str.strip_chars()


def _empty(name: str) -> pl.Expr:
    return _text(name).is_null() | (_text(name) == "")


def cut(expr: pl.Expr, width: int = CUT_CHARS) -> pl.Expr:
    """A value for a message or the rejects file: beyond ``width`` characters, cut with its length."""
    n = expr.str.len_chars()
    return (
        pl.when(n > width).then(pl.format("{}… ({} characters)", expr.str.slice(0, width), n)).otherwise(expr)
    )


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


Check = tuple[str, pl.Expr, pl.Expr]  # (column, refused-when, reason)


def _text_checks() -> list[Check]:
    """Rules every text value meets: required, UTF-8, fits its column, no control characters."""
    checks: list[Check] = [(c, _empty(c), pl.lit(f"missing {c}")) for c in REQUIRED_VALUES]
    checks += [
        (c, pl.col(f"_not_utf8_{c}"), pl.lit(f"{c} is not UTF-8 text (save the file as UTF-8)"))
        for c in REQUIRED_COLUMNS
    ]
    checks += [
        (
            c,
            _text(c).str.len_chars() > n,
            pl.format(f"{c} is {{}} characters, longer than the {n} it holds", _text(c).str.len_chars()),
        )
        for c, n in TEXT_LIMITS.items()
    ]
    return checks + [
        (c, _text(c).str.contains(_CONTROL), pl.lit(f"control character in {c}")) for c in REQUIRED_COLUMNS
    ]


def _id_and_date_checks() -> list[Check]:
    ident = _text("id")
    # ids are compared ignoring case, as MariaDB's collation does, so that every database agrees
    first_line = pl.col("line").min().over(ident.str.to_lowercase())
    first_id = ident.first().over(ident.str.to_lowercase())  # rows are in line order here
    first_as = pl.when(first_id != ident).then(pl.format(" as {}", cut(first_id))).otherwise(pl.lit(""))
    return [
        (
            "id",
            ~_empty("id") & ~ident.str.contains(_ID),
            pl.format(
                "id '{}' has characters other than printable ASCII (letters, digits, punctuation)", cut(ident)
            ),
        ),
        (
            "id",
            ~_empty("id") & (pl.col("line") != first_line),
            pl.format("duplicate id {} (first at line {}{})", cut(ident), first_line, first_as),
        ),
        (
            "bill_date",
            ~_empty("bill_date") & _bill_date().is_null(),
            pl.format("bad bill_date '{}' (expected YYYY-MM-DD)", cut(_text("bill_date"))),
        ),
        (
            "bill_date",
            ~_bill_date().is_between(FIRST_DATE, LAST_DATE),
            pl.format(f"bill_date {{}} outside {FIRST_DATE}..{LAST_DATE}", _bill_date().cast(pl.String)),
        ),
    ]


def _money_checks(known_currencies: list[str]) -> list[Check]:
    """bill_amount a plain decimal that fits DECIMAL(14,2) (exactly, from its digits), a known
    currency with a rate on the bill date, and a converted amount that fits too."""
    amount = _text("bill_amount")
    unsigned = amount.str.replace(r"^[+-]", "")
    int_digits = unsigned.str.extract(r"^(\d*)").str.strip_chars_start("0").str.len_chars()
    decimals = unsigned.str.extract(r"\.(\d*)$").fill_null("").str.strip_chars_end("0").str.len_chars()
    known = _currency().is_in(known_currencies).fill_null(False)
    money, whole = f"DECIMAL({MONEY_PRECISION},{MONEY_SCALE})", MONEY_PRECISION - MONEY_SCALE
    return [
        (
            "bill_amount",
            ~_empty("bill_amount") & ~_amount_is_numeric(),
            pl.format("non-numeric bill_amount '{}'", cut(amount)),
        ),
        (
            "bill_amount",
            _amount_is_numeric() & (int_digits > whole),
            pl.format(
                f"bill_amount '{{}}' out of range (at most {whole} digits before the point: {money})",
                cut(amount),
            ),
        ),
        (
            "bill_amount",
            _amount_is_numeric() & (decimals > MONEY_SCALE),
            pl.format(
                f"bill_amount '{{}}' has more than {MONEY_SCALE} decimal places ({money})", cut(amount)
            ),
        ),
        (
            "currency",
            ~_empty("currency") & ~known,
            pl.format("unknown currency '{}'", cut(_text("currency"))),
        ),
        (
            "currency",
            known & _bill_date().is_not_null() & pl.col("rate_to_base").is_null(),
            pl.format("no fx rate for {} valid on {}", _currency(), _bill_date().cast(pl.String)),
        ),
        (
            "bill_amount",
            (int_digits <= whole) & (pl.col("_base").abs() >= MONEY_LIMIT),
            pl.format(
                f"bill_amount_base {{}} out of range after conversion ({money})",
                pl.col("_base").cast(pl.Decimal(38, 2), strict=False).cast(pl.String),
            ),
        ),
    ]


def _reasons(known_currencies: list[str]) -> list[pl.Expr]:
    """``reason``: every reason a row is refused, joined by '; ' (null when the row is good), and
    ``column``: the columns at fault, in the same order."""
    checks = _text_checks() + _id_and_date_checks() + _money_checks(known_currencies)
    reasons = pl.concat_str(
        [pl.when(w.fill_null(False)).then(r) for _, w, r in checks], separator="; ", ignore_nulls=True
    )
    columns = pl.concat_str(
        [pl.when(w.fill_null(False)).then(pl.lit(c)) for c, w, _ in checks], separator="; ", ignore_nulls=True
    )
    return [
        pl.when(reasons != "").then(reasons).alias("reason"),
        pl.when(reasons != "").then(columns).alias("column"),
    ]


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
        .with_columns(_cents(_cents(_amount()) * pl.col("rate_to_base")).alias("_base"))
        .with_columns(_reasons(rates["currency"].unique().to_list()))
    )
    rejects = typed.filter(pl.col("reason").is_not_null()).select(
        pl.lit(source).alias("file"),
        "line",
        "column",
        "reason",
        *[cut(pl.col(c)).alias(c) for c in REQUIRED_COLUMNS],
    )
    accepted = typed.filter(pl.col("reason").is_null()).select(
        _text("id").alias("id"),
        *[_text(c).alias(c) for c in ("company_name", "country", "city", "product_line", "item")],
        _bill_date().alias("bill_date"),
        _currency().alias("currency"),
        _cents(_amount()).alias("bill_amount"),
        pl.col("_base").alias("bill_amount_base"),
        pl.col("line").alias("source_line"),
    )
    return ParsedBillingCsv(source=source, rows_read=raw.height, accepted=accepted, rejects=rejects)
