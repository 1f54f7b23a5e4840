"""Normalisation shared by every kind: dates to UTC, canonical URLs, stable ids (text: ``watcher.util.text``,
whose ``clean_text`` and ``html_to_text`` are re-exported here)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from watcher.util.text import MONTH_NUMBERS, clean_text, fold, html_to_text

PARIS = ZoneInfo("Europe/Paris")
_PLAIN_URL = re.compile(r"https?://[a-z0-9.-]+(?::\d+)?(?:/[^?#\s]*)?$")  # absolute, lower-case host, no query
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|xtor|at_medium|at_campaign)$", re.I)


def to_utc(value: datetime | date | str | None, tz: ZoneInfo = PARIS) -> datetime | None:
    """A date from a source, as an aware UTC datetime. Naive values are in ``tz`` (Europe/Paris by default);
    a bare date means midnight there."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0, 0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if value else None


def canonical_url(url: str, base: str | None = None) -> str:
    """Absolute, no fragment, no tracking parameters, lower-case host, no '/./' segments."""
    if not url:
        return ""
    if _PLAIN_URL.match(url) and "/." not in url:
        return url if url.count("/") > 2 else url + "/"  # already canonical: skip the parse/rebuild (hot path)
    url = urljoin(base, url.strip()) if base else url.strip()
    parts = urlsplit(url)
    path = re.sub(r"/(\./)+", "/", parts.path) or "/"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)],
                      safe=":/,@")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, query, ""))


def stable_id(source: str, *, native: str | None = None, url: str | None = None, title: str | None = None) -> str:
    """``source:native`` from what the source says the item is; else the canonical URL; else a title hash."""
    if native and native.strip():
        return f"{source}:{native.strip()}"
    if url:
        return f"{source}:{canonical_url(url)}"
    digest = hashlib.sha256(clean_text(title).encode()).hexdigest()[:16]
    return f"{source}:title-{digest}"


# --- dates as sources write them -----------------------------------------------------------------------------

_MONTHS_EN = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
              "nov": 11, "dec": 12}
_ZONES = {"GMT": 0, "UT": 0, "UTC": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
          "PST": -8, "PDT": -7, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "BST": 1, "WET": 0, "WEST": 1}
_RFC822 = re.compile(
    r"^\s*(?:[A-Za-z]+\.?,?\s*)?(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\.?\s+(\d{2,4})"
    r"(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*(?:([+-])(\d{2}):?(\d{2})|([A-Za-z]{1,5}))?\s*$"
)

_RFC822_USUAL = re.compile(r"[A-Z][a-z]{2}, (\d\d) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")
_MONTHS_TITLE = {name.title(): number for name, number in _MONTHS_EN.items()}


def parse_rfc822(text: str | None, tz: ZoneInfo = PARIS) -> datetime | None:
    """An RSS ``pubDate`` ('Wed, 19 Aug 2026 00:00:00 -0000') as aware UTC. '-0000' and GMT/UT are UTC; zone
    abbreviations (CET, CEST, EST...) are honoured; a date without a zone is taken in ``tz``."""
    exact = _RFC822_USUAL.fullmatch(text or "")
    if exact:  # the layout nearly every feed writes: one fixed pattern, no optional parts, the fast way
        day, mon, year, hour, minute, second, sign, zh, zm = exact.groups()
        try:
            stamp = datetime(int(year), _MONTHS_TITLE[mon], int(day), int(hour), int(minute), int(second), tzinfo=UTC)
        except (KeyError, ValueError):
            return None
        offset = timedelta(hours=int(zh), minutes=int(zm))
        return stamp - offset if sign == "+" else stamp + offset
    match = _RFC822.match(text or "")
    if not match:
        return None
    day, mon, year, hour, minute, second, sign, zh, zm, name = match.groups()
    month = _MONTHS_EN.get(mon.lower())
    if month is None:
        return None
    year_n = int(year) + (2000 if len(year) == 2 else 0)
    try:
        naive = datetime(year_n, month, int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    if sign:
        offset = timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == "-" else 1)
        return (naive - offset).replace(tzinfo=UTC)
    if name:  # a zone name the table does not know (ET, Etc/GMT...) is the complete parser's business
        return (naive - timedelta(hours=_ZONES[name.upper()])).replace(tzinfo=UTC) if name.upper() in _ZONES else None
    return to_utc(naive, tz)


_FRENCH_DATE = re.compile(
    r"(\d{1,2})(?:er)?\s+([a-z]+)\.?\s+(\d{4})(?:\s*(?:a|,|-)?\s*(\d{1,2})\s*[h:]\s*(\d{2})?)?", re.I
)
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})(?:\s+(?:a\s+)?(\d{1,2})[h:](\d{2})?)?")


def parse_french_date(text: str | None, tz: ZoneInfo = PARIS) -> datetime | None:
    """A date as French pages write it, as aware UTC: '12 juin 2026', 'mercredi 1er juillet 2026 à 14h30',
    '3 févr. 2026', '12/06/2026'. The wall time is Europe/Paris (``tz``); a bare date is midnight there."""
    folded = fold(text or "").replace("\u00a0", " ")
    match = _FRENCH_DATE.search(folded)
    if match:
        day, month_name, year, hour, minute = match.groups()
        month = MONTH_NUMBERS.get(month_name)
    else:
        match = _NUMERIC_DATE.search(folded)
        if not match:
            return None
        day, month_s, year, hour, minute = match.groups()
        month = int(month_s)
    if not month:
        return None
    try:
        naive = datetime(int(year), month, int(day), int(hour or 0), int(minute or 0))
    except ValueError:
        return None
    return to_utc(naive, tz)


def parse_date(text: str | None, tz: ZoneInfo = PARIS) -> datetime | None:
    """Any date a feed or a page gives (ISO 8601 / W3C-DTF, RFC 822, French words), as aware UTC; else None.

    The fixed patterns read nearly every date; what they do not read goes to a complete parser (feedparser's,
    which knows asctime, ``Etc/GMT``, ``GMT-01:01``, ``13 Feb, 2012``, US zones such as ``ET``...). A date
    without a zone is in ``tz`` for the fixed patterns, in UTC for the complete parser (its rule). A malformed
    time or offset (``1:2:3:4 GMT``, ``+zz:00``) is refused (None), never read as midnight or a shifted hour."""
    text = (text or "").strip()
    if not text:
        return None
    if _ISO_START.match(text):
        return _iso_date(text, tz)
    found = parse_rfc822(text, tz)
    if found is None and not _RFC822_WITH_TIME.match(text):  # French words never come with an English hh:mm
        found = parse_french_date(text, tz)
    return found or _complete_date(text)


_ISO_START = re.compile(r"\d{4}(?:-|\d{4}T|$)")
_PARTIAL_W3C = re.compile(r"(\d{4})(?:-(\d{2}))?")
_RFC822_WITH_TIME = re.compile(r"\s*(?:[A-Za-z]{3,9}\.?,?\s*)?\d{1,2}[\s-]+[A-Za-z]{3,9}\.?,?[\s-]+\d{2,4}\s+\d{1,2}:")


def _iso_date(text: str, tz: ZoneInfo) -> datetime | None:
    """ISO 8601 / W3C-DTF, the partial forms ``2003`` and ``2003-12`` (the first of the month) included."""
    found = to_utc(text, tz)
    if found is not None:
        return found
    partial = _PARTIAL_W3C.fullmatch(text)
    if partial:
        year, month = partial.groups()
        try:
            return to_utc(date(int(year), int(month or 1), 1), tz)
        except ValueError:
            return None
    return None


def _complete_date(text: str) -> datetime | None:
    """The complete date parser (feedparser's, imported only for the rare date the fixed patterns miss)."""
    from feedparser.datetimes import _parse_date

    try:
        stamp = _parse_date(text)
        return datetime(*stamp[:6]).replace(tzinfo=UTC) if stamp else None
    except (ValueError, OverflowError, TypeError):
        return None


__all__ = ["PARIS", "canonical_url", "clean_text", "html_to_text", "iso", "parse_date", "parse_french_date",
           "parse_rfc822", "stable_id", "to_utc"]
