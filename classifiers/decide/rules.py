"""Transparent theme rules, generic over the themes file (``classifiers/themes.toml``): each theme's words (FR and
EN), its reference acts and the legal identifiers an item cites, the source and the issuing authority,
combinations with other themes, and negative rules for what the guideline calls off-topic.

Every rule that fires leaves one ``Evidence`` (theme, label, weight): the label is what a lawyer reads in the tag's
reason ("matched: retraitement, usage unique"; "cite le règlement (UE) 2024/1689 (AI Act)"). The evidence of a
theme adds up to a logit::

    logit = BIAS + source prior + min(CAP, words + identifiers + combinations) + negatives

so one strong rule (4) gives the theme alone (logit 2, p = 0.88), one medium rule (2.5) just does, one weak rule
(1) never does alone, and an off-topic rule (appointment, finance regulator, tech press) outweighs words. A rule
found only in the summary counts ``SUMMARY_FACTOR`` of its weight, except when the title names nothing but an
authority or a kind of act and a number ("AEPD (Spain) - PS/00003/2021", "Arrêté du 3 juin 2026"): then the
summary is all there is to read, and it counts in full. The hybrid classifier adds the model's opinion to this
logit; on their own the rules are a complete classifier (``HybridClassifier()`` without an embedder).

Patterns are matched on folded text (lower case, no accents, plain apostrophes: see ``watcher.util.text.fold``),
except acronyms (``IA``, ``AI``, ``SNDS``), matched case-sensitively.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlparse

from classifiers.decide.themes import STRONG, WEIGHTS, ReferenceAct, Taxonomy, Theme, load_themes
from watcher.legal.identifiers import find_all
from watcher.models import Item
from watcher.util.text import fold

VERSION = "5"  # bump whenever the rule engine changes: stored tags record the version that gave them
BIAS = -2.0
CAP = 6.0
SUMMARY_FACTOR = 0.75
MEDIUM = WEIGHTS["medium"]
SOURCE_PRIOR = 3.0
ACT_WEIGHT = STRONG + 1
DATE_WINDOW = 250  # characters after an act's date in which a word of its title must follow
_CELEX = re.compile(r"\b3(\d{4})([RL])(\d{4})\b")
_EU_NUMBER = re.compile(r"(?<![\d/])(\d{2,4}/\d{1,4})(?![\d/])")
_EU_SCHEMES = ("eu_regulation", "eu_directive")


@dataclass(frozen=True)
class Evidence:
    theme: str
    label: str
    weight: float
    kind: str = "keyword"  # keyword | identifier | source | authority | combination | negative | off-topic


# -- sources and authorities ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceProfile:
    """What the rules know of a source, from its keys in ``sources.toml``: the theme its items lean to
    (``default_theme``: a prior, and why its untagged items stay in scope) and whether its items have a legal angle
    (``legal = true``: authorities, official journals, law firms). ``label`` is quoted in reasons."""

    label: str = ""
    default_theme: str = ""
    legal: bool = False


@dataclass
class Findings:
    """The evidence found for one item, per theme, and the resulting logits."""

    evidence: dict[str, list[Evidence]] = field(default_factory=dict)

    def add(self, ev: Evidence) -> None:
        items = self.evidence.setdefault(ev.theme, [])
        if all(e.label != ev.label for e in items):
            items.append(ev)

    def of(self, theme: str) -> list[Evidence]:
        return self.evidence.get(theme, [])

    def logit(self, theme: str) -> float:
        evidence = self.of(theme)
        prior = sum(e.weight for e in evidence if e.kind in ("source", "authority"))
        positive = sum(e.weight for e in evidence if e.weight > 0 and e.kind not in ("source", "authority"))
        negative = sum(e.weight for e in evidence if e.weight < 0)
        return BIAS + min(prior, SOURCE_PRIOR + 1) + min(positive, CAP) + negative

    def certain(self, theme: str) -> bool:
        """A legal identifier (a reference act, a code article) names the theme: the rules decide it alone."""
        return any(e.kind == "identifier" for e in self.of(theme)) and not self.excluded(theme)

    def grounded(self, theme: str) -> bool:
        """The rules give the theme on firm ground: a legal identifier, or the source's own theme (its default
        theme, site or issuing authority) with words of the theme. Recall first: the model does not take such a
        theme away (unless the theme's policy lets it, on strong evidence: see ``head.combine``)."""
        if self.certain(theme):
            return True
        evidence = self.of(theme)
        return (self.logit(theme) > 0 and any(e.kind in ("source", "authority") for e in evidence)
                and any(e.kind in ("keyword", "combination") and e.weight > 0 for e in evidence))

    def excluded(self, theme: str) -> bool:
        """The guideline's off-topic list applies (an appointment, a finance regulator...): no model brings the
        theme back."""
        return any(e.kind == "off-topic" for e in self.of(theme))

    def positives(self, theme: str) -> float:
        return sum(e.weight for e in self.of(theme) if e.weight > 0 and e.kind not in ("negative", "off-topic"))


@dataclass(frozen=True)
class Text:
    title: str
    summary: str
    raw_title: str
    raw_summary: str
    reference_title: bool = False  # the title is only an authority or a kind of act and a number

    @classmethod
    def of(cls, item: Item) -> Text:
        title, summary = _plain(item.title), _plain(item.summary)
        return cls(fold(title), fold(summary), title, summary, bool(summary) and is_reference_title(title))

    @property
    def folded(self) -> str:
        return f"{self.title} \n {self.summary}"

    @property
    def raw(self) -> str:
        return f"{self.raw_title} \n {self.raw_summary}"


def is_reference_title(title: str) -> bool:
    """A title that says nothing of the content: it ends with a number (a case or act number, a date) and has at
    most eight words besides ("CNIL (France) - SAN-2023-006", "Arrêté du 3 juin 2026", "Délibération n° 2026-101")."""
    tokens = title.split()
    if not tokens or not any(c.isdigit() for c in tokens[-1]):
        return False
    words = [t for t in (re.sub(r"[^\w]", "", tok) for tok in tokens if not any(c.isdigit() for c in tok)) if t]
    return len(words) <= 8


def _plain(text: str) -> str:
    return " ".join(text.replace("’", "'").replace("\u00a0", " ").replace("\u202f", " ").split())


def domain(url: str) -> str:
    host = urlparse(url).netloc.lower()
    return host[4:] if host.startswith("www.") else host


class Rules:
    """All the rules of ``taxonomy``, applied to one item at a time. ``profiles`` maps source names to what
    ``sources.toml`` says of them (see :class:`SourceProfile`); a source without one is judged by its site alone."""

    def __init__(self, taxonomy: Taxonomy | None = None, profiles: Mapping[str, SourceProfile] | None = None):
        self.taxonomy = taxonomy or load_themes()
        self.theme_ids = self.taxonomy.ids
        self.profiles: Mapping[str, SourceProfile] = dict(profiles or {})
        self._sites = {site: theme.id for theme in self.taxonomy for site in theme.sites}
        self._natures = sorted(((start, theme.id, label) for theme in self.taxonomy for start, label in theme.natures),
                               key=lambda n: -len(n[0]))  # the longest start first: "autorisation de recherche"

    def profile(self, item: Item) -> SourceProfile:
        return self.profiles.get(item.source) or SourceProfile()

    def scope(self, item: Item) -> str | None:
        """Why ``item`` is in scope whatever its themes: a source with a default theme (CNIL, ANSM...), an issuing
        authority or a site of the themes file's ``[scope]``."""
        profile = self.profile(item)
        if profile.default_theme:
            return f"source: {profile.label or item.source}"
        meta = fold(" ".join((item.authority, item.rubric)))
        for regex, reason in self.taxonomy.scope_authorities:
            if meta.strip() and regex.search(meta):
                return reason
        host = domain(item.url)
        for site in self.taxonomy.scope_sites:
            if host == site or host.endswith("." + site):
                return f"site: {site}"
        return None

    def findings(self, item: Item) -> Findings:
        text = Text.of(item)
        found = Findings()
        for theme in self.taxonomy:
            self._words(theme, text, found)
        self._acts(item, text, found)
        self._source(item, found)
        for theme in self.taxonomy:
            self._combinations(theme, text, found)
        self._negatives(item, text, found)
        return found

    def _words(self, theme: Theme, text: Text, found: Findings) -> None:
        factor = 1.0 if text.reference_title else SUMMARY_FACTOR
        for p in theme.rules:
            kind = "identifier" if p.decisive else "keyword"
            if p.search(text.title, text.raw_title):
                found.add(Evidence(theme.id, p.label, p.weight, kind))
            elif p.search(text.summary, text.raw_summary):
                found.add(Evidence(theme.id, p.label, p.weight if p.decisive else p.weight * factor, kind))

    def _acts(self, item: Item, text: Text, found: Findings) -> None:
        cited = cited_acts(item, text)
        for theme in self.taxonomy:
            for act in theme.acts:
                if act_cited(act, cited, text):
                    found.add(Evidence(theme.id, act.reason, ACT_WEIGHT, "identifier"))

    def _source(self, item: Item, found: Findings) -> None:
        profile = self.profile(item)
        host = domain(item.url)
        if profile.default_theme in self.theme_ids:
            found.add(Evidence(profile.default_theme, f"source: {profile.label or item.source}", SOURCE_PRIOR, "source"))
        elif host in self._sites:
            found.add(Evidence(self._sites[host], f"site: {host}", SOURCE_PRIOR, "source"))
        meta = fold(" ".join((item.authority, item.rubric)))
        if meta.strip():
            for theme in self.taxonomy:
                for regex, label in theme.authorities:
                    if regex.search(meta):
                        found.add(Evidence(theme.id, label, SOURCE_PRIOR, "authority"))
        delib = fold(str(item.extra.get("nature_delib", "")))
        for start, theme_id, label in self._natures:
            if delib.startswith(start):
                found.add(Evidence(theme_id, label, STRONG, "authority"))
                break

    def _combinations(self, theme: Theme, text: Text, found: Findings) -> None:
        for c in theme.combinations:
            if c.theme and not (found.logit(c.theme) > 0 if c.theme_given else found.positives(c.theme) >= c.theme_min):
                continue
            if not all(regex.search(text.folded) for regex in c.all):
                continue
            if (c.title or c.summary) and not _context(c.title, c.summary, c.ignore, text):
                continue
            found.add(Evidence(theme.id, c.label, c.weight, "combination"))

    def _negatives(self, item: Item, text: Text, found: Findings) -> None:
        legal = bool(self.taxonomy.legal_angle and self.taxonomy.legal_angle.search(text.folded))
        general = [o for o in self.taxonomy.off_topic if o.pattern.search(text.folded, text.raw)]
        tech = domain(item.url) in self.taxonomy.tech_press and not legal
        for theme in self.taxonomy:
            strong_title = _title_strong(found.of(theme.id))
            for o in general:
                if not (theme.id in o.unless_about and strong_title):
                    found.add(Evidence(theme.id, o.pattern.label, o.pattern.weight,
                                       "off-topic" if o.excludes else "negative"))
            if tech:
                found.add(Evidence(theme.id, "presse tech sans angle juridique", self.taxonomy.tech_press_weight,
                                   "negative"))
        legal_source = self.profile(item).legal
        for theme in self.taxonomy:
            own = found.positives(theme.id)
            for n in theme.negatives:
                other = bool(n.theme) and found.positives(n.theme) >= n.theme_min and 0 < own < n.own_below
                if other or (n.no_legal_angle and own and not legal and not legal_source):
                    found.add(Evidence(theme.id, n.label, n.weight, "negative"))


def _context(title: re.Pattern[str] | None, summary: re.Pattern[str] | None, ignore: str, text: Text) -> bool:
    """The title matches ``title``, or the summary matches ``summary`` (or ``title`` too when the title is only a
    reference: the summary is then what the item says)."""
    head, body = (text.title.replace(ignore, ""), text.summary.replace(ignore, "")) if ignore else (text.title,
                                                                                                    text.summary)
    if title and (title.search(head) or (text.reference_title and title.search(body))):
        return True
    return bool(summary and summary.search(body))


def _title_strong(evidence: Sequence[Evidence]) -> bool:
    """A keyword of full strong weight: found in the title (summary matches count less)."""
    return any(e.kind == "keyword" and e.weight >= STRONG for e in evidence)


# -- reference acts -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cited:
    """The acts an item is or cites: (scheme, value) pairs, EU numbers (regulations and directives alike) and the
    positions of dated mentions in the raw text."""

    pairs: frozenset[tuple[str, str]]
    eu: frozenset[str]
    dated: tuple[tuple[str, str, int], ...]  # (scheme, ISO date, end of the mention)


def cited_acts(item: Item, text: Text) -> Cited:
    found = find_all(text.raw)
    pairs = {(i.scheme, i.value) for i in found}
    for scheme, value in item.identifiers.items():
        pairs |= {(scheme.split(":")[-1].removeprefix("cites_"), v.strip()) for v in str(value).split(",") if v.strip()}
    eu = {value for scheme, value in pairs if scheme in _EU_SCHEMES}
    eu |= set(_EU_NUMBER.findall(text.folded))
    for scheme, value in list(pairs):
        if scheme == "celex":
            eu |= set(_celex_numbers(value))
    eu |= {n for y, k, num in _CELEX.findall(text.raw) for n in _celex_numbers(f"3{y}{k}{num}")}
    dated = tuple((i.scheme, i.value, i.span[1]) for i in found if i.scheme in ("arrete", "decret_date", "loi_date",
                                                                                 "ordonnance_date"))
    return Cited(frozenset(pairs), frozenset(eu), dated)


def _celex_numbers(celex: str) -> Iterable[str]:
    """The EU numbers a CELEX id of a regulation or directive stands for: 32016R0679 -> 2016/679 (and 679/2016, the
    order of acts numbered before 2015)."""
    match = _CELEX.fullmatch(celex.upper()) if celex else None
    if not match:
        return ()
    year, number = match.group(1), str(int(match.group(3)))
    return (f"{year}/{number}", f"{number}/{year}")


def act_cited(act: ReferenceAct, cited: Cited, text: Text) -> bool:
    if act.scheme in _EU_SCHEMES:
        return act.value in cited.eu
    if act.title_words:
        return any(scheme == act.scheme and value == act.value
                   and any(w in fold(text.raw[end : end + DATE_WINDOW]) for w in act.title_words)
                   for scheme, value, end in cited.dated)
    if act.scheme == "celex":
        return (act.scheme, act.value) in cited.pairs or bool(set(_celex_numbers(act.value)) & cited.eu)
    return (act.scheme, act.value) in cited.pairs


# -- reasons and logits ---------------------------------------------------------------------------------------------
def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def reason_text(evidence: Sequence[Evidence], extra: str = "") -> str:
    """'cite le règlement (UE) ...; délibération CNIL : recommandation; source: CNIL; matched: a, b; but: ...' from
    the evidence of one theme. The acts an item cites, where it comes from (source, issuing authority, the kind of
    CNIL délibération) and the words it matched are listed apart, each kind up to a few, so that acts cited never
    hide the other evidence a lawyer reads the tag by."""
    group = {"keyword": "matched", "combination": "matched", "negative": "but", "off-topic": "but",
             "source": "origin", "authority": "origin"}
    parts: dict[str, list[str]] = {}
    for e in sorted(evidence, key=lambda e: -abs(e.weight)):
        parts.setdefault(group.get(e.kind, "acts"), []).append(e.label)
    chunks = [f"{k}: {', '.join(v[:4])}" if k in ("matched", "but") else "; ".join(v[:3]) for k, v in parts.items()]
    if extra:
        chunks.append(extra)
    return "; ".join(chunks)


def logits(rules: Rules, items: Sequence[Item]) -> list[dict[str, float]]:
    """The rule logit of every theme, for each item."""
    out: list[dict[str, float]] = []
    for item in items:
        found = rules.findings(item)
        out.append({t: found.logit(t) for t in rules.theme_ids})
    return out
