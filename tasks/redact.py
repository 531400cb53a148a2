"""Remove credentials from any text before it reaches a log, an error line, Slack or a file.

One pure function, :func:`redact`, for every place text leaves bua (docs/DEPLOY.md "Secrets"). It
replaces with ``***``:

- the password of a URL's user-info: ``scheme://user:pass@host`` → ``scheme://user:***@host`` (the
  user name stays: it says which account failed; a password holding ``@`` or ``/`` is covered);
- the value of a secret-looking parameter, in a query string or as ``name=value`` anywhere
  (``?password=…``, ``&token=…``, ``pwd='…'``, ``X-Amz-Signature=…``): a name that is, or ends in,
  password, passwd, pass, pwd, token, secret, key (``api_key``, ``access_key``, ``apikey``),
  signature, sig or credential, in any case; also ``"password": "…"`` in JSON;
- ``Authorization: Bearer …`` / ``Basic …`` tokens;
- the path of a Slack webhook (``hooks.slack.com/services/…``, ``/workflows/…``, ``/triggers/…``).

It errs on the side of hiding: ``monkey=1`` loses its value too. It does not know secrets that
have no recognisable form (a webhook on another host); callers that hold one replace it first
(flows/alert.py ``scrub``).
"""

from __future__ import annotations

import logging
import re

MASK = "***"

_USERINFO = re.compile(
    # scheme://user:password@host — the password runs to the last "@" of the URL
    r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@?#]*):(?P<pw>[^\s?#]*)@(?=[^\s@/?#]*(?:[/\s?#'\"),;]|$))",
    re.IGNORECASE,
)
_NAME = r"[\w.-]*?(?:password|passwd|pass|pwd|token|secret|key|signature|sig|credential)"
_PARAM = re.compile(
    rf"(?P<head>(?:^|(?<=[?&;\s,(\[{{'\"]))(?:{_NAME})\s*=\s*)"
    rf"(?:(?P<q>['\"])(?P<quoted>[^'\"]*)(?P=q)|(?P<value>[^&\s'\",;)\]}}#]+?)(?=:?(?:[&\s'\",;)\]}}#]|$)))",
    re.IGNORECASE,
)
_JSON = re.compile(
    rf"(?P<head>(?P<q>['\"])(?:{_NAME})(?P=q)\s*:\s*(?P<vq>['\"]))(?P<value>.*?)(?P=vq)", re.IGNORECASE
)
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic)\s+)(?P<value>[\w.~+/=-]{8,})", re.IGNORECASE)
_SLACK = re.compile(r"(?P<head>hooks\.slack\.com/(?:services|workflows|triggers)/)[\w/-]+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every credential form above replaced by ``***``; anything else unchanged."""
    if not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@" if m["pw"] != MASK else m[0], text)
    text = _SLACK.sub(lambda m: m["head"] + MASK, text)
    text = _JSON.sub(lambda m: f"{m['head']}{MASK}{m['vq']}", text)
    text = _PARAM.sub(lambda m: f"{m['head']}{m['q']}{MASK}{m['q']}" if m["q"] else m["head"] + MASK, text)
    return _BEARER.sub(lambda m: m["head"] + MASK, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts a record's message and traceback text (attach to handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: leave it to the handler
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


# the loggers Prefect writes flow and task run records to (messages and failure tracebacks)
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def install_log_redaction(names: tuple[str, ...] = RUN_LOGGERS) -> None:
    """Add one :class:`RedactingFilter` to each named logger (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
