"""Revenue alert (SPEC §7.3): windows, sums by network, currency format, Slack messages, secrecy."""

from __future__ import annotations

import logging

import polars as pl
import pytest
from pydantic import SecretStr

from flows.alert import revenue_alert
from tasks.adapters.slack import SlackError, post_message
from tasks.companion.revenue_alert import format_currency, summarise, window_ending
from tests.companion.seed import T, insert, seed_reference

SYDNEY = "Australia/Sydney"
# 2 March 2025 is daylight time in Sydney (AEDT, UTC+11): local 06:00 = 2025-03-01 19:00 UTC
PAYMENTS = [
    # id, account (1 AUSGRID, 2 ENDEAVOUR, 3 ESSENTIAL), UTC time, amount, status, method
    (1, 1, T(2025, 3, 1, 19, 0, 0), 100.00, "SUCCESS", "CARD"),  # exactly 06:00 local: 06–12 window only
    (2, 1, T(2025, 3, 1, 18, 59, 59), 50.00, "SUCCESS", "CARD"),  # 05:59:59 local: 00–06 window
    (3, 2, T(2025, 3, 1, 22, 30), 1200.50, "SUCCESS", "BPAY"),
    (4, 3, T(2025, 3, 2, 0, 15), 34.06, "settled", "DD"),  # status compared case-insensitively
    (5, 3, T(2025, 3, 2, 0, 20), 99.00, "FAILED", "CARD"),  # not successful
    (6, 2, T(2025, 3, 2, 1, 0, 0), 70.00, "SUCCESS", "CARD"),  # exactly 12:00 local: next window
    (7, 1, T(2025, 3, 2, 0, 30), 200.00, "SUCCESS", "WRITE_OFF"),  # a write-off is not revenue
    (8, 1, T(2025, 3, 1, 20, 0), 10.00, "SUCCESS", "CARD"),
]
# 06:00–12:00 window: AUSGRID 100.00 + 10.00 = 110.00 (2); ENDEAVOUR 1200.50 (1); ESSENTIAL 34.06 (1)
# total 110.00 + 1200.50 + 34.06 = 1344.56 from 4; sorted by revenue: ENDEAVOUR, AUSGRID, ESSENTIAL
WITH_TRANSACTIONS = (
    "Revenue for Sun 02 Mar 2025 06:00–12:00 AEDT: $1,344.56 from 4 transactions\n"
    "• ENDEAVOUR: $1,200.50 (1 transaction)\n"
    "• AUSGRID: $110.00 (2 transactions)\n"
    "• ESSENTIAL: $34.06 (1 transaction)"
)
NETWORK = {1: "AUSGRID", 2: "ENDEAVOUR", 3: "ESSENTIAL"}


def _frame(amounts: list[object] | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "payment_date": [p[2] for p in PAYMENTS],
            "amount": amounts or [str(p[3]) for p in PAYMENTS],
            "status": [p[4] for p in PAYMENTS],
            "method": [p[5] for p in PAYMENTS],
            "network": [NETWORK[p[1]] for p in PAYMENTS],
        }
    )


def test_windows_are_six_hour_half_open_and_cut_at_local_wall_clock():
    w = window_ending("2025-03-02T12:00", SYDNEY)
    assert (w.start_utc, w.end_utc) == (T(2025, 3, 1, 19), T(2025, 3, 2, 1))
    # any moment up to the next boundary reports the same window; a boundary starts the next one
    assert window_ending("2025-03-02T17:59:59", SYDNEY) == w
    assert window_ending("2025-03-02T01:00:00Z", SYDNEY) == w
    assert window_ending("2025-03-02T11:59:59", SYDNEY).end_utc == T(2025, 3, 1, 19)
    # first Sunday of April 2025, 03:00 AEDT -> 02:00 AEST: the 00–06 window is 7 hours long
    dst = window_ending("2025-04-06T06:00", SYDNEY)
    assert (dst.start_utc, dst.end_utc) == (T(2025, 4, 5, 13), T(2025, 4, 5, 20))


def test_payment_at_exactly_six_belongs_to_exactly_one_window():
    early = summarise(
        _frame(), window_ending("2025-03-02T06:00", SYDNEY), ["SUCCESS", "SETTLED"], "WRITE_OFF"
    )
    late = summarise(_frame(), window_ending("2025-03-02T12:00", SYDNEY), ["SUCCESS", "SETTLED"], "WRITE_OFF")
    assert (early.total, early.count) == (50.00, 1)  # payment 2 only
    assert late.by_network == [("ENDEAVOUR", 1200.50, 1), ("AUSGRID", 110.00, 2), ("ESSENTIAL", 34.06, 1)]
    assert late.total == pytest.approx(1344.56)


def test_text_and_numeric_amounts_both_read_and_bad_ones_counted():
    amounts = ["100", None, " $1,200.50 ", "34.06", "n/a", "70", "200", "ten"]
    s = summarise(
        _frame(amounts), window_ending("2025-03-02T12:00", SYDNEY), ["SUCCESS", "SETTLED"], "WRITE_OFF"
    )
    # in the window and successful: payments 1, 3, 4, 8 -> "100", " $1,200.50 ", "34.06", "ten"
    assert (s.count, s.bad_amounts) == (3, 1)
    assert s.total == pytest.approx(100 + 1200.50 + 34.06)
    numeric = _frame().with_columns(pl.col("amount").cast(pl.Float64))
    assert (
        summarise(
            numeric, window_ending("2025-03-02T12:00", SYDNEY), ["SUCCESS", "SETTLED"], "WRITE_OFF"
        ).count
        == 4
    )


@pytest.mark.parametrize(
    ("amount", "text"),
    [(1234.56, "$1,234.56"), (0, "$0.00"), (1234567.8, "$1,234,567.80"), (0.125, "$0.13"), (-12, "-$12.00")],
)
def test_currency_format(amount: float, text: str):
    assert format_currency(amount) == text


def test_slack_post_retries_server_errors_and_never_shows_the_url(slack_webhook):
    slack_webhook.statuses = [500, 503]
    post_message(SecretStr(slack_webhook.url), "hello", backoff_seconds=0.01)
    assert [c["status"] for c in slack_webhook.calls] == [500, 503, 200]
    assert slack_webhook.texts == ["hello"]
    slack_webhook.statuses = [400]
    with pytest.raises(SlackError) as err:
        post_message(SecretStr(slack_webhook.url), "refused", backoff_seconds=0.01)
    assert str(err.value) == "Slack webhook refused the message: HTTP 400"
    assert len(slack_webhook.calls) == 4  # a 4xx is not retried


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_alert_flow_posts_the_three_message_kinds(prefect_harness, slack_webhook, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/bua.db"
    monkeypatch.setenv("BUA_DATABASE_URL", url)  # the worker's setting: never a flow parameter
    seed_reference(url)
    insert(
        url,
        "payment",
        [
            dict(id=p[0], account_id=p[1], payment_date=p[2], amount=p[3], status=p[4], method=p[5])
            for p in PAYMENTS
        ],
    )
    collect = _Collect()
    watched = [logging.getLogger(n) for n in ("", "prefect", "httpx", "httpcore")]
    levels = [lg.level for lg in watched]
    for lg in watched:
        lg.addHandler(collect)
        lg.setLevel(logging.DEBUG)
    try:
        result = revenue_alert(window_end="2025-03-02T12:00:00")
        none = revenue_alert(window_end="2025-03-03T00:00:00")
        monkeypatch.setenv("BUA_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
        with pytest.raises(Exception, match="lacks table"):
            revenue_alert(window_end="2025-03-03T00:00:00")
    finally:
        for lg, level in zip(watched, levels, strict=True):
            lg.removeHandler(collect)
            lg.setLevel(level)

    assert (result["count"], result["total"], result["bad_amounts"]) == (4, 1344.56, 0)
    assert none["count"] == 0
    texts = slack_webhook.texts
    assert texts[:2] == [WITH_TRANSACTIONS, "No new transactions for Sun 02 Mar 2025 18:00–00:00 AEDT."]
    assert len(texts) == 3
    assert texts[2].startswith("Revenue alert failed for Sun 02 Mar 2025 18:00–00:00 AEDT: ")
    assert "lacks table(s) payment, account_site, site, network" in texts[2]
    # no customer identifiers in any message, the webhook in no log line (yet the logs were seen)
    assert not any(a in t for t in texts for a in ("A-001", "A-002", "A-003", "4102000001"))
    assert any("revenue alert posted" in line for line in collect.lines)
    assert not [line for line in collect.lines if slack_webhook.token in line]
    assert all(c["path"] == f"/services/{slack_webhook.token}" for c in slack_webhook.calls)
