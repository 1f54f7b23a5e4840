"""Messages from the ledger's items: e-mail (text + HTML) and Slack Block Kit, French by default, English on demand.

Everything that comes from a source is escaped for its medium: HTML by Jinja2's autoescape; Slack mrkdwn by the
``finalize`` hook of the Slack environment, so no template can forget it (``&``, ``<``, ``>`` are escaped, which
also disarms ``<!channel>``, ``<!here>`` and ``<@U…>``; ``* _ ~ ` `` become look-alike characters; a bare
``@channel`` gets a zero-width space). Only http(s) URLs are ever made into links.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from watcher.config.alerts import Subscription
from watcher.legal import legal_dates, natures
from watcher.legal.acts import ArchiveLookup, acts_shown
from watcher.notify.base import Message
from watcher.util.text import fold

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "prefix": "[Veille]", "colon": " :", "instant": "Nouveau texte", "daily": "Récapitulatif quotidien",
        "weekly": "Récapitulatif hebdomadaire", "since": "Récapitulatif", "of": "du", "since_of": "depuis le",
        "text": "texte", "texts": "textes", "source": "Source", "date": "Date", "nature": "Nature",
        "themes": "Thèmes", "also": "Aussi", "why": "Pourquoi", "score": "score du modèle",
        "read": "Lire le texte", "archive": "Fiche dans l'archive", "unsubscribe": "Se désabonner",
        "because": "Vous recevez ce message au titre de votre veille juridique",
        "reply": "Pour ne plus recevoir ces messages, répondez-y en le demandant.",
        "more": "autres textes dans l'archive", "words": "mots", "cites": "cite", "model": "modèle",
        "person": "confirmé par un juriste", "period": "Période", "site": "publié par", "same_event": "aussi",
        "updated": "Texte modifié", "followed": "Textes suivis", "official": "Texte officiel",
        "assessed": "évalué par le modèle", "theme_test": "Message d'essai", "list_sep": " ; ",
    },
    "en": {
        "prefix": "[Watch]", "colon": ":", "instant": "New text", "daily": "Daily digest", "weekly": "Weekly digest",
        "since": "Digest", "of": "of", "since_of": "since", "text": "text", "texts": "texts", "source": "Source",
        "date": "Date", "nature": "Kind of act", "themes": "Themes", "also": "Also", "why": "Why",
        "score": "model score", "read": "Read the text", "archive": "Archive record", "unsubscribe": "Unsubscribe",
        "because": "You receive this message as part of your legal watch",
        "reply": "To stop receiving these messages, reply and ask.",
        "more": "more texts in the archive", "words": "words", "cites": "cites", "model": "model",
        "person": "confirmed by a lawyer", "period": "Period", "site": "published by", "same_event": "also",
        "updated": "Updated text", "followed": "Followed acts", "official": "Official text",
        "assessed": "assessed by the model", "theme_test": "Test message", "list_sep": "; ",
    },
}
FOLLOWED = "~acts"  # the group of items matched by a subscription's followed acts (``acts = [...]``)
_LOOKALIKES = str.maketrans({"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"})
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_SLACK_SECTION = 2900  # Slack allows 3000 characters per section text
_SLACK_BLOCKS = 48  # and 50 blocks per message
_SLACK_TITLES = 3  # titles carried by a digest's plain text
SUMMARY_CHARS = 280  # two or three lines of a message
_FEMININE = ("loi", "directive", "délibération", "deliberation", "décision", "decision", "recommandation",
             "ordonnance", "circulaire", "charte", "convention")


@dataclass(frozen=True)
class ThemeView:
    name: str
    label: str
    score: float
    reason: str  # short, in the message's language
    origin: str

    @property
    def percent(self) -> int:
        return round(self.score * 100)


@dataclass(frozen=True)
class ActLink:
    label: str  # "décret n° 2025-895"
    url: str  # its official page, or the official site's search for it
    search: bool = False


@dataclass(frozen=True, eq=False)  # hashed by identity: the render cache keys on the (cached) view itself
class ItemView:
    id: str
    title: str
    url: str  # "" unless http(s)
    source: str
    date: str  # the legal date, as written in the message's language
    nature: str  # the kind of act's label in the message's language
    authority: str
    themes: tuple[ThemeView, ...]
    archive_url: str
    summary: str = ""
    sort_key: str = ""  # the ISO legal date
    also: tuple[ItemView, ...] = ()  # other sources' items on the same event, shown under this one
    acts: tuple[ActLink, ...] = ()  # the acts it names, each with its official link (watcher.legal.acts)

    def theme(self, name: str) -> ThemeView | None:
        return next((t for t in self.themes if t.name == name), None)

    def others(self, name: str) -> list[ThemeView]:
        return [t for t in self.themes if t.name != name]


SameEvent = Callable[[Sequence[Mapping[str, Any]]], list[list[Mapping[str, Any]]]]
"""Items (rows with an ``id``) in groups about the same event, in their order (``watcher.search.similar.group_same_event``
bound to the archive, given by the caller: the renderer reads no archive)."""


@dataclass(frozen=True)
class Group:
    theme: str
    items: tuple[ItemView, ...]
    label: str = ""


def short_summary(text: str, limit: int = SUMMARY_CHARS) -> str:
    """The summary cut at a word before ``limit`` characters, with '…'."""
    flat = " ".join(str(text or "").split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.") + "…"


def _summary(item: Mapping[str, Any]) -> str:
    """The item's short summary, unless it only repeats the title."""
    summary, title = short_summary(str(item.get("summary") or "")), " ".join(str(item.get("title") or "").split())
    return "" if not summary or title.startswith(summary.rstrip("…")) else summary


def _with_article(label: str) -> str:
    """'décret n° 2025-895' -> 'le décret n° 2025-895'; 'arrêté ...' -> 'l’arrêté ...'."""
    first = label.split(" ", 1)[0].lower()
    if first[:1] in "aâàeéèêiîoôuyh":
        return "l’" + label
    return ("la " if first in _FEMININE else "le ") + label


_REASON_KEYS = frozenset({"matched", "identifier", "article", "model", "source", "site", "autorité", "but",
                          "similar to", "délibération cnil", "decided by"})
_WORDS_SHOWN = 3


def _percent(score: float, lang: str) -> str:
    """0.91 -> '91 %' (French, with a narrow no-break space) or '91%'."""
    return f"{round(score * 100)}\u202f%" if lang == "fr" else f"{round(score * 100)}%"


def _folded_with_origins(text: str) -> tuple[str, list[int]]:
    """``fold(text)`` and, for each of its characters, the index of the character of ``text`` it comes from."""
    out, origins = [], []
    for index, char in enumerate(text):
        for folded in fold(char):
            out.append(folded)
            origins.append(index)
    return "".join(out), origins


def _phrase_pattern(phrase: str, acronym: bool) -> str:
    """A whole-words pattern of ``phrase``; each word may take the plural (traitement -> traitements)."""
    if acronym:
        return rf"(?<![\w-]){re.escape(phrase)}(?![\w-])"
    words = [re.escape(w[:-1] if len(w) > 3 and w[-1] in "sx" else w) + "[sx]?" for w in fold(phrase).split()]
    return r"(?<![\w-])" + r"\s+".join(words) + r"(?![\w-])"


def found_words(candidates: Sequence[str], text: str) -> list[str]:
    """The candidates (phrases) that the text contains as whole words (a plural too), written as the text writes
    them: what a lawyer sees in the item itself. A short all-capitals candidate (an acronym: SNDS) must match its
    case."""
    folded, origins = _folded_with_origins(text)
    out: list[str] = []
    for phrase in (" ".join(p.split()) for p in candidates):
        acronym = phrase.isupper() and len(phrase) <= 6
        if len(phrase) < 2:
            continue
        hit = re.search(_phrase_pattern(phrase, acronym), text if acronym else folded)
        if hit is None:
            continue
        start, end = (hit.start(), hit.end()) if acronym else (origins[hit.start()], origins[hit.end() - 1] + 1)
        words = " ".join(text[start:end].split())
        if fold(words) not in {fold(w) for w in out}:
            out.append(words)
    return out


def short_reason(reason: str, origin: str, lang: str, *, text: str = "", keywords: Sequence[str] = (),
                 score: float | None = None, publisher: str = "") -> str:
    """Why, in words a lawyer reads, in the message's language: 'cite le décret n° 2025-895', 'mots : données de
    santé, SNDS' (the words of the item itself: the rules' matched phrases and the theme's keywords that its title
    or summary contains), 'confirmé par un juriste'. The classifier's own reason ('matched: ...; identifier: ...;
    model: 0.91; decided by: ...') is read part by part; rule names, neighbours and the model's raw opinion are left
    out. When neither words of the title or summary nor a cited act explain the tag, the reader is told who
    published it (``publisher`` for a site) and the tag's score where a model gave its opinion ('évalué par le
    modèle : 91 %'): then it is what the reader has to go on. A reason in no known form is shown as it is."""
    words = LABELS[lang]
    if origin == "human":
        return words["person"]
    out: list[str] = []
    parts = [tuple(s.strip() for s in p.partition(":")[::2]) for p in (reason or "").split(";") if p.strip()]
    if parts and not any(k.lower() in _REASON_KEYS for k, _ in parts):
        return str(reason or "")
    matched: list[str] = []
    for key, value in ((k.lower(), v) for k, v in parts):
        if key in ("identifier", "article") and value:
            out.append(f"{words['cites']} {_with_article(value) if lang == 'fr' else value}")
        elif key == "matched" and value:
            matched += [alt for label in value.split(", ") for alt in re.split(r"\s*/\s*", label)]
    # the theme's keywords complete the rules' phrases (a rule's name such as "health-data acronym" is no word of
    # the item): only where the rules did match words
    seen = found_words([*matched, *keywords], text)[:_WORDS_SHOWN] if matched else []
    if seen:
        out.append(f"{words['words']}{words['colon']} {', '.join(seen)}")
    if not out:  # words found beyond the title and summary, or none: who published it, and the model's opinion
        by = [publisher or v if k.lower() == "site" else v for k, v in parts
              if k.lower() in ("site", "source", "autorité") and v][:1]
        out += [f"{words['site']}{words['colon']} {v}" for v in by]
        if score is not None and (origin == "model" or any(k.lower() == "model" for k, _ in parts)):
            out.append(f"{words['assessed']}{words['colon']} {_percent(score, lang)}")
    return words["list_sep"].join(out[:3])


def mrkdwn(value: Any) -> str:
    """Text made inert for Slack mrkdwn."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").translate(_LOOKALIKES)
    return _BROADCAST.sub("@\u200b\\1", text)


def _slack_finalize(value: Any) -> Any:
    if value is None:
        return ""
    return value if isinstance(value, Markup) else mrkdwn(value)


def slack_link(url: str, label: Any) -> Markup:
    text = mrkdwn(label)
    if not url.startswith(("https://", "http://")):
        return Markup(text)
    target = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return Markup(f"<{target}|{text}>")


def _env(autoescape: bool, finalize: Any = None) -> Environment:
    env = Environment(loader=PackageLoader("watcher.notify", "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "html.j2"]) if autoescape else False, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True, finalize=finalize, auto_reload=False)
    env.globals["link"] = slack_link
    return env


class _Lru(OrderedDict[Any, Any]):
    """A bounded cache: one run renders each (item, language) once however many digests carry it."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> Any:
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value


class Renderer:
    def __init__(self, *, public_url: str = "", timezone: str = "Europe/Paris",
                 source_labels: Mapping[str, str] | None = None, cache_size: int = 20_000,
                 themes: Sequence[tuple[str, str, str]] = (), same_event: SameEvent | None = None,
                 keywords: Mapping[str, Sequence[str]] | None = None,
                 act_url: ArchiveLookup | None = None):
        """``themes``: (id, French label, English label) in the taxonomy's order; a theme not listed sorts after
        the listed ones. ``same_event``: how a digest's items are grouped by event (None: each item is its own
        entry). ``keywords``: each theme's plain words, quoted in a reason when the item contains them."""
        self.same_event = same_event
        self.act_url = act_url  # the archive's resolver of an act to its JO / CNIL text (direct links)
        self.keywords = {k: tuple(v) for k, v in (keywords or {}).items()}
        self.theme_names = {"fr": {t[0]: t[1] for t in themes}, "en": {t[0]: t[2] for t in themes}}
        self.theme_order = {t[0]: n for n, t in enumerate(themes)}
        self.public_url = public_url.rstrip("/")
        self.tz = ZoneInfo(timezone)
        self.source_labels = dict(source_labels or {})
        self._mail = _env(autoescape=True)
        self._slack = _env(autoescape=False, finalize=_slack_finalize)
        self._views, self._fragments = _Lru(cache_size), _Lru(cache_size)

    def message(self, *, key: str, sub: Subscription, kind: str, period: str, items: Sequence[Mapping[str, Any]],
                themes: Mapping[str, Sequence[Mapping[str, Any]]], now: datetime,
                needs: Collection[str] = ("text", "html", "slack"), unsubscribe: str = "") -> Message:
        """The message in the forms ``needs`` asks for (the others are left empty). ``unsubscribe``: the link
        shown at the bottom (and, by e-mail, in the List-Unsubscribe header)."""
        labels = {**LABELS[sub.lang], "theme_names": self.theme_names[sub.lang]}
        groups = self.groups(sub, items, themes)
        words = SimpleNamespace(**labels)  # attribute lookups are Jinja's fast path
        count = sum(1 + len(v.also) for g in groups for v in g.items)  # texts, those on the same event too
        heading = self.heading(labels, kind, period, sub.lang)
        counted = f"{count} {labels['text'] if count == 1 else labels['texts']}"
        subject = self.subject(labels, kind, heading, groups, counted)
        context = {"labels": words, "sub": sub, "groups": groups, "count": count, "kind": kind, "heading": heading,
                   "counted": counted, "subject": subject,
                   "intro": sub.introduction, "unsubscribe": unsubscribe,
                   "fragment": lambda item, form, group: self.fragment(item, form, sub.lang, words, group)}
        return Message(
            key=key, subject=subject,
            text=self._mail.get_template("email.txt.j2").render(context) if "text" in needs else "",
            html=self._mail.get_template("email.html.j2").render(context) if "html" in needs else "",
            slack=self.slack(context) if "slack" in needs else {},
            person=sub.person, email=sub.email, slack_target=sub.slack, date=now, unsubscribe=unsubscribe)

    def fragment(self, item: ItemView, form: str, lang: str, labels: SimpleNamespace, group: str) -> str:
        """One item rendered for one medium (``html``, ``txt``, ``slack``) under one theme, cached for the run."""
        key = (item, form, lang, group)
        cached = self._fragments.get(key)
        if cached is not None:
            return cached
        env, name = (self._slack, "slack_item.mrkdwn.j2") if form == "slack" else (self._mail, f"item.{form}.j2")
        text = env.get_template(name).render(item=item, labels=labels, main=item.theme(group),
                                             others=item.others(group))
        return self._fragments.put(key, Markup(text) if form == "html" else text)

    def groups(self, sub: Subscription, items: Sequence[Mapping[str, Any]],
               themes: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Group]:
        """Each item once, under its first subscribed theme in taxonomy order (its other themes are shown as
        labels); themes in taxonomy order, newest items first. Items on the same event (``same_event``) make one
        entry: the earliest item's (the release a relay comments on), the others listed under it (``ItemView.also``)."""
        placed: list[tuple[str, Mapping[str, Any]]] = []
        for item in items:
            rows = themes.get(item["id"], [])
            wanted = sorted((t["theme"] for t in rows if t["theme"] in sub.themes and t["score"] >= sub.min_score),
                            key=self._theme_key)
            if wanted:
                placed.append((wanted[0], item))
            elif sub.act_keys:  # matched by a followed act, whatever its themes
                placed.append((FOLLOWED, item))
        by_theme: dict[str, list[ItemView]] = {}
        first_theme = {item["id"]: theme for theme, item in placed}
        for event in self._events([item for _, item in placed]):
            view, *also = (self.item_view(i, themes.get(i["id"], []), sub.lang) for i in sorted(event, key=_first))
            by_theme.setdefault(first_theme[view.id], []).append(replace(view, also=tuple(also)) if also else view)
        return [Group(theme, tuple(sorted(views, key=lambda v: v.sort_key, reverse=True)),
                      LABELS[sub.lang]["followed"] if theme == FOLLOWED else self.theme_label(theme, sub.lang))
                for theme, views in sorted(by_theme.items(), key=lambda kv: self._theme_key(kv[0]))]

    def _events(self, items: Sequence[Mapping[str, Any]]) -> list[Sequence[Mapping[str, Any]]]:
        """``items`` grouped by event when two or more could share one (else one group per item)."""
        if self.same_event is None or len(items) < 2:
            return [[item] for item in items]
        return list(self.same_event(items))

    def _theme_key(self, theme: str) -> tuple[int, str]:
        return self.theme_order.get(theme, 99), theme

    def item_view(self, item: Mapping[str, Any], themes: Sequence[Mapping[str, Any]], lang: str = "fr") -> ItemView:
        """The item as shown in ``lang``; built once per run (a Renderer serves one run: items do not change)."""
        view = self._views.get((item["id"], lang))
        return view if view is not None else self._views.put((item["id"], lang), self._item_view(item, themes, lang))

    def _item_view(self, item: Mapping[str, Any], themes: Sequence[Mapping[str, Any]], lang: str) -> ItemView:
        url = str(item.get("url") or "")
        archive = ""
        if self.public_url:
            from datasette.utils import tilde_encode  # Datasette's row-URL key (imported on use)

            archive = f"{self.public_url}/watcher/items/{tilde_encode(item['id'])}"
        text = f"{item.get('title') or ''}\n{item.get('summary') or ''}"
        views = tuple(ThemeView(t["theme"], self.theme_label(t["theme"], lang), float(t["score"]),
                                short_reason(str(t.get("reason") or ""), str(t.get("origin") or ""), lang, text=text,
                                             keywords=self.keywords.get(t["theme"], ()), score=float(t["score"]),
                                             publisher=self.source_labels.get(item["source"], "")),
                                str(t.get("origin") or ""))
                      for t in sorted(themes, key=lambda t: self._theme_key(t["theme"])))
        legal = item.get("legal_date") or self._date(item.get("published"))
        view = ItemView(
            id=item["id"], title=" ".join(str(item.get("title") or "").split()),
            url=url if url.startswith(("https://", "http://")) else "",
            source=self.source_labels.get(item["source"], item["source"]), date=legal_dates.spoken(legal, lang),
            nature=natures.label(str(item.get("nature") or ""), lang, str(item.get("nature_raw") or ""))
            if item.get("nature") else "",
            authority=str(item.get("authority") or ""), themes=views, archive_url=archive,
            summary=_summary(item), sort_key=str(legal or ""),
            acts=tuple(ActLink(a.label(lang), a.url or "", a.search)
                       for a in acts_shown(item, self.act_url) if (a.url or "").startswith("https://")))
        return view

    def _date(self, value: Any) -> str:
        return legal_dates.local_day(value, self.tz)

    def theme_label(self, theme: str, lang: str) -> str:
        """The theme's label in ``lang``; a theme outside the taxonomy (a test message's) gets a label too."""
        return self.theme_names[lang].get(theme) or LABELS[lang].get(f"theme_{theme}") or theme

    @staticmethod
    def heading(labels: Mapping[str, Any], kind: str, period: str, lang: str) -> str:
        """'Récapitulatif quotidien du 17 juin 2026', 'Récapitulatif depuis le 1er juin 2026', 'Nouveau texte'."""
        if not period:
            return str(labels[kind])
        joiner = labels["since_of"] if kind == "since" else labels["of"]
        return f"{labels[kind]} {joiner} {legal_dates.spoken(period, lang) or period}"

    @staticmethod
    def subject(labels: Mapping[str, Any], kind: str, heading: str, groups: Sequence[Group], counted: str) -> str:
        """'[Veille] Nouveau texte : <titre>' for one text, '[Veille] Texte modifié : <titre>' for an update,
        '[Veille] Récapitulatif … : 3 textes' for a digest."""
        if kind == "updated" and groups:
            return f"{labels['prefix']} {labels['updated']}{labels['colon']} {_cut(groups[0].items[0].title, 140)}"
        if kind == "instant" and groups:
            return f"{labels['prefix']} {heading}{labels['colon']} {_cut(groups[0].items[0].title, 140)}"
        return f"{labels['prefix']} {heading}{labels['colon']} {counted}"

    def slack(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """Block Kit, and a plain ``text`` (what notifications and previews show) that carries the first titles."""
        labels = vars(context["labels"])
        titles = [item.title for group in context["groups"] for item in group.items]
        header = f"{labels['prefix']} {context['heading']}"
        if context["kind"] == "instant":
            fallback = f"{header}{labels['colon']} {mrkdwn(_cut(titles[0], 140))}" if titles else header
        else:
            header += f"{labels['colon']} {context['counted']}"
            shown = labels["list_sep"].join(mrkdwn(_cut(t, 90)) for t in titles[:_SLACK_TITLES])
            fallback = f"{header} — {shown}{'…' if len(titles) > _SLACK_TITLES else ''}"
        blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header[:150]}}]
        counts = " · ".join(f"{mrkdwn(g.label)} {len(g.items)}" for g in context["groups"])
        if context["intro"]:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(context["intro"])[:2900]}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": counts or "-"}]})
        shown = 0
        for group in context["groups"]:
            texts = [context["fragment"](item, "slack", group.theme).strip() for item in group.items]
            sections = _pack(texts)
            if len(blocks) + 1 + len(sections) > _SLACK_BLOCKS:
                break
            blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                       "text": f"*{mrkdwn(group.label)}* ({len(texts)})"}})
            blocks.extend({"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections)
            shown += sum(1 + len(v.also) for v in group.items)
        footer = f"{labels['because']}."
        if shown < context["count"]:
            footer = f"+{context['count'] - shown} {labels['more']}. {footer}"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
        return {"text": fallback, "blocks": blocks}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _first(item: Mapping[str, Any]) -> tuple[bool, str]:
    """Sort key of an event's items: the earliest legal (else publication) date first, undated ones last."""
    day = str(item.get("legal_date") or item.get("published") or "")
    return not day, day


def _pack(texts: Sequence[str]) -> list[str]:
    """Items joined into as few sections as Slack's 3000-character limit allows."""
    sections: list[str] = []
    for text in texts:
        text = text[:_SLACK_SECTION]
        if sections and len(sections[-1]) + len(text) + 2 <= _SLACK_SECTION:
            sections[-1] += "\n\n" + text
        else:
            sections.append(text)
    return sections
