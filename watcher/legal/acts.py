"""Acts and their official links: what a text or an item names, and where a person reads it.

``acts_in(text)`` gives the acts a text names (``watcher.legal.identifiers.find_all``), each with its official URL;
``acts_of(item)`` the acts an archived item is or cites (its ``identifiers``). ``official_url(scheme, value)`` is
the one place where a link to an act is built, for every page and message that shows an act:

- direct where the id is known or derivable: a JORFTEXT (``legifrance.gouv.fr/jorf/id/…``), a JO issue (JORFCONT,
  ``…/jorf/jo/id/…``), a CNILTEXT (``…/cnil/id/…``), an ELI (as it is), a CELEX (EUR-Lex), an EU regulation's or
  directive's number (its CELEX: ``2016/679`` → ``32016R0679``, ``1907/2006`` → ``32006R1907``, ``95/46`` →
  ``31995L0046``), an EU ECLI (EUR-Lex);
- a NOR, a loi / décret / ordonnance number or a délibération number when ``archive_lookup`` (the archive, when one
  is open) knows the JO or CNIL text that IS that act: that text's Légifrance page;
- otherwise Légifrance's or EUR-Lex's own search for that act, marked ``search=True``;
- ``None`` where no official page exists for the scheme (a national court's ECLI).

``parse_act(text)`` reads an act as a person writes it in a subscription (``décret 2025-895``, ``2024/1689``,
``JORFTEXT000…``, a NOR): the (scheme, value) pairs it may be, or none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from watcher.legal import identifiers as ids
from watcher.legal import legal_dates

LEGIFRANCE = "https://www.legifrance.gouv.fr"
EURLEX = "https://eur-lex.europa.eu/legal-content/FR/TXT/?uri="
ArchiveLookup = Callable[[str, str], str | None]
"""(scheme, value) -> the official URL of the archived text that IS that act, or None."""

# schemes that name an act (not the helper columns of a JO text: nor_base, num, date_texte)
ACT_SCHEMES = ("jorftext", "cnil", "eli", "celex", "ecli", "nor", "loi", "decret", "ordonnance", "arrete",
               "decret_date", "loi_date", "ordonnance_date", "deliberation", "eu_regulation", "eu_directive")
# only an archived text resolves these to a direct link; never a date alone (many arrêtés share a day)
RESOLVED_BY_ARCHIVE = frozenset({"nor", "loi", "decret", "ordonnance", "deliberation"})
_DATED = {"arrete": "arrêté", "decret_date": "décret", "loi_date": "loi", "ordonnance_date": "ordonnance"}
_NUMBERED = {"loi": "loi", "decret": "décret", "ordonnance": "ordonnance", "deliberation": "délibération"}
_NUMBERED_EN = {"loi": "Act", "decret": "Decree", "ordonnance": "Ordinance", "deliberation": "Deliberation"}
_DATED_EN = {"arrete": "Order", "decret_date": "Decree", "loi_date": "Act", "ordonnance_date": "Ordinance"}


@dataclass(frozen=True, slots=True)
class Act:
    scheme: str
    value: str
    url: str | None  # the official page (or search), None where none can be built
    search: bool = False  # the URL is the official site's search for this act, not the act itself

    def label(self, lang: str = "fr") -> str:
        return label(self.scheme, self.value, lang)

    def as_json(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "value": self.value, "url": self.url, "search": self.search}


def celex_of(scheme: str, value: str) -> str:
    """The CELEX number of an EU regulation or directive given by its number, '' if it is not one.

    Regulations were numbered number/year until 2014 (``1907/2006``), year/number since 2015 (``2016/679``);
    directives always year/number (``95/46``, ``2019/790``); a two-digit year is of the 1900s (``95/46``)."""
    match = re.fullmatch(r"(\d{1,4})/(\d{1,4})", value)
    if not match or scheme not in ("eu_regulation", "eu_directive"):
        return ""
    first, second = match.groups()
    if scheme == "eu_directive" or (len(first) == 4 and int(first) >= 2015) or not _is_year(second):
        year, number = first, second
    else:
        year, number = second, first
    if not _is_year(year):
        return ""
    full = int(year) if len(year) == 4 else 1900 + int(year)
    return f"3{full}{'R' if scheme == 'eu_regulation' else 'L'}{int(number):04d}"


def _is_year(text: str) -> bool:
    return len(text) == 2 or (len(text) == 4 and 1950 <= int(text) <= 2099)


def number_of_celex(celex: str) -> tuple[str, str] | None:
    """('eu_regulation', '2016/679') for ``32016R0679``; None for any other kind of CELEX."""
    match = re.fullmatch(r"3(\d{4})([RL])(\d{4})", celex or "")
    if not match:
        return None
    year, kind, number = int(match.group(1)), match.group(2), int(match.group(3))
    if kind == "L":
        return "eu_directive", f"{year % 100:02d}/{number}" if year < 1999 else f"{year}/{number}"
    return "eu_regulation", f"{year}/{number}" if year >= 2015 else f"{number}/{year}"


def _legifrance_search(query: str, fund: str = "jorf") -> str:
    return (f"{LEGIFRANCE}/search/{fund}?tab_selection={fund}&searchField=ALL&query={quote_plus(query)}"
            "&page=1&init=true")


def _eurlex_search(query: str) -> str:
    return f"https://eur-lex.europa.eu/search.html?scope=EURLEX&lang=fr&type=quick&text={quote_plus(query)}"


_DIRECT = {"jorftext": LEGIFRANCE + "/jorf/id/{}", "jorfcont": LEGIFRANCE + "/jorf/jo/id/{}",
           "cnil": LEGIFRANCE + "/cnil/id/{}"}


def official_url(scheme: str, value: str, archive_lookup: ArchiveLookup | None = None) -> tuple[str | None, bool]:
    """(URL, is_search) of the act ``(scheme, value)``: see the module docstring. ``(None, False)`` when none can
    be built (unknown scheme, a national ECLI)."""
    scheme = scheme.removeprefix("cites_")
    if not value:
        return None, False
    direct = _direct_url(scheme, value)
    if direct is not None:
        return direct, False
    if scheme in RESOLVED_BY_ARCHIVE and archive_lookup is not None:
        found = archive_lookup(scheme, value)
        if found:
            return found, False
    return _search_url(scheme, value)


def _direct_url(scheme: str, value: str) -> str | None:
    """The act's own page when its id says it (or its number gives its CELEX), else None."""
    if scheme in _DIRECT:
        return _DIRECT[scheme].format(value.upper())
    if scheme == "eli":
        return value if value.startswith("https://") else None
    if scheme == "celex":
        return EURLEX + "CELEX:" + quote(value.upper(), safe="()")
    if scheme in ("eu_regulation", "eu_directive") and (celex := celex_of(scheme, value)):
        return EURLEX + "CELEX:" + celex
    if scheme == "ecli" and value.upper().startswith("ECLI:EU:"):
        return EURLEX + "ecli:" + quote(value, safe=":.")
    return None


def _search_url(scheme: str, value: str) -> tuple[str | None, bool]:
    """The official site's search for an act whose own page is not known."""
    if scheme in ("eu_regulation", "eu_directive"):
        return _eurlex_search(label(scheme, value)), True
    if scheme == "nor":
        return _legifrance_search(value), True
    if scheme == "deliberation":
        return _legifrance_search(f"délibération {value}", "cnil"), True
    if scheme in _NUMBERED:
        return _legifrance_search(f"{_NUMBERED[scheme]} n° {value}"), True
    if scheme in _DATED:
        return _legifrance_search(label(scheme, value)), True
    return None, False


def label(scheme: str, value: str, lang: str = "fr") -> str:
    """The act as a lawyer writes it: 'décret n° 2025-895', 'arrêté du 4 février 2026', 'règlement (UE)
    2016/679', 'NOR SSAH2600123A' (English: 'Decree No. 2025-895', 'Order of 4 February 2026'...)."""
    scheme = scheme.removeprefix("cites_")
    en = lang == "en"
    if scheme in _NUMBERED:
        return f"{_NUMBERED_EN[scheme]} No. {value}" if en else f"{_NUMBERED[scheme]} n° {value}"
    if scheme in _DATED:
        day = legal_dates.spoken(value, lang) or value
        return f"{_DATED_EN[scheme]} of {day}" if en else f"{_DATED[scheme]} du {day}"
    if scheme == "eu_regulation":
        return f"Regulation (EU) {value}" if en else f"règlement (UE) {value}"
    if scheme == "eu_directive":
        return f"Directive {value}" if en else f"directive {value}"
    if scheme in ("nor", "celex", "ecli"):
        return f"{scheme.upper()} {value}" if scheme != "ecli" else value
    return value


def acts_in(text: str, archive_lookup: ArchiveLookup | None = None) -> list[Act]:
    """The acts ``text`` names, in order of appearance, each with its official URL."""
    return [_act(i.scheme, i.value, archive_lookup) for i in ids.find_all(text) if i.scheme in ACT_SCHEMES]


def _act(scheme: str, value: str, archive_lookup: ArchiveLookup | None) -> Act:
    url, search = official_url(scheme, value, archive_lookup)
    return Act(scheme, value, url, search)


def _values(raw: Any) -> list[str]:
    return [v.strip() for v in str(raw or "").split(",") if v.strip()]


def acts_of(item: Mapping[str, Any], archive_lookup: ArchiveLookup | None = None) -> list[Act]:
    """The acts an archived item is or cites (its ``identifiers``: ``decret``, ``cites_decret``…), once each,
    its own identity first; each with its official URL. An item that is itself a JO or CNIL text links to its
    own page; the CELEX of an EU act also gives its number."""
    identifiers = item.get("identifiers") or {}
    if isinstance(identifiers, str):
        identifiers = json.loads(identifiers or "{}")
    seen: dict[tuple[str, str], None] = {}
    for prefix in ("", "cites_"):
        for scheme in ACT_SCHEMES:
            for value in _values(identifiers.get(prefix + scheme)):
                seen.setdefault((scheme, value), None)
    return [_act(scheme, value, archive_lookup) for scheme, value in seen]


_BARE: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"(\d{1,4}/\d{1,4})"), ("eu_regulation", "eu_directive")),
    (re.compile(r"(\d{2,4}-\d{1,5})"), ("decret", "loi", "ordonnance", "deliberation")),
    (re.compile(r"([A-Z]{4}\d{7}[A-Z])", re.I), ("nor",)),
    (re.compile(r"(JORFTEXT\d{12})", re.I), ("jorftext",)),
    (re.compile(r"(CNILTEXT\d{12})", re.I), ("cnil",)),
    (re.compile(r"(CELEX:)?([0-9CE]\d{4}[A-Z]{1,2}\d{4})", re.I), ("celex",)),
    (re.compile(r"((?:SAN|MED|MEDP|SANP)-\d{4}-\d{2,4})", re.I), ("deliberation",)),
)
_KIND_ONLY = re.compile(r"^(?:(?:le|la|l'|l’)\s*)?(?P<kind>lois?|d[ée]crets?|ordonnances?|d[ée]lib[ée]rations?|"
                        r"r[èe]glement(?:\s*\((?:UE|CE|EU)\))?|directive(?:\s*\((?:UE|CE|EU)\))?)\s*"
                        r"(?:n\s?[°º]\s*)?(?P<rest>.+)$", re.I)
_KIND_SCHEME = {"loi": "loi", "decret": "decret", "ordonnance": "ordonnance", "deliberation": "deliberation",
                "reglement": "eu_regulation", "directive": "eu_directive"}
_FOLD = str.maketrans("éèêÉÈÊ", "eeeeee")
_UPPER = frozenset({"nor", "jorftext", "cnil", "celex", "deliberation"})


def parse_act(text: str) -> list[tuple[str, str]]:
    """The (scheme, value) pairs an act written by a person may be: ``décret 2025-895`` → decret; ``2024/1689`` →
    eu_regulation and eu_directive; ``2025-895`` alone → any numbered French act; a JORFTEXT, CNILTEXT, NOR,
    CELEX, ELI, or a dated act (``arrêté du 4 février 2026``). [] when it names no act."""
    text = " ".join((text or "").split())
    if not text:
        return []
    found = [(i.scheme, i.value) for i in ids.find_all(text) if i.scheme in ACT_SCHEMES]
    if found:
        return list(dict.fromkeys(found))
    kind_only = _KIND_ONLY.match(text)
    rest = kind_only.group("rest") if kind_only else text
    kind = kind_only.group("kind").lower().translate(_FOLD).split()[0].split("(")[0].rstrip("s") if kind_only else ""
    for pattern, schemes in _BARE:
        match = pattern.fullmatch(rest.strip())
        if not match:
            continue
        value = match.group(match.lastindex or 1)
        value = value.upper() if schemes[0] in _UPPER else value
        wanted = [s for s in schemes if not kind or _KIND_SCHEME.get(kind) == s]
        return [(scheme, value) for scheme in wanted]
    return []


def cited_pairs(identifiers: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """(scheme, value) of every ``cites_<scheme>`` of an item's identifiers."""
    for key, raw in identifiers.items():
        if key.startswith("cites_") and key[6:] in ACT_SCHEMES:
            for value in _values(raw):
                yield key[6:], value


def acts_shown(item: Mapping[str, Any], archive_lookup: ArchiveLookup | None = None, limit: int = 6) -> list[Act]:
    """The acts to show beside an item, with their official links: what it names (a JO or CNIL text's own ids are
    its own link already, so only what it cites), once per link, at most ``limit``."""
    own_text = str(item.get("id", "")).startswith(("jorf:", "cnil:"))
    title = ids.find_all(str(item.get("title") or "")[:300])
    # a text whose title names its own act first ("Arrêté du 4 février 2026 fixant…") is that act: not shown again
    lead = (title[0].scheme, title[0].value) if title and title[0].span[0] <= 20 and "legifrance.gouv.fr" in str(
        item.get("url") or "") else None
    shown: dict[str, Act] = {}
    for act in acts_of(item, archive_lookup):
        if act.url is None or act.url in shown or act.url == item.get("url") or (act.scheme, act.value) == lead:
            continue
        if own_text and not _cited(item, act):
            continue
        shown[act.url] = act
    return list(shown.values())[:limit]


def _cited(item: Mapping[str, Any], act: Act) -> bool:
    identifiers = item.get("identifiers") or {}
    if isinstance(identifiers, str):
        identifiers = json.loads(identifiers or "{}")
    return act.value in _values(identifiers.get("cites_" + act.scheme))
