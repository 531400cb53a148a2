"""Revenue alert (SPEC §7.3): the 6-hour window just ended, its revenue by network, the Slack text.

Windows start at 00:00, 06:00, 12:00 and 18:00 wall-clock time in the configured timezone and are
half-open, [start, end): a payment at exactly 06:00 belongs to the 06:00–12:00 window only. The
window for a moment ``t`` is the last one that ended at or before ``t`` (a late run still reports
the period it was scheduled for). Payments are stored naive in UTC, so the window is converted to
naive UTC bounds for the query. Revenue counts successful payments only (status in a configured
list, case-insensitive) and never write-offs; amounts may be stored as numbers or as text
("1234.5", " $1,234.50 "); a value that does not read as a number is counted and reported, not
summed. Messages carry totals and network codes only, never a customer identifier.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import polars as pl

WINDOW_HOURS = 6
PAYMENT_SCHEMA = {
    "payment_date": pl.Datetime,
    "amount": pl.String,
    "status": pl.String,
    "method": pl.String,
    "network": pl.String,
}


@dataclass(frozen=True)
class Window:
    """A half-open alert window: local wall-clock bounds and the naive-UTC bounds used to query."""

    start: dt.datetime
    end: dt.datetime

    @property
    def start_utc(self) -> dt.datetime:
        return self.start.astimezone(dt.UTC).replace(tzinfo=None)

    @property
    def end_utc(self) -> dt.datetime:
        return self.end.astimezone(dt.UTC).replace(tzinfo=None)

    def label(self) -> str:
        return f"{self.start:%a %d %b %Y %H:%M}–{self.end:%H:%M} {self.end:%Z}"


def window_ending(moment: dt.datetime | str | None, timezone: str, now: dt.datetime | None = None) -> Window:
    """The window that ended last at or before ``moment`` (naive = local time in ``timezone``)."""
    tz = ZoneInfo(timezone)
    if moment is None:
        moment = now or dt.datetime.now(dt.UTC)
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment.strip().replace("Z", "+00:00"))
    local = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    end_hour = local.hour - local.hour % WINDOW_HOURS
    # wall-clock boundaries, so a daylight-saving day still cuts at 00/06/12/18 local
    end = dt.datetime(local.year, local.month, local.day, end_hour, tzinfo=tz)
    start_naive = end.replace(tzinfo=None) - dt.timedelta(hours=WINDOW_HOURS)
    return Window(start=start_naive.replace(tzinfo=tz), end=end)


def parsed_amount() -> pl.Expr:
    """Amount as a number whether stored as a number or as text; null when it does not read as one."""
    text = pl.col("amount").cast(pl.String).str.strip_chars().str.replace_all(r"[$,\s]", "")
    return pl.when(text.str.contains(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")).then(text.cast(pl.Float64, strict=False))


@dataclass(frozen=True)
class RevenueSummary:
    window: Window
    total: float
    count: int
    by_network: list[tuple[str, float, int]] = field(default_factory=list)
    bad_amounts: int = 0


def summarise(
    payments: pl.DataFrame, window: Window, successful: list[str], write_off_method: str
) -> RevenueSummary:
    """Revenue of ``window``: successful, non-write-off payments in [start, end), by network, revenue desc."""
    in_window = payments.filter(
        (pl.col("payment_date") >= window.start_utc)
        & (pl.col("payment_date") < window.end_utc)
        & pl.col("status").str.strip_chars().str.to_uppercase().is_in([s.upper() for s in successful])
        & (pl.col("method").fill_null("").str.strip_chars().str.to_uppercase() != write_off_method.upper())
    ).with_columns(parsed_amount().alias("value"), pl.col("network").fill_null("UNKNOWN"))
    good = in_window.filter(pl.col("value").is_not_null())
    by_network = (
        good.group_by("network")
        .agg(pl.col("value").sum().alias("revenue"), pl.len().alias("count"))
        .sort(["revenue", "network"], descending=[True, False])
    )
    return RevenueSummary(
        window=window,
        total=float(good["value"].sum()) if good.height else 0.0,
        count=good.height,
        by_network=[(n, float(r), int(c)) for n, r, c in by_network.iter_rows()],
        bad_amounts=in_window.height - good.height,
    )


def format_currency(amount: float) -> str:
    """``$1,234.56`` (cents rounded half up; negative as ``-$12.00``)."""
    cents = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents):,.2f}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def revenue_message(summary: RevenueSummary) -> str:
    """The Slack text: totals and the by-network lines, or "No new transactions"."""
    when = summary.window.label()
    if summary.count == 0:
        lines = [f"No new transactions for {when}."]
    else:
        lines = [
            f"Revenue for {when}: {format_currency(summary.total)} from {_plural(summary.count, 'transaction')}"
        ]
        lines += [
            f"• {network}: {format_currency(revenue)} ({_plural(count, 'transaction')})"
            for network, revenue, count in summary.by_network
        ]
    if summary.bad_amounts:
        lines.append(f"⚠ {_plural(summary.bad_amounts, 'payment')} with an unreadable amount not counted.")
    return "\n".join(lines)


def failure_message(window: Window | None, error: str) -> str:
    where = f" for {window.label()}" if window else ""
    return f"Revenue alert failed{where}: {error}"


NETWORK_SCHEMA = {"account_id": pl.Int64, "start_date": pl.Date, "end_date": pl.Date, "network": pl.String}


def attach_network(payments: pl.DataFrame, account_network: pl.DataFrame) -> pl.DataFrame:
    """Each payment with the network of its account's site on the payment's date (null if none)."""
    paid_on = pl.col("payment_date").dt.date()
    matched = (
        payments.join(account_network, on="account_id", how="inner")
        .filter(
            (pl.col("start_date") <= paid_on)
            & (pl.col("end_date").is_null() | (pl.col("end_date") >= paid_on))
        )
        .sort("start_date", descending=True)
        .unique("id", keep="first")
        .select("id", "network")
    )
    return payments.join(matched, on="id", how="left")
