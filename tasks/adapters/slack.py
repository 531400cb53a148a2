"""Post a message to a Slack incoming webhook, with retries, without ever revealing the webhook.

The webhook URL is a secret (whoever has it can post to the channel): it is held as a
``SecretStr``, never logged, and errors name only the HTTP status or the exception type. httpx logs
every request URL at INFO level, so the ``httpx`` logger is filtered while a post is in flight.
Retries (tenacity): connection errors, HTTP 429 and 5xx, with exponential back-off; other 4xx
answers are final. Messages are plain text composed by the callers, who keep customer
identifiers out of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from pydantic import SecretStr
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from tasks.redact import redact


class SlackError(RuntimeError):
    """Slack did not accept the message; the text never contains the webhook URL."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class _RedactUrl(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        return self.secret not in record.getMessage()


@contextmanager
def _quiet_httpx(secret: str) -> Iterator[None]:
    filt = _RedactUrl(secret)
    loggers = [logging.getLogger(n) for n in ("httpx", "httpcore")]
    for lg in loggers:
        lg.addFilter(filt)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(filt)


def _post_once(url: str, payload: dict[str, object], timeout: float) -> None:
    try:
        response = httpx.post(url, json=payload, timeout=timeout)
    except httpx.HTTPError as exc:
        raise SlackError(f"could not reach the Slack webhook: {type(exc).__name__}", retryable=True) from None
    if response.status_code == 429 or response.status_code >= 500:
        raise SlackError(f"Slack webhook answered HTTP {response.status_code}", retryable=True)
    if response.status_code >= 400:
        raise SlackError(f"Slack webhook refused the message: HTTP {response.status_code}")


def post_message(
    webhook: SecretStr, text: str, attempts: int = 4, backoff_seconds: float = 0.5, timeout: float = 10.0
) -> None:
    """Post ``text``; raise :class:`SlackError` (without the URL) after ``attempts`` failures."""
    url = webhook.get_secret_value()
    text = redact(text.replace(url, "<slack webhook>"))  # a credential never reaches the channel
    sender = retry(
        retry=retry_if_exception(lambda e: isinstance(e, SlackError) and e.retryable),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff_seconds, max=30),
        reraise=True,
    )(_post_once)
    with _quiet_httpx(url):
        sender(url, {"text": text}, timeout)
