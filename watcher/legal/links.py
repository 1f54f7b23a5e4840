"""Links between items: an item that names an act, tied to the archived item that IS that act.

Each item is read once per content (``link_pending``):

- what it IS: a JO text (``jorf:``) or a CNIL text (``cnil:``) is its own NOR, JORFTEXT, ELI, number or date
  (its unprefixed ``identifiers``); an EUR-Lex item is its CELEX (and the regulation's or directive's number);
  a non-rectificatif JO text is also its NOR without the last letter (``nor_base``);
- what it names: every act ``watcher.legal.identifiers`` finds in its title, summary and text, with the kind of
  mention read from the words just before it: ``amends`` ("modifiant le décret n° …"), ``applies`` ("pris pour
  l'application de", "prévus par l'article 4 du décret n° …"), else ``cites``; the verb belongs to the act named
  just before it in the phrase, so only that act amends or applies (a post on "l'arrêté du … prévu par le décret
  n° …" cites the décret); a rectificatif (NOR ending in Z) ``rectifies`` the text whose NOR shares its first 11
  characters. A citation never resolves to a rectificatif, nor to another capture of the same JO text.

A link goes from the naming item to the item that IS the act. An act known only by its date (``arrêté du 4
février 2026``) is never linked on the date alone (many arrêtés share a day): most of the candidate's
distinctive title words (at least two) must be around the mention, and it must be the only one that does best. Two
official items that ARE one act are linked too: the JO publication of a CNIL délibération ``publishes`` it; a
rectificatif ``rectifies`` its text (when the act is known by its date, the one text of that day that bears the
rectificatif's title).

Themes flow along links, from the act to what names it (both ways for ``publishes``): an item citing an act
tagged ``dmuu-reprocessing`` gets that theme with origin ``link`` and the reason "cite l’arrêté du 4 février
2026, retraitement des DMUU", unless it has the theme already or a person removed it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from watcher.legal import acts as acts_module
from watcher.legal import identifiers as ids
from watcher.legal.normalize import iso
from watcher.util.partition import Partition
from watcher.util.text import fold, is_rectificatif_nor

OFFICIAL_PREFIXES = ("jorf:", "cnil:")
DATED = frozenset({"arrete", "decret_date", "loi_date", "ordonnance_date"})
KINDS = ("cites", "applies", "amends", "rectifies", "publishes")
TEXT_CHARS = 20_000  # of an item's text read for the acts it names (a JO text names its acts in its visas, first)
_OWN_SCHEMES = tuple(s for s in acts_module.ACT_SCHEMES)
_AMENDS = re.compile(r"\b(?:modifiant|modifie|modifiee?s?|portant modification|abrogeant|abroge|amending|amends)\b")
_APPLIES = re.compile(r"\b(?:application|pris pour|prise pour|prevu(?:e|s|es)? (?:a|au|aux|par)|"
                      r"mentionne(?:e|s|es)? (?:a|au|aux)|en vertu|conformement|implementing)\b")
_PHRASE_END = re.compile(r"[.;\n]")
_WORD = re.compile(r"[a-z][a-z'-]{4,}")
_STOP = frozenset(fold(w) for w in (
    "arrêté", "arrêtés", "décret", "décrets", "relatif", "relative", "relatifs", "relatives", "portant", "modifiant",
    "ministre", "ministère", "janvier", "février", "avril", "juillet", "septembre", "octobre", "novembre",
    "décembre", "article", "articles", "application", "conditions", "l'article", "d'application", "publie",
    "journal", "officiel", "mentionnés", "prévus", "prévues", "prévue", "dispositions", "certains", "certaines",
    "notamment", "fixant", "pris", "national", "nationale", "française", "république", "premier", "ministres",
    "l'arrêté", "d'arrêté", "date", "annexe", "présent", "présente", "l'économie", "finances"))
_VERBS = {"fr": {"cites": "cite", "applies": "applique", "amends": "modifie", "rectifies": "rectifie",
                 "publishes": "publie"},
          "en": {"cites": "cites", "applies": "applies", "amends": "amends", "rectifies": "corrects",
                 "publishes": "publishes"}}


class LinkStore(Protocol):
    def items_to_link(self, page_size: int = ...) -> Iterable[list[dict[str, Any]]]: ...
    def save_mentions(self, item_hashes: Mapping[str, str], mentions: Sequence[Mapping[str, Any]]) -> None: ...
    def mentions_of(self, pairs: Sequence[tuple[str, str]], role: str) -> list[dict[str, Any]]: ...
    def save_links(self, links: Sequence[Mapping[str, Any]]) -> int: ...
    def add_link_themes(self, rows_: Sequence[Mapping[str, Any]]) -> int: ...
    def item_theme_rows(self, item_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]: ...
    def writer_lock(self) -> Any: ...


@dataclass
class LinkReport:
    items: int = 0
    mentions: int = 0
    links: int = 0
    themes: int = 0


_LEGIFRANCE_TEXT = re.compile(r"^https?://(?:www\.)?legifrance\.gouv\.fr/(?:jorf|cnil)/id/((?:JORF|CNIL)TEXT\d{12})")
_TITLE_ID_PREFIX = re.compile(r"^\[?[\w\s-]{0,40}?JORFTEXT\d{12}\]?(?::\s*|\s*$)")
DATED_COVER = 0.6  # of the candidate's title words found around a mention by date
TITLE_WORDS_CHARS = 200  # of a candidate's title compared (a citation may cut a long title)
LEAD_CHARS = 20  # an official text's title names its own act first: "Décret n° 2021-217 du …", "Arrêté du …"


def is_official(item: Mapping[str, Any]) -> bool:
    """A JO or CNIL text (from DILA's data, or any feed linking to its Légifrance page), or an EUR-Lex act: an item
    that IS the act it carries."""
    return (str(item.get("id", "")).startswith(OFFICIAL_PREFIXES) or _is_eurlex(item)
            or _on_legifrance(str(item.get("url") or "")))


def _on_legifrance(url: str) -> bool:
    return urlsplit(url).netloc.lower() in ("www.legifrance.gouv.fr", "legifrance.gouv.fr")


def _is_eurlex(item: Mapping[str, Any]) -> bool:
    identifiers = item.get("identifiers") or {}
    host = urlsplit(str(item.get("url") or "")).netloc.lower()
    return host.endswith("eur-lex.europa.eu") and bool(identifiers.get("celex"))


def identity(item: Mapping[str, Any], title_acts: Sequence[ids.Identifier] | None = None) -> list[tuple[str, str]]:
    """The acts an item IS (see the module docstring); [] for a commentary, a news item, a post. ``title_acts``:
    the identifiers found in a text that begins with the item's title, when the caller has them."""
    identifiers = item.get("identifiers") or {}
    if _is_eurlex(item):
        celex = str(identifiers["celex"]).split(",")[0]
        own = [("celex", celex)]
        number = acts_module.number_of_celex(celex)
        return own + ([number] if number else [])
    page = _LEGIFRANCE_TEXT.match(str(item.get("url") or ""))
    dila = str(item.get("id", "")).startswith(OFFICIAL_PREFIXES)
    if not dila and not _on_legifrance(str(item.get("url") or "")):
        return []
    own = [(s, v.strip()) for s in _OWN_SCHEMES for v in str(identifiers.get(s) or "").split(",") if v.strip()] \
        if dila else []
    if page:
        own.append(("jorftext" if page.group(1).startswith("JORF") else "cnil", page.group(1)))
    title = str(item.get("title") or "")
    bare = _TITLE_ID_PREFIX.sub("", title)
    if bare != title:  # a feed that puts the text's id before or instead of its title ("DECRET - JORFTEXT…",
        title, title_acts = bare or str(item.get("summary") or ""), None  # "[ARRETE - JORFTEXT…]: Arrêté du …")
    lead = ids.find_all(title[:300]) if title_acts is None else title_acts
    if lead and lead[0].span[0] <= LEAD_CHARS and lead[0].scheme in acts_module.ACT_SCHEMES:
        own.append((lead[0].scheme, lead[0].value))
    nor = str(identifiers.get("nor") or "")
    if nor and not is_rectificatif_nor(nor) and identifiers.get("nor_base"):
        own.append(("nor_base", str(identifiers["nor_base"])))
    return own


def _kind(text: str, start: int) -> str:
    before = fold(text[max(0, start - 70):start])
    before = before[max(before.rfind("."), before.rfind(";")) + 1:]
    if _AMENDS.search(before):
        return "amends"
    if _APPLIES.search(before):
        return "applies"
    return "cites"


def mentions(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of ``act_mentions`` for one item: what it IS, then what it names (see the module docstring)."""
    item_id = str(item["id"])
    text = "\n".join(str(item.get(k) or "") for k in ("title", "summary"))
    body = str(item.get("text") or "")[:TEXT_CHARS]
    if body and body[:200] not in text:
        text += "\n" + body
    found = ids.find_all(text)
    own = identity(item, found)
    rows: list[dict[str, Any]] = [{"item_id": item_id, "scheme": s, "value": v, "role": "is", "kind": "",
                                   "context": ""} for s, v in dict.fromkeys(own)]
    mine = set(own)
    identifiers = item.get("identifiers") or {}
    nor = str(identifiers.get("nor") or "")
    if is_official(item) and is_rectificatif_nor(nor) and identifiers.get("nor_base"):
        rows.append({"item_id": item_id, "scheme": "nor_base", "value": str(identifiers["nor_base"]),
                     "role": "cites", "kind": "rectifies", "context": ""})
    named: dict[tuple[str, str], dict[str, Any]] = {}
    previous: ids.Identifier | None = None
    for ident in found:
        key = (ident.scheme, ident.value)
        if ident.scheme not in acts_module.ACT_SCHEMES:
            continue
        before, previous = previous, ident
        if key in mine:
            continue
        kind = _kind(text, ident.span[0])
        if kind != "cites" and before is not None and (before.scheme, before.value) not in mine \
                and not _PHRASE_END.search(text[before.span[1]:ident.span[0]]):
            kind = "cites"  # "rapport relatif à l'ordonnance X modifiant Y": X amends Y, not the rapport
        row = named.get(key)
        if row is None:
            context = text[max(0, ident.span[0] - 250):ident.span[1] + 250] if ident.scheme in DATED else ""
            named[key] = {"item_id": item_id, "scheme": ident.scheme, "value": ident.value, "role": "cites",
                          "kind": kind, "context": context}
        elif row["kind"] == "cites" and kind != "cites":
            row["kind"] = kind
    return rows + list(named.values())


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(fold(text or "")) if w not in _STOP}


def resolve_dated(context: str, candidates: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The one candidate (rows with a ``title``) whose title's distinctive words are found around the mention:
    at least two, and most of them (``DATED_COVER``), since an act cited by its date is named by its title too;
    None when none is or two are equally. Generic words shared by many titles of a day ("nomination",
    "concours") are not enough."""
    around = _words(context)
    scored = []
    for n, c in enumerate(candidates):
        own = _words(str(c.get("title") or "")[:TITLE_WORDS_CHARS])
        shared = len(own & around)
        if shared >= 2 and shared >= DATED_COVER * len(own):
            scored.append((shared, n))
    scored.sort(reverse=True)
    if not scored or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return candidates[scored[0][1]]


def _is_rectificatif(row: Mapping[str, Any]) -> bool:
    return "rectificatif" in fold(str(row.get("title") or ""))


_RECTIFICATIF = re.compile(r"\brectificatifs?\b")


def _same_title(rectificatif: Mapping[str, Any], target: Mapping[str, Any],
                same_day: Sequence[Mapping[str, Any]]) -> bool:
    """Whether ``target`` is the text a rectificatif of an act known by its date corrects: the one text of that
    day (``same_day``) whose title has the rectificatif's words (its own marker aside), nearly all of them."""
    def words(row: Mapping[str, Any]) -> set[str]:
        return {w for w in _WORD.findall(_RECTIFICATIF.sub(" ", fold(str(row.get("title") or ""))))}

    mine = words(rectificatif)

    def close(row: Mapping[str, Any]) -> bool:
        theirs = words(row)
        return bool(mine) and len(mine & theirs) >= 0.9 * max(len(mine), len(theirs))

    # one text captured twice (two feeds) counts once
    plain = {_text_id(r) or r["item_id"] for r in same_day if not _is_rectificatif(r) and close(r)}
    return close(target) and len(plain) == 1


def _resolve(citing: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    others = [c for c in candidates if c["item_id"] != citing["item_id"]]
    if not others:
        return []
    if citing["scheme"] in DATED:
        one = resolve_dated(str(citing.get("context") or ""), others)
        return [one] if one else []
    return [c for c in others if not _is_rectificatif(c)]  # a citation names the act, not its rectificatif


def link_rows(new_mentions: Sequence[Mapping[str, Any]], store: LinkStore, stamp: str) -> list[dict[str, Any]]:
    """The links the mentions of the items just read make, in both directions (they may name an act already
    archived, or be the act that archived items name)."""
    cites = [m for m in new_mentions if m["role"] == "cites"]
    owns = [m for m in new_mentions if m["role"] == "is"]
    acts_by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in store.mentions_of([(m["scheme"], m["value"]) for m in cites + owns], "is"):
        acts_by_key.setdefault((row["scheme"], row["value"]), []).append(row)
    citing_rows = list(cites) + store.mentions_of([(m["scheme"], m["value"]) for m in owns], "cites")
    fund = {row["item_id"]: row["scheme"] for rows in acts_by_key.values() for row in rows
            if row["scheme"] in ("jorftext", "cnil")}
    if owns:
        fund.update((row["item_id"], row["scheme"]) for row in store.mentions_of(
            [(m["scheme"], m["value"]) for m in owns if m["scheme"] in ("jorftext", "cnil")], "is"))
    texts = {m["item_id"]: m["value"] for m in owns if m["scheme"] == "jorftext"}
    links: dict[tuple[str, str], dict[str, Any]] = {}
    for citing in citing_rows:
        mine = _text_id(citing) or texts.get(citing["item_id"])
        for act in _resolve(citing, acts_by_key.get((citing["scheme"], citing["value"]), [])):
            if mine and _text_id(act) == mine:
                continue  # one JO text captured twice (two feeds): the same act, not a citation
            _add(links, citing["item_id"], act["item_id"], citing["kind"] or "cites", citing, stamp)
    _same_act_links(owns, acts_by_key, fund, texts, links, stamp)
    return list(links.values())


def _same_act_links(owns: Sequence[Mapping[str, Any]], acts_by_key: Mapping[tuple[str, str], list[dict[str, Any]]],
                    fund: Mapping[str, str], texts: Mapping[str, str], links: dict[tuple[str, str], dict[str, Any]],
                    stamp: str) -> None:
    """Links between two official items that ARE one act: a rectificatif and its text, a JO publication and its
    CNIL text."""
    for own in owns:  # two official items that ARE one act
        for other in acts_by_key.get((own["scheme"], own["value"]), []):
            if other["item_id"] == own["item_id"] or own["scheme"] == "nor_base":
                continue
            a, b = own["item_id"], other["item_id"]
            if _text_id(other) is not None and _text_id(other) == texts.get(a):
                continue  # one JO text captured twice (two feeds)
            this = {"item_id": a, "title": next((m.get("title") for m in acts_by_key[(own["scheme"], own["value"])]
                                                 if m["item_id"] == a), "")}
            if _is_rectificatif(this) != _is_rectificatif(other):
                source, target = (this, other) if _is_rectificatif(this) else (other, this)
                if own["scheme"] in DATED and not _same_title(source, target,
                                                               acts_by_key[(own["scheme"], own["value"])]):
                    continue  # many arrêtés share a day: a rectificatif corrects the one that bears its title
                _add(links, source["item_id"], target["item_id"], "rectifies", own, stamp)
            elif own["scheme"] not in DATED and {fund.get(a), fund.get(b)} == {"jorftext", "cnil"}:  # the JO publication of a CNIL text
                source, target = (a, b) if fund.get(a) == "jorftext" else (b, a)
                _add(links, source, target, "publishes", own, stamp)


def _text_id(row: Mapping[str, Any]) -> str | None:
    page = _LEGIFRANCE_TEXT.match(str(row.get("url") or ""))
    return page.group(1) if page else None


def _add(links: dict[tuple[str, str], dict[str, Any]], source: str, target: str, kind: str,
         via: Mapping[str, Any], stamp: str) -> None:
    scheme, value = str(via["scheme"]), str(via["value"])
    label = acts_module.label(scheme, value) if scheme != "nor_base" else f"NOR {value}…"
    links.setdefault((source, target), {"from_id": source, "to_id": target, "kind": kind, "scheme": scheme,
                                        "value": value, "reason": f"{_VERBS['fr'][kind]} {with_article(label)}",
                                        "created_at": stamp})


_FEMININE = ("loi", "directive", "délibération", "ordonnance")


def with_article(label: str) -> str:
    """'décret n° 2025-895' -> 'le décret n° 2025-895'; 'arrêté du …' -> 'l’arrêté du …'."""
    first = label.split(" ", 1)[0].lower()
    if first[:1] in "aâàeéèêiîoôuyh":
        return "l’" + label
    return ("la " if first in _FEMININE else "le ") + label


def flowing_themes(links: Sequence[Mapping[str, Any]], store: LinkStore, stamp: str,
                   theme_labels: Mapping[str, str] | None = None, min_score: float = 0.5) -> list[dict[str, Any]]:
    """Theme rows (origin 'link') that the links carry: the act's themes to the item naming it (both ways for
    ``publishes``), with the reason 'cite l’arrêté du 4 février 2026, retraitement des DMUU'."""
    pairs = [(link["to_id"], link["from_id"], link) for link in links]
    pairs += [(link["from_id"], link["to_id"], link) for link in links if link["kind"] == "publishes"]
    themes = store.item_theme_rows([giver for giver, _, _ in pairs])
    labels = theme_labels or {}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for giver, taker, link in pairs:
        for row in themes.get(giver, []):
            if float(row["score"]) < min_score:
                continue
            reason = f"{link['reason']}, {labels.get(row['theme'], row['theme'])}"
            out.setdefault((taker, row["theme"]), {"item_id": taker, "theme": row["theme"],
                                                   "score": round(float(row["score"]), 4), "reason": reason,
                                                   "classified_at": stamp})
    return list(out.values())


def link_pending(store: LinkStore, now: datetime, *, theme_labels: Mapping[str, str] | None = None,
                 page_size: int = 2000) -> LinkReport:
    """Read the items not yet linked (or changed), store what they are and name, link them both ways and let
    themes flow along the new links. Idempotent: an item is read again only when its content changes."""
    report, stamp = LinkReport(), iso(now) or ""
    for page in store.items_to_link(page_size):
        found = [m for item in page for m in mentions(item)]
        store.save_mentions({item["id"]: item["content_hash"] or "" for item in page}, found)
        links = link_rows(found, store, stamp)
        report.items += len(page)
        report.mentions += len(found)
        report.links += store.save_links(links)
        report.themes += store.add_link_themes(flowing_themes(links, store, stamp, theme_labels))
    return report


def groups_of(item_ids: Sequence[str], links: Iterable[tuple[str, str]]) -> list[list[str]]:
    """``item_ids`` in groups of linked items (``links``: (from, to) pairs), each group led by the act the others
    name (a member no link of the group leaves), in the order of ``item_ids``; an unlinked item is its own group."""
    partition = Partition(item_ids)
    sources: set[str] = set()
    for a, b in links:
        if a in partition and b in partition:
            partition.join(a, b)
            sources.add(a)
    groups: dict[str, list[str]] = {}
    for i in item_ids:
        groups.setdefault(partition.root(i), []).append(i)
    out = []
    for members in groups.values():
        leads = [m for m in members if m not in sources] or members
        out.append([leads[0], *[m for m in members if m != leads[0]]])
    return out


def grouped_by_links(links_among: Callable[[Sequence[str]], list[tuple[str, str]]],
                     then: Callable[[Sequence[Mapping[str, Any]]], list[list[Mapping[str, Any]]]] | None = None,
                     ) -> Callable[[Sequence[Mapping[str, Any]]], list[list[Mapping[str, Any]]]]:
    """A digest's grouping (``watcher.notify.render.SameEvent``): an act and the items that name it make one entry
    ("voir aussi"), whatever else groups them; ``then`` groups what the links leave alone (e.g. same event)."""

    def group(items: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
        by_id = {str(i["id"]): i for i in items}
        linked = groups_of(list(by_id), links_among(list(by_id)))
        alone = [by_id[g[0]] for g in linked if len(g) == 1]
        out = [[by_id[i] for i in g] for g in linked if len(g) > 1]
        out += then(alone) if then is not None and len(alone) > 1 else [[i] for i in alone]
        return out

    return group
