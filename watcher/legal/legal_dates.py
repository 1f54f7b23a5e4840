"""Legal dates: the calendar date a lawyer cites for an item, kept beside its exact ``published`` timestamp.

- a Journal officiel text: the date of the JO issue it appeared in (``DATE_PUBLI``, which ``ORIGINE_PUBLI``
  spells "JORF n°0137 du 13 juin 2026"), not the UTC instant of midnight in Paris (the evening before);
- a CNIL délibération: the délibération's own date (``DATE_TEXTE``, "Délibération n° 2026-047 du 2 avril 2026");
- anything else (a post, a news item, a recall): its publication time as a date in Europe/Paris.

Shown to people in French as "13 juin 2026" ("1er juin 2026"), in English as "13 June 2026"; stored as an ISO
date ("2026-06-13") in the archive's ``legal_date`` column.
"""

from __future__ import annotations

import re
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
MONTHS_FR = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
             "novembre", "décembre")
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")
_ORIGINE = re.compile(r"\bdu\s+(\d{1,2})(?:er)?\s+(" + "|".join(MONTHS_FR) + r"|fevrier|aout|decembre)\s+(\d{4})",
                      re.I)
_ASCII_MONTHS = {"fevrier": 2, "aout": 8, "decembre": 12}


def parse_french(text: str) -> date | None:
    """The first "du 13 juin 2026" in ``text`` ("JORF n°0137 du 13 juin 2026"), or None."""
    match = _ORIGINE.search(text or "")
    if not match:
        return None
    month_name = match.group(2).lower()
    month = _ASCII_MONTHS.get(month_name) or MONTHS_FR.index(month_name) + 1
    try:
        return date(int(match.group(3)), month, int(match.group(1)))
    except ValueError:
        return None


def parse_iso(text: str | None) -> date | None:
    """A ``YYYY-MM-DD`` date (DILA's DATE_PUBLI / DATE_TEXTE), or None."""
    try:
        return date.fromisoformat((text or "").strip()[:10])
    except ValueError:
        return None


def in_paris(moment: datetime | None) -> date | None:
    """The calendar date of an instant in Europe/Paris (a naive instant is taken as UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(PARIS).date()


def french(day: date | str | None) -> str:
    """'13 juin 2026', '1er juin 2026'; '' for no date."""
    value = parse_iso(day) if isinstance(day, str) else day
    if value is None:
        return ""
    return f"{'1er' if value.day == 1 else value.day} {MONTHS_FR[value.month - 1]} {value.year}"


def english(day: date | str | None) -> str:
    """'13 June 2026'; '' for no date."""
    value = parse_iso(day) if isinstance(day, str) else day
    return f"{value.day} {MONTHS_EN[value.month - 1]} {value.year}" if value else ""


def spoken(day: date | str | None, lang: str) -> str:
    """The date as written in a message of language ``lang`` (fr or en)."""
    return french(day) if lang == "fr" else english(day)


def local_day(value: object, tz: tzinfo) -> str:
    """The ISO calendar day of an ISO timestamp in ``tz`` (what a message shows when an item has no legal date);
    text that is not a timestamp gives its first ten characters, nothing gives ``""``."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(tz).date().isoformat()
    except ValueError:
        return str(value)[:10]
