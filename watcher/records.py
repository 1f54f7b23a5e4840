"""Conversion between ``Item`` and the plain rows the store keeps (the store depends on nothing of watcher)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from watcher.legal import legal_dates, natures
from watcher.legal.normalize import iso
from watcher.models import Item


def item_to_row(item: Item) -> dict[str, Any]:
    """The row the store keeps, as plain values: ``identifiers``, ``tags`` and ``extra`` stay a mapping / list /
    mapping, which the store indexes and writes as JSON (its only JSON encoder). Also what ``watcher parse`` and
    ``fetch --dry-run`` print.

    ``nature`` is the kind of act as a code of ``watcher.legal.natures`` (the source's own value is ``nature_raw``);
    ``legal_date`` is the ISO date a lawyer cites (see ``watcher.legal.legal_dates``)."""
    legal = item.legal_date or legal_dates.in_paris(item.published)
    return {
        "id": item.id, "source": item.source, "url": item.url, "title": item.title, "summary": item.summary,
        "text": item.text, "published": iso(item.published), "legal_date": legal.isoformat() if legal else "",
        "lang": item.lang, "nature": _nature_code(item.nature, item.id.startswith(natures.CNIL_PREFIX)),
        "nature_raw": item.nature,
        "authority": item.authority, "rubric": item.rubric, "identifiers": dict(item.identifiers),
        "tags": list(item.tags), "extra": dict(item.extra), "content_hash": item.content_hash(),
    }


@lru_cache(maxsize=1024)
def _nature_code(raw: str, cnil_deliberation: bool) -> str:
    """``natures.normalise``, once per spelling: a source gives every item the same few raw natures."""
    return natures.normalise(raw, natures.CNIL_PREFIX if cnil_deliberation else "")


def item_from_row(row: Mapping[str, Any]) -> Item:
    published = row.get("published")
    return Item(
        id=row["id"], source=row["source"], url=row.get("url") or "", title=row.get("title") or "",
        summary=row.get("summary") or "", text=row.get("text") or "",
        published=datetime.fromisoformat(published.replace("Z", "+00:00")) if published else None,
        lang=row.get("lang") or "fr", nature=row.get("nature_raw") or row.get("nature") or "",
        authority=row.get("authority") or "", rubric=row.get("rubric") or "",
        identifiers=dict(row.get("identifiers") or {}), tags=tuple(row.get("tags") or ()),
        extra=dict(row.get("extra") or {}), legal_date=legal_dates.parse_iso(row.get("legal_date")),
    )
