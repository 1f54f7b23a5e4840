"""Atom 1.0 feeds (RFC 4287) of archive items.

Every feed has ``id`` (its own URL), ``title``, ``updated`` (the newest entry's, or the time of the request when
it is empty), a ``self`` link and an ``author``; every entry has ``id`` (its archive record's URL: stable, unique),
``title``, ``updated``, an ``alternate`` link (the source's page, else the archive record), a ``related`` link to
the archive record, ``published`` when known, a text ``summary`` and one ``category`` per theme.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from datasette.utils import tilde_encode

from watcher.legal.acts import acts_shown

ATOM = "http://www.w3.org/2005/Atom"
CONTENT_TYPE = "application/atom+xml; charset=utf-8"
_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))  # not allowed in XML 1.0


@dataclass(frozen=True)
class Feed:
    url: str  # the feed's own absolute URL: its id and its rel="self" link
    title: str
    html_url: str  # the page a person would look at instead of the feed


def rfc3339(value: Any) -> str | None:
    """An ISO timestamp as RFC 3339 in UTC (``2026-06-01T22:00:00Z``); a bare date is midnight UTC."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(value: Any) -> str:
    return " ".join(str(value or "").translate(_CONTROL).split())


def _themes(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [str(v) for v in value] if isinstance(value, list) else []


def item_url(base: str, item_id: str) -> str:
    return f"{base.rstrip('/')}/watcher/items/{tilde_encode(item_id)}"


def render_feed(feed: Feed, items: Sequence[Mapping[str, Any]], *, base: str, now: datetime) -> bytes:
    """The feed document for ``items`` (newest first), with links made absolute on ``base``."""
    ET.register_namespace("", ATOM)
    root = ET.Element(f"{{{ATOM}}}feed")
    entries = [_entry(item, base) for item in items]
    stamps = [e.findtext(f"{{{ATOM}}}updated") or "" for e in entries]
    _sub(root, "id", feed.url)
    _sub(root, "title", feed.title)
    _sub(root, "updated", max(stamps, default="") or rfc3339(now.isoformat()) or "")
    _sub(root, "link", rel="self", type="application/atom+xml", href=feed.url)
    _sub(root, "link", rel="alternate", type="text/html", href=feed.html_url)
    author = _sub(root, "author")
    _sub(author, "name", "watcher")
    _sub(root, "generator", "watcher")
    root.extend(entries)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _entry(item: Mapping[str, Any], base: str) -> ET.Element:
    entry = ET.Element(f"{{{ATOM}}}entry")
    record = item_url(base, str(item["id"]))
    published = rfc3339(item.get("published"))
    updated = rfc3339(item.get("updated_at")) or published or rfc3339(item.get("first_seen")) or "1970-01-01T00:00:00Z"
    url = str(item.get("url") or "")
    _sub(entry, "id", record)
    _sub(entry, "title", _text(item.get("title")) or str(item["id"]))
    _sub(entry, "updated", updated)
    if published:
        _sub(entry, "published", published)
    _sub(entry, "link", rel="alternate", type="text/html",
         href=url if url.startswith(("https://", "http://")) else record)
    _sub(entry, "link", rel="related", type="text/html", href=record)
    for act in acts_shown(item):  # each act it names, at its official page (or the official search)
        _sub(entry, "link", rel="related", type="text/html", title=act.label(), href=act.url or "")
    for theme in _themes(item.get("themes")):
        _sub(entry, "category", term=theme)
    summary = _text(item.get("summary"))
    if summary:
        _sub(entry, "summary", summary[:2000])
    return entry


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attributes)
    if text is not None:
        element.text = _text(text)
    return element
