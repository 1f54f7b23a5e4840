"""Messages from the ledger's items: e-mail (text + HTML) and Slack Block Kit, French by default, English on demand.

Everything that comes from a source is escaped for its medium: HTML by Jinja2's autoescape; Slack mrkdwn by the
``finalize`` hook of the Slack environment, so no template can forget it (``&``, ``<``, ``>`` are escaped, which
also disarms ``<!channel>``, ``<!here>`` and ``<@U…>``; ``* _ ~ ` `` become look-alike characters; a bare
``@channel`` gets a zero-width space). Only http(s) URLs are ever made into links.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from watcher.config.alerts import Subscription
from watcher.notify.base import Message

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "prefix": "[Veille]", "colon": " :", "instant": "Nouveau texte", "daily": "Récapitulatif quotidien",
        "weekly": "Récapitulatif hebdomadaire", "of": "du", "texts": "texte(s)", "source": "Source",
        "date": "Date", "nature": "Nature", "themes": "Thèmes", "confidence": "confiance", "why": "pourquoi",
        "read": "Lire sur le site de la source", "archive": "Fiche dans l'archive", "unsubscribe": "Se désabonner",
        "because": "Vous recevez ce message au titre de l'abonnement", "more": "autres textes dans l'archive",
    },
    "en": {
        "prefix": "[Watch]", "colon": ":", "instant": "New text", "daily": "Daily digest", "weekly": "Weekly digest",
        "of": "of", "texts": "text(s)", "source": "Source", "date": "Date", "nature": "Kind of act",
        "themes": "Themes", "confidence": "confidence", "why": "why", "read": "Read it at the source",
        "archive": "Archive record", "unsubscribe": "Unsubscribe",
        "because": "You receive this message because of the subscription", "more": "more texts in the archive",
    },
}
_LOOKALIKES = str.maketrans({"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"})
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_SAFE_TILDE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SLACK_SECTION = 2900  # Slack allows 3000 characters per section text
_SLACK_BLOCKS = 48  # and 50 blocks per message


@dataclass(frozen=True)
class ThemeView:
    name: str
    score: float
    reason: str
    origin: str

    @property
    def percent(self) -> int:
        return round(self.score * 100)


@dataclass(frozen=True, eq=False)  # hashed by identity: the render cache keys on the (cached) view itself
class ItemView:
    id: str
    title: str
    url: str  # "" unless http(s)
    source: str
    date: str
    nature: str
    authority: str
    themes: tuple[ThemeView, ...]
    archive_url: str


@dataclass(frozen=True)
class Group:
    theme: str
    items: tuple[ItemView, ...]


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


def tilde_encode(value: str) -> str:
    """Datasette's encoding of a primary key in a row URL."""
    return "".join(chr(b) if b in _SAFE_TILDE else "+" if b == 32 else f"~{b:02X}" for b in value.encode())


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
                 themes: Sequence[tuple[str, str, str]] = ()):
        """``themes``: (id, French label, English label) in the taxonomy's order; a theme not listed shows its
        id and sorts after the listed ones."""
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
                needs: Collection[str] = ("text", "html", "slack")) -> Message:
        """The message in the forms ``needs`` asks for (the others are left empty)."""
        labels = {**LABELS[sub.lang], "theme_names": self.theme_names[sub.lang]}
        groups = self.groups(sub, items, themes)
        words = SimpleNamespace(**labels)  # attribute lookups are Jinja's fast path
        count = sum(len(g.items) for g in groups)
        subject = self.subject(labels, kind, period, groups, count)
        context = {"labels": words, "sub": sub, "groups": groups, "count": count, "kind": kind,
                   "heading": f"{labels[kind]}" + (f" {labels['of']} {period}" if period else ""),
                   "fragment": lambda item, form: self.fragment(item, form, sub.lang, words)}
        return Message(
            key=key, subject=subject,
            text=self._mail.get_template("email.txt.j2").render(context) if "text" in needs else "",
            html=self._mail.get_template("email.html.j2").render(context) if "html" in needs else "",
            slack=self.slack(context) if "slack" in needs else {},
            person=sub.person, email=sub.email, slack_target=sub.slack, date=now,
            headers={"X-Watcher-Subscription": sub.name})

    def fragment(self, item: ItemView, form: str, lang: str, labels: SimpleNamespace) -> str:
        """One item rendered for one medium (``html``, ``txt``, ``slack``), cached for the rest of the run."""
        key = (item, form, lang)
        cached = self._fragments.get(key)
        if cached is not None:
            return cached
        env, name = (self._slack, "slack_item.mrkdwn.j2") if form == "slack" else (self._mail, f"item.{form}.j2")
        text = env.get_template(name).render(item=item, labels=labels)
        return self._fragments.put(key, Markup(text) if form == "html" else text)

    def groups(self, sub: Subscription, items: Sequence[Mapping[str, Any]],
               themes: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Group]:
        """Each item under its best subscribed theme; themes in taxonomy order, newest items first."""
        by_theme: dict[str, list[ItemView]] = {}
        for item in items:
            rows = themes.get(item["id"], [])
            wanted = [t for t in rows if t["theme"] in sub.themes and t["score"] >= sub.min_score]
            if not wanted:
                continue
            best = max(wanted, key=lambda t: (t["score"], t["theme"]))
            by_theme.setdefault(best["theme"], []).append(self.item_view(item, rows))
        return [Group(theme, tuple(sorted(views, key=lambda v: v.date, reverse=True)))
                for theme, views in sorted(by_theme.items(), key=lambda kv: (self.theme_order.get(kv[0], 99), kv[0]))]

    def item_view(self, item: Mapping[str, Any], themes: Sequence[Mapping[str, Any]]) -> ItemView:
        """The item as shown; built once per run (a Renderer serves one run: items do not change within it)."""
        view = self._views.get(item["id"])
        return view if view is not None else self._views.put(item["id"], self._item_view(item, themes))

    def _item_view(self, item: Mapping[str, Any], themes: Sequence[Mapping[str, Any]]) -> ItemView:
        url = str(item.get("url") or "")
        archive = f"{self.public_url}/watcher/items/{tilde_encode(item['id'])}" if self.public_url else ""
        return ItemView(
            id=item["id"], title=" ".join(str(item.get("title") or "").split()),
            url=url if url.startswith(("https://", "http://")) else "",
            source=self.source_labels.get(item["source"], item["source"]), date=self._date(item.get("published")),
            nature=str(item.get("nature") or ""), authority=str(item.get("authority") or ""),
            themes=tuple(ThemeView(t["theme"], float(t["score"]), str(t.get("reason") or ""),
                                   str(t.get("origin") or "")) for t in themes),
            archive_url=archive)

    def _date(self, value: Any) -> str:
        if not value:
            return ""
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(self.tz).date().isoformat()
        except ValueError:
            return str(value)[:10]

    @staticmethod
    def subject(labels: Mapping[str, Any], kind: str, period: str, groups: Sequence[Group], count: int) -> str:
        if kind == "instant" and groups:
            title = groups[0].items[0].title
            title = title if len(title) <= 140 else title[:139] + "…"
            theme = labels.get("theme_names", {}).get(groups[0].theme, groups[0].theme)
            return f"{labels['prefix']} {theme}{labels['colon']} {title}"
        return f"{labels['prefix']} {labels[kind]} {labels['of']} {period}{labels['colon']} {count} {labels['texts']}"

    def slack(self, context: Mapping[str, Any]) -> dict[str, Any]:
        labels = vars(context["labels"])
        fallback = f"{labels['prefix']} {context['heading']}{labels['colon']} {context['count']} {labels['texts']}"
        blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": fallback[:150]}}]
        shown = 0
        for group in context["groups"]:
            texts = [context["fragment"](item, "slack").strip() for item in group.items]
            sections = _pack(texts)
            if len(blocks) + 1 + len(sections) > _SLACK_BLOCKS:
                break
            blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                       "text": f"*{mrkdwn(labels['theme_names'].get(group.theme, group.theme))}* "
                                                               f"({len(texts)})"}})
            blocks.extend({"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections)
            shown += len(texts)
        footer = f"{labels['because']} « {mrkdwn(context['sub'].name)} »."
        if shown < context["count"]:
            footer = f"+{context['count'] - shown} {labels['more']}. {footer}"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
        return {"text": fallback, "blocks": blocks}


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
