"""Normalisation shared by every kind: clean text, dates to UTC, canonical URLs, stable ids."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from datetime import UTC, date, datetime, time
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from selectolax.lexbor import LexborHTMLParser as HTMLParser

PARIS = ZoneInfo("Europe/Paris")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u202f\u2009]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|xtor|at_medium|at_campaign)$", re.I)
# C1 controls that are really Windows-1252 punctuation mis-decoded (e.g. U+0092 for a curly apostrophe)
_C1_FIX = {chr(c): bytes([c]).decode("cp1252", errors="replace") for c in range(0x80, 0xA0)}


def clean_text(text: str | None) -> str:
    """Unescape entities, NFC, fix C1 mojibake, collapse spaces, keep paragraph breaks."""
    if not text:
        return ""
    text = html.unescape(text)
    text = "".join(_C1_FIX.get(ch, ch) for ch in text) if any("\x80" <= ch <= "\x9f" for ch in text) else text
    text = unicodedata.normalize("NFC", text).replace("\u00ad", "")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(fragment: str | None) -> str:
    """Visible text of an HTML fragment, paragraphs kept as line breaks."""
    if not fragment:
        return ""
    if "<" not in fragment:
        return clean_text(fragment)
    tree = HTMLParser(fragment)
    for node in tree.css("script, style"):
        node.decompose()
    for node in tree.css("br"):
        node.replace_with("\n")
    body = tree.body or tree.root
    if body is None:
        return ""
    return clean_text(body.text(separator="\n", deep=True) if tree.css_first("p, div, li, tr") else body.text())


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
