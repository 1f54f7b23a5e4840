"""Kinds of act: one vocabulary for what every source calls the nature of what it publishes.

Each source says it its own way (the JORF ``NATURE`` ``DECRET``, a CNIL ``NATURE_DELIB``
``Recommandation/Lignes directrices``, a feed's configured ``actualite``). ``normalise`` turns that raw value into
one ``code`` of ``VOCABULARY`` (the raw value is kept beside it, in the archive's ``nature_raw`` column). A CNIL
délibération gets a sub-kind (``deliberation-sanction``, ``deliberation-recommandation``...) whose ``parent`` is
``deliberation``: a subscription asking for ``deliberation`` gets every sub-kind. A raw value not in the vocabulary
becomes ``autre`` (its raw value still shown and searchable).

``resolve`` reads what a person writes in a subscription (a code, a raw value such as ``DECRET``, or a label such as
``décret``); docs/natures.md is this table (checked by a test).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Nature:
    code: str
    fr: str
    en: str
    parent: str = ""
    aliases: tuple[str, ...] = ()  # raw values (any case, accents or punctuation) that mean this kind


OTHER = "autre"
VOCABULARY: tuple[Nature, ...] = (
    Nature("loi", "loi", "act (loi)", aliases=("LOI", "loi organique", "LOI_ORGANIQUE", "loi constitutionnelle")),
    Nature("ordonnance", "ordonnance", "ordinance (ordonnance)", aliases=("ORDONNANCE",)),
    Nature("decret", "décret", "decree (décret)", aliases=("DECRET", "décret en Conseil d'État")),
    Nature("arrete", "arrêté", "order (arrêté)", aliases=("ARRETE", "arrêté ministériel", "arrêté interministériel")),
    Nature("circulaire", "circulaire", "circular", aliases=("CIRCULAIRE", "INSTRUCTION")),
    Nature("decision", "décision", "decision", aliases=("DECISION",)),
    Nature("injonction", "injonction (ANSM)", "injunction (ANSM)", parent="decision", aliases=("injonction",)),
    Nature("decision-police-sanitaire", "décision de police sanitaire", "health police decision", parent="decision",
           aliases=("décision de police sanitaire",)),
    Nature("decision-sanction", "décision de sanction", "sanction decision", parent="decision",
           aliases=("décision de la commission des sanctions",)),
    Nature("decision-conseil-constitutionnel", "décision du Conseil constitutionnel (QPC, DC)",
           "Constitutional Council decision (QPC, DC)", parent="decision"),
    Nature("avis", "avis", "opinion (avis)", aliases=("AVIS",)),
    Nature("avis-vacance", "avis de vacance d'emploi", "vacancy notice", parent="avis",
           aliases=("avis de vacance",)),
    Nature("deliberation", "délibération", "deliberation", aliases=("DELIBERATION",)),
    Nature("deliberation-sanction", "délibération CNIL – sanction", "CNIL deliberation – sanction",
           parent="deliberation", aliases=("Sanction",)),
    Nature("deliberation-recommandation", "délibération CNIL – recommandation", "CNIL deliberation – recommendation",
           parent="deliberation", aliases=("Recommandation/Lignes directrices", "Recommandation",
                                           "Lignes directrices")),
    Nature("deliberation-avis", "délibération CNIL – avis", "CNIL deliberation – opinion", parent="deliberation",
           aliases=("Avis",)),
    Nature("deliberation-autorisation", "délibération CNIL – autorisation", "CNIL deliberation – authorisation",
           parent="deliberation", aliases=("Autorisation", "Autre autorisation", "Autorisation de recherche médicale",
                                           "Dispense")),
    Nature("deliberation-referentiel", "délibération CNIL – référentiel", "CNIL deliberation – reference framework",
           parent="deliberation", aliases=("Référentiel", "Règlement type", "Norme simplifiée",
                                           "Méthodologie de référence", "Référentiel/Règlement type")),
    Nature("deliberation-mise-en-demeure", "délibération CNIL – mise en demeure", "CNIL deliberation – formal notice",
           parent="deliberation", aliases=("Mise en demeure",)),
    Nature("rapport", "rapport", "report", aliases=("RAPPORT",)),
    Nature("actualite", "actualité", "news", aliases=("actualité", "news")),
    Nature("information-securite", "information de sécurité", "safety information",
           aliases=("information de securite", "informations de sécurité")),
    Nature("rappel", "rappel de produit", "product recall", aliases=("rappel", "rappel de produit")),
    Nature("article", "article", "article", aliases=("post", "billet")),
    Nature("algorithme", "algorithme (fiche)", "algorithm (record)"),
    Nature("acte-ue", "acte de l'Union européenne", "EU act", aliases=("reglement UE", "directive UE")),
    Nature(OTHER, "autre", "other"),
)
BY_CODE = {n.code: n for n in VOCABULARY}
CNIL_PREFIX = "cnil:CNILTEXT"  # id prefix of a CNIL délibération (watcher.sources.dila_cnil): natures are sub-kinds


def key(value: str) -> str:
    """What two spellings of one raw value share: lower case, no accents, words joined by single spaces."""
    plain = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii").lower()
    return " ".join(re.findall(r"[a-z0-9]+", plain))


def _alias_index(cnil: bool) -> dict[str, str]:
    index: dict[str, str] = {}
    for nature in VOCABULARY:
        if bool(nature.parent == "deliberation") != cnil:
            continue
        for spelling in (nature.code, nature.fr, *nature.aliases):
            index.setdefault(key(spelling), nature.code)
    return index


_GENERAL, _CNIL = _alias_index(cnil=False), _alias_index(cnil=True)


# Kinds of act a title states in its first words ("Injonction n° 2026-MED CHIM-051-INJ du 30/09/2026 …", "Décision
# de police sanitaire du 16/07/2026 …", "Décision n° 2026-1203 QPC du 5 juin 2026"), most specific first. The ones
# marked True are acts whatever the source calls its items (an ANSM injonction in its news feed); the others only
# refine a source that said nothing, or a kind they are a sub-kind of: a firm's post titled "Décret n° … : ce qui
# change" stays an article.
_TITLE_KINDS: tuple[tuple[re.Pattern[str], str, bool], ...] = tuple((re.compile(p), code, always) for p, code, always in (
    (r"^injonction n", "injonction", True),
    (r"^decision de police sanitaire\b", "decision-police-sanitaire", True),
    (r"^decision de la commission des sanctions\b", "decision-sanction", True),
    (r"^decision n [\d ]+(?:qpc|dc|l|lp|lom|elec|i|fnr|ref)\b", "decision-conseil-constitutionnel", True),
    (r"^decision (?:n [\d ]+)?du \d", "decision", True),
    (r"^avis de vacance\b", "avis-vacance", False),
    (r"^avis (?:de l \w+ )?du \d", "avis", True),
    (r"^avis relatif\b", "avis", False),
    (r"^arrete (?:du|n)\b", "arrete", False),
    (r"^decret (?:du|n)\b", "decret", False),
    (r"^loi (?:organique )?n\b", "loi", False),
    (r"^ordonnance n\b", "ordonnance", False),
    (r"^deliberation (?:du|n)\b", "deliberation", False),
    (r"^(?:circulaire|instruction) ", "circulaire", False),
))
_REFINABLE = frozenset({"", "autre", "actualite", "article", "information-securite"})


def from_title(title: str) -> tuple[str, bool] | None:
    """(code, whether it holds whatever the source's kind) of the kind of act a title states first, or None."""
    words = key(title[:80])
    for pattern, code, always in _TITLE_KINDS:
        if pattern.match(words):
            return code, always
    return None


def normalise(raw: str, item_id: str = "", title: str = "") -> str:
    """The vocabulary code of a source's raw nature ('' if it gave none, ``autre`` if it is not known).
    A CNIL délibération (``item_id`` ``cnil:CNILTEXT...``) is read as a CNIL sub-kind first. A ``title`` that
    states its kind of act first refines a generic one (see ``_TITLE_KINDS``)."""
    code = _normalise(raw, item_id)
    stated = from_title(title) if title else None
    if stated is not None:
        found, always = stated
        parent = BY_CODE[found].parent
        if (code in ("", "autre") or (always and code in _REFINABLE) or parent == code) and (
                code != "deliberation" or found == code):
            return found
    return code


def _normalise(raw: str, item_id: str) -> str:
    if not raw or not raw.strip():
        return ""
    spelled = key(raw)
    if item_id.startswith(CNIL_PREFIX):
        return _CNIL.get(spelled) or ("deliberation" if _GENERAL.get(spelled) in (None, "deliberation")
                                      else _GENERAL[spelled])
    return _GENERAL.get(spelled) or _CNIL.get(spelled) or OTHER


def resolve(value: str) -> str | None:
    """The code a person meant (a code, a raw value or a label, any case or accents), or None if unknown."""
    spelled = key(value)
    if spelled.replace(" ", "-") in BY_CODE:
        return spelled.replace(" ", "-")
    return _GENERAL.get(spelled) or _CNIL.get(spelled)


def accepts(wanted: Iterable[str], code: str) -> bool:
    """Whether an item of kind ``code`` is one of ``wanted`` (codes): itself or its parent is listed."""
    chosen = set(wanted)
    nature = BY_CODE.get(code)
    return code in chosen or (nature is not None and nature.parent in chosen)


def label(code: str, lang: str = "fr", raw: str = "") -> str:
    """The label of ``code`` in ``lang``; for ``autre`` (or an unknown code), the source's raw value if given."""
    nature = BY_CODE.get(code)
    if nature is None or nature.code == OTHER:
        return raw or (nature.fr if nature and lang == "fr" else nature.en if nature else code)
    return nature.fr if lang == "fr" else nature.en


def markdown() -> str:
    """docs/natures.md: the vocabulary as a table."""
    lines = [
        "# Kinds of act (natures)",
        "",
        "Every item's `nature` is one code of this list (the source's own value is kept in `nature_raw`). A",
        "subscription's `natures` may give codes, labels or the sources' raw values (`DECRET`, `décret`, `decret`);",
        "a parent (`deliberation`) includes its sub-kinds. An unknown value is a configuration error naming the file.",
        "Generated from `watcher/legal/natures.py` (a test checks this file is up to date).",
        "",
        "| code | français | English | includes | raw values read as this kind |",
        "|---|---|---|---|---|",
    ]
    for n in VOCABULARY:
        children = ", ".join(f"`{c.code}`" for c in VOCABULARY if c.parent == n.code)
        raws = ", ".join(f"`{a}`" for a in n.aliases) + (" (CNIL `NATURE_DELIB`)" if n.parent else "")
        lines.append(f"| `{n.code}` | {n.fr} | {n.en} | {children} | {raws} |")
    return "\n".join(lines) + "\n"
