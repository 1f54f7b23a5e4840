"""Legal identity: the identifiers a French or EU legal text is known by, found in free text, normalised.

``find_all(text)`` returns every ``Identifier(scheme, value, span)`` in order of appearance, one per
(scheme, value); ``by_scheme`` groups the values, ``first_by_scheme`` keeps the first of each, ``as_mapping``
turns them into the ``str -> str`` mapping stored in ``Item.identifiers`` (values comma-joined).

The schemes, with their normalised value, are listed in ``SCHEMES``. Numbers are kept as the act writes them
(``décret n°2025-895`` → ``2025-895``); dates of acts known only by their date (``arrêté du 1er juin 2026``)
are ISO dates (``2026-06-01``). A NOR ending in ``Z`` is a rectificatif of the text whose NOR has the same
first 11 characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from watcher.util.text import FRENCH_MONTHS, fold, is_nor

SCHEMES: dict[str, str] = {
    "nor": "NOR, 4 letters + 7 digits + 1 letter (SPRX2534567D; Z = rectificatif)",
    "jorftext": "Légifrance id of a JORF text (JORFTEXT + 12 digits)",
    "jorfcont": "Légifrance id of a JORF issue (JORFCONT + 12 digits)",
    "cnil": "Légifrance id of a CNIL text (CNILTEXT + 12 digits)",
    "eli": "Légifrance ELI URI (https://www.legifrance.gouv.fr/eli/...)",
    "celex": "CELEX number of an EU act (32016R0679)",
    "ecli": "European Case Law Identifier (ECLI:FR:CECHR:2024:123456.20240101)",
    "loi": "number of a loi (78-17, 2020-1576)",
    "decret": "number of a décret (2025-895)",
    "ordonnance": "number of an ordonnance (2025-1234)",
    "arrete": "date of an arrêté, ISO (2026-06-11)",
    "decret_date": "date of a décret cited without a number, ISO",
    "loi_date": "date of a loi cited without a number, ISO",
    "ordonnance_date": "date of an ordonnance cited without a number, ISO",
    "deliberation": "number of a délibération (CNIL 2026-047, SAN-2023-006)",
    "eu_regulation": "number of an EU regulation (2016/679, 1907/2006)",
    "eu_directive": "number of an EU directive (95/46, 2019/790)",
}

_FLAGS = re.I | re.U
_NO = r"n\s?(?:°|º|o\.?|r\.?)\s*"  # n°, n °, nº, no, No., nr
_MONTHS = {spelling: n for n, name in enumerate(FRENCH_MONTHS, 1) for spelling in dict.fromkeys((name, fold(name)))}
_DATE = r"(?P<day>\d{1,2})(?:er)?\s+(?P<month>" + "|".join(_MONTHS) + r")\s+(?P<year>\d{4})"
_ACT_KIND = {"loi": "loi", "décret": "decret", "decret": "decret", "ordonnance": "ordonnance"}
_DELIBERATION = r"(?:[A-Z]{3,4}-)?(?:\d{4}|\d{2})-\d{2,4}"  # CNIL: 2026-047, 04-017, SAN-2023-006
_EU_AUTHOR = r"\((?:UE|EU|CE|EC|CEE|EEC|Euratom)\)"


@dataclass(frozen=True, slots=True)
class Identifier:
    scheme: str
    value: str
    span: tuple[int, int]


Finder = Callable[[str], Iterator[Identifier]]


def _simple(scheme: str, pattern: str, flags: int = 0,
            normalise: Callable[[str], str] = str.upper) -> Finder:
    """A finder for a scheme whose value is the first group (or the whole match)."""
    regex = re.compile(pattern, flags)

    def find(text: str) -> Iterator[Identifier]:
        for match in regex.finditer(text):
            group = 1 if regex.groups else 0
            value = normalise(match.group(group))
            if value:
                yield Identifier(scheme, value, match.span(group))

    return find


def _eli(raw: str) -> str:
    raw = raw.rstrip(".,;:)]»\"'")
    return re.sub(r"^https?://(?:www\.)?legifrance\.gouv\.fr", "https://www.legifrance.gouv.fr", raw,
                  flags=re.I)


# an act's kind, French or English (the English translations of CNIL decisions say "law no. 78-17",
# "Act No. 2018-493", "decree n° 2019-536")
_ACT = re.compile(r"\b(?P<kind>lois?|d[ée]crets?|ordonnances?|laws?|acts?|decrees?|ordinances?)"
                  r"(?:\s+organiques?)?\s+(?:" + _NO + r")?(?P<num>\d{2,4}-\d{1,5})\b", _FLAGS)
_ACT_KIND.update({"law": "loi", "act": "loi", "decree": "decret", "ordinance": "ordonnance"})
_EN_MONTHS = {name: n for n, name in enumerate(("january", "february", "march", "april", "may", "june", "july",
                                                "august", "september", "october", "november", "december"), 1)}
_EN_DATE = (r"(?:(?P<eday>\d{1,2})(?:st|nd|rd|th)?\s+(?P<emonth>" + "|".join(_EN_MONTHS) + r")|(?P<emonth2>"
            + "|".join(_EN_MONTHS) + r")\s+(?P<eday2>\d{1,2})(?:st|nd|rd|th)?,?)\s+(?P<eyear>\d{4})")
# the date that follows an act's number ("n° 2020-1262 du 16 octobre 2020", "no. 78-17 of January 6, 1978")
_DATE_AFTER = re.compile(r"\s+(?:du\s+" + _DATE + r"|of\s+" + _EN_DATE + ")", _FLAGS)
# "décrets n° 2020-1262 du 16 octobre 2020 et n° 2020-1310 ...": further numbers after a plural
_MORE = re.compile(r"\s*(?:,|\bet\b|\band\b)\s*" + _NO + r"(?P<num>\d{2,4}-\d{1,5})\b", _FLAGS)


def _date_of(match: re.Match[str]) -> str:
    """The ISO date of a match of ``_DATE`` or ``_EN_DATE`` (named groups), '' if it is not a date."""
    groups = match.groupdict()
    if groups.get("day"):
        return iso_date(groups["day"], groups["month"], groups["year"])
    if groups.get("eyear"):
        month = _EN_MONTHS[(groups["emonth"] or groups["emonth2"]).lower()]
        day = int(groups["eday"] or groups["eday2"])
        return f"{int(groups['eyear']):04d}-{month:02d}-{day:02d}" if 1 <= day <= 31 else ""
    return ""


def _numbered(text: str) -> Iterator[tuple[Identifier, str]]:
    """Each numbered loi, décret or ordonnance, with the date written after its number ('' if none)."""
    for match in _ACT.finditer(text):
        kind = match.group("kind").lower()
        scheme = _ACT_KIND[kind.rstrip("s")]
        found: re.Match[str] | None = match
        pos = match.end()
        while found is not None:
            dated = _DATE_AFTER.match(text, pos)
            date = _date_of(dated) if dated else ""
            yield Identifier(scheme, found.group("num"), found.span("num")), date
            pos = dated.end() if dated else pos
            found = _MORE.match(text, pos) if kind.endswith("s") else None
            pos = found.end() if found else pos


def _acts(text: str) -> Iterator[Identifier]:
    for ident, _date in _numbered(text):
        yield ident


_KIND_WORD = r"(?P<kind>arr[êe]t[ée]s?|d[ée]crets?|lois?|ordonnances?)"
_QUALIFIER = r"(?:\s+(?:interminist[ée]riels?|minist[ée]riels?|conjoints?|pr[ée]fectora(?:l|ux)|municipa(?:l|ux)))?"
# who signed it, between the kind and the date: "arrêté du Premier ministre et du ministre de l'économie ... du 24
# septembre 2025" (an authority's title first, no digit, no sentence end before the date)
_AUTHORS = (r"(?:\s+(?:du|des|de\s+la|de\s+l['’])\s+(?:Premier|Président|ministre|ministres|préfet|préfète|maire|"
            r"garde|secrétaire|haut-commissaire|directeur|directrice)\b[^\d.;:()]{0,250}?)?")
_DATED = re.compile(r"\b" + _KIND_WORD + _QUALIFIER + _AUTHORS + r"\s+du\s+" + _DATE, _FLAGS)
# English: "the Order of 13 October 2004", "the Act of 6 January 1978", "law of 6 January 1978"
_DATED_EN = re.compile(r"\b(?P<kind>orders?|acts?|laws?|decrees?|ordinances?)\s+of\s+" + _EN_DATE, _FLAGS)
# the other dates of a list after a plural: "les arrêtés du 15 mai 2017, du 19 mars 2021 et du 29 mars 2021"
_MORE_DATES = re.compile(r"\s*(?:,|\bet\b)\s*du\s+" + _DATE, _FLAGS)
_DATED_SCHEME = {"arrete": "arrete", "decret": "decret_date", "loi": "loi_date", "ordonnance": "ordonnance_date",
                 "order": "arrete", "act": "loi_date", "law": "loi_date", "decree": "decret_date",
                 "ordinance": "ordonnance_date"}
_ASCII = str.maketrans("êéÊÉ", "eeEE")


def iso_date(day: str, month: str, year: str) -> str:
    """('1', 'juin', '2026') -> '2026-06-01'; '' if the month is not a French month name."""
    number = _MONTHS.get(month.lower())
    return f"{int(year):04d}-{number:02d}-{int(day):02d}" if number and 1 <= int(day) <= 31 else ""


def _dated(text: str) -> Iterator[Identifier]:
    for regex in (_DATED, _DATED_EN):
        for match in regex.finditer(text):
            kind = match.group("kind").lower().translate(_ASCII)
            scheme = _DATED_SCHEME[kind.rstrip("sx") if kind != "acts" else "act"]
            value = _date_of(match)
            if value:
                yield Identifier(scheme, value, match.span())
            pos = match.end()
            while kind.endswith("s") and regex is _DATED and (more := _MORE_DATES.match(text, pos)):
                if value := _date_of(more):
                    yield Identifier(scheme, value, more.span())
                pos = more.end()


# a numbered act named again by its date ("Le décret du 16 octobre 2020 susvisé" after "décret n° 2020-1262 du 16
# octobre 2020") is that act, not another one known by its date
_DATE_SCHEME_OF = {"loi": "loi_date", "decret": "decret_date", "ordonnance": "ordonnance_date"}


_FINDERS: tuple[Finder, ...] = (
    _simple("nor", r"\b([A-Z]{4}\d{7}[A-Z])\b"),
    _simple("jorftext", r"\b(JORFTEXT\d{12})\b", re.I),
    _simple("jorfcont", r"\b(JORFCONT\d{12})\b", re.I),
    _simple("cnil", r"\b(CNILTEXT\d{12})\b", re.I),
    _simple("eli", r"(https?://(?:www\.)?legifrance\.gouv\.fr/eli/[^\s\"'<>]+)", re.I, _eli),
    _simple("celex", r"\bCELEX(?::|%3A)\s*([0-9CE]\d{4}[A-Z]{1,2}\d{4}(?:\(\d{2}\))?)", re.I),
    _simple("celex", r"(?<![\w:%])([1-9](?:19|20)\d{2}[A-Z]{1,2}\d{4})\b"),
    _simple("ecli", r"\b(ECLI:[A-Z]{2}:[A-Z0-9]+:\d{4}:[A-Z0-9.]*[A-Z0-9])", re.I),
    _acts,
    _dated,
    _simple("deliberation", r"\bd[ée]lib[ée]rations?\s+(?:" + _NO + r")?(" + _DELIBERATION + r")\b", _FLAGS),
    # a CNIL sanction or formal notice known by its number alone: three or four digits (SAN-2023-006, MED-2019-027);
    # other regulators' "SAN-2026-03" (AMF commission des sanctions) have two
    _simple("deliberation", r"\b((?:SAN|MED|MEDP|SANP)-\d{4}-\d{3,4})\b"),
    _simple("eu_regulation", r"\b(?:r[èe]glement|regulation)(?:\s+(?:d[’']ex[ée]cution|d[ée]l[ée]gu[ée]))?\s*"
            + _EU_AUTHOR + r"\s*(?:" + _NO + r")?(\d{1,4}/\d{1,4})\b", _FLAGS, str),
    _simple("eu_directive", r"\bdirective\s*(?:" + _EU_AUTHOR + r"\s*)?(?:" + _NO + r")?(\d{2,4}/\d{1,4})\b",
            _FLAGS, str),
)


# every scheme above needs one of these: a numbered act (2025-895, 2016/679), a long id (NOR, JORFTEXT...), an ELI,
# a CELEX or ECLI, or a dated act ("du 4 février 2026"); most titles have none, and skip the dozen finders
_CANDIDATE = re.compile(r"\d\s?[-/]\s?\d|\d{7}|legifrance|celex|ecli|\d{4}[A-Z]{1,2}\d{4}|\b(?:du|of)\s+\d|"
                        r"\bof\s+[a-z]+\s+\d", re.I)


def find_all(text: str) -> list[Identifier]:
    """Every identifier in ``text``, in order of appearance, once per (scheme, value)."""
    if not text or not _CANDIDATE.search(text):
        return []
    found = sorted((ident for finder in _FINDERS for ident in finder(text)), key=lambda i: i.span)
    seen = {(_DATE_SCHEME_OF[ident.scheme], date) for ident, date in _numbered(text) if date}
    unique = []
    for ident in found:
        if (ident.scheme, ident.value) not in seen:
            seen.add((ident.scheme, ident.value))
            unique.append(ident)
    return unique


def by_scheme(text: str) -> dict[str, list[str]]:
    """{scheme: [values in order of appearance]}."""
    grouped: dict[str, list[str]] = {}
    for ident in find_all(text):
        grouped.setdefault(ident.scheme, []).append(ident.value)
    return grouped


def first_by_scheme(text: str) -> dict[str, str]:
    """{scheme: first value found}."""
    return {scheme: values[0] for scheme, values in by_scheme(text).items()}


def as_mapping(grouped: Mapping[str, list[str]], *, prefix: str = "",
               exclude: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{prefix + scheme: "v1,v2"}`` for ``Item.identifiers``; values equal to ``exclude[scheme]`` are left
    out (e.g. the text's own number when listing what it cites)."""
    exclude = exclude or {}
    mapping = {}
    for scheme, values in grouped.items():
        kept = [v for v in values if v != exclude.get(scheme)]
        if kept:
            mapping[prefix + scheme] = ",".join(kept)
    return mapping


def nor_base(nor: str) -> str:
    """The NOR without its last letter: equal for a text and its rectificatifs. '' if not a NOR."""
    return nor[:-1] if is_nor(nor) else ""
