"""Secrets never printed: a text scrubber and the logging filter that applies it to every log line.

What is masked, wherever it appears in a line (log message, its arguments, a formatted traceback, a CLI error):

- every secret value watcher read from the environment (``watcher.config.secret`` registers each one here);
- ``user:password@`` in any URL (``https://***@host/...``);
- the token path of a Slack webhook (``/services/T…/B…/XXXX`` -> ``/services/****``);
- query values whose name looks secret (``token``, ``key``, ``secret``, ``pass``, ``auth``, ``sig``...);
- ``Authorization``/``Proxy-Authorization``/``Cookie``/``X-Api-Key`` header values;
- everything after ``://`` in an apprise-style URL (a scheme other than http/https/ftp, e.g. ``tgram://``,
  ``mailtos://``, ``slack://``), where the tokens are the URL itself.

``install()`` puts one ``RedactingFilter`` on every handler of the root logger, so it sees the records of every
logger (httpx's ``HTTP Request: POST <url>`` line included) whatever their level.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import urlsplit

MASK = "****"
_known: dict[str, str] = {}  # secret value -> what is shown instead
_lock = threading.Lock()

_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"<>]+@")
_SLACK_PATH = re.compile(r"(/services/)[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+")
_SECRET_QUERY = re.compile(r"(?i)([?&;](?:[a-z0-9_.-]*(?:token|key|secret|pass|auth|sig|code|session)"
                           r"[a-z0-9_.-]*)=)[^&#\s'\"<>]+")
_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization|cookie|set-cookie|x-api-key|api-key)(['\"]?\s*[:=]\s*['\"]?)"
                     r"(?:(?:bearer|basic|token)\s+)?[^'\"\r\n,;}]+")
# ftp:// carries its credentials as user:password@ (masked above), like http
_OTHER_SCHEME = re.compile(r"(?i)\b(?!https?://|ftps?://|file://)([a-z][a-z0-9+.-]{1,20}://)[^\s'\"<>]+")


def register(secret: str) -> None:
    """Mask this exact value from now on (values shorter than 4 characters would mask ordinary text: skipped).
    A URL keeps its scheme and host, so a log line still says where a request went: ``https://host/****``."""
    if secret and len(secret) >= 4:
        parts = urlsplit(secret) if "://" in secret else None
        shown = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/{MASK}" if (
            parts and parts.hostname) else MASK
        with _lock:
            _known[secret] = shown


def redact(text: str) -> str:
    """``text`` with every secret it shows masked (see the module docstring)."""
    for secret, shown in sorted(_known.items(), key=lambda pair: len(pair[0]), reverse=True):
        if secret in text:
            text = text.replace(secret, shown)
    text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    text = _SLACK_PATH.sub(rf"\g<1>{MASK}", text)
    text = _SECRET_QUERY.sub(rf"\g<1>{MASK}", text)
    text = _HEADER.sub(rf"\g<1>\g<2>{MASK}", text)
    return _OTHER_SCHEME.sub(rf"\g<1>{MASK}", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (arguments merged in) and traceback text with the secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put a ``RedactingFilter`` on every handler of ``logger`` (the root logger by default), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
