"""An issue as it is e-mailed, previewed, exported and archived: one HTML and one Markdown rendering of the kept
entries (the Markdown is also the e-mail's text part). The editor's preview is this very rendering.

Everything from a source or an editor is text, escaped for its medium: HTML by Jinja2's autoescape, Markdown by
``md`` (every character that could open a link, an image, raw HTML, code or emphasis is backslashed, and a bare
``https://`` or ``www.`` is broken so that a GFM renderer does not make it a link). Only an item's own http(s) URL
becomes a link, percent-encoded by ``safe_url`` so that it cannot close the link and open another
(``https://example.org/x)[cliquez ici](javascript:...)`` stays one link to example.org). Whatever renders the
Markdown, it holds no link or image that was not one in the item, and no HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import nh3
from datasette.utils import tilde_encode
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from watcher.legal import legal_dates, natures
from watcher.legal.acts import acts_shown

WORDS: dict[str, dict[str, str]] = {
    "fr": {"week": "Semaine du", "text": "texte", "texts": "textes", "read": "Lire le texte",
           "archive": "Fiche dans l'archive",
           "unsubscribe": "Se désabonner", "footer": "Lettre préparée par l'équipe de veille à partir de l'archive."},
    "en": {"week": "Week of", "text": "text", "texts": "texts", "read": "Read the text", "archive": "Archive record",
           "unsubscribe": "Unsubscribe", "footer": "Prepared by the legal watch team from the archive."},
}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#|!~])")
# https://x, www.x, a@b.c: what GFM makes a link by itself; one backslash splits it (and shows nothing)
_MD_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(:)(?=//)|(?<=\bwww)(\.)|(?<=\w)(@)(?=[\w-]+\.)")
_MD_LINE_START = re.compile(r"^(?:([-+=])|(\d+)(\.))")  # a list, a rule or a setext heading, as text
# characters kept as they are in a link's URL; every other one is percent-encoded (parentheses, brackets, quotes,
# angle brackets, backslash, backtick, spaces, controls: what could end a Markdown link or an HTML attribute)
_URL_SAFE = "-._~:/?#@!$&*+,;=%"


@dataclass(frozen=True)
class EntryView:
    id: str
    title: str
    url: str
    source: str
    date: str
    nature: str
    abstract: str
    archive_url: str
    acts: tuple[tuple[str, str], ...] = ()  # (label, official URL) of the acts it names (watcher.legal.acts)


@dataclass(frozen=True)
class GroupView:
    theme: str
    label: str
    entries: tuple[EntryView, ...]


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    markdown: str


def md(value: Any) -> str:
    """One line of text as inert Markdown: whitespace folded, link/image/HTML/code/emphasis characters escaped."""
    text = _MD_SPECIAL.sub(r"\\\1", " ".join(str(value or "").split()))
    text = _MD_AUTOLINK.sub(lambda m: "\\" + m.group(0), text)
    return _MD_LINE_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\.", text)


def md_paragraphs(value: Any) -> str:
    """An editor's text (paragraphs separated by a blank line) as inert Markdown, paragraph by paragraph."""
    paragraphs = re.split(r"\n\s*\n", str(value or "").strip())
    return "\n\n".join(md(p) for p in paragraphs if p.strip())


def safe_url(value: Any) -> str:
    """``value`` if it is an http(s) URL, percent-encoded so that it stays one URL in Markdown and HTML; else ""."""
    url = str(value or "").strip()
    if not url.lower().startswith(("https://", "http://")):
        return ""
    return quote(url, safe=_URL_SAFE)


# what the e-mailed issue (issue.html.j2) is made of; anything else in an archived issue is removed when it is shown
_ISSUE_TAGS = {"div", "h1", "h2", "h3", "p", "a", "hr", "br", "strong", "em", "ul", "ol", "li"}
_ISSUE_ATTRIBUTES = {"*": {"style", "class", "data-item", "lang"}, "a": {"href"}}
_ISSUE_BODY = re.compile(r"<body([^>]*)>(.*)</body>", re.S | re.I)


def sanitize_issue_html(html: str) -> str:
    """An archived issue's HTML cleaned by nh3 (the Ammonia sanitiser) before a browser shows it: only the tags and
    attributes the issue template writes, links to http(s) and mailto only, no script, no event handler. The issue
    renderer already escapes every text; this holds for any issue in the archive, whoever or whatever wrote it."""
    body = _ISSUE_BODY.search(html)  # the body becomes a div, to keep its style
    cleaned = nh3.clean(f"<div{body[1]}>{body[2]}</div>" if body else html, tags=_ISSUE_TAGS, attributes=_ISSUE_ATTRIBUTES,
                        url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer")
    return f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{cleaned}</body></html>'


class IssueRenderer:
    """Renders issues with the theme and source labels of the configuration."""

    def __init__(self, *, lang: str, public_url: str, timezone: str, theme_labels: Mapping[str, str],
                 source_labels: Mapping[str, str]):
        self.lang, self.words = lang, WORDS[lang]
        self.public_url = public_url.rstrip("/")
        self.tz = ZoneInfo(timezone)
        self.theme_labels, self.source_labels = dict(theme_labels), dict(source_labels)
        self.env = Environment(loader=PackageLoader("watcher.newsletter", "templates"), undefined=StrictUndefined,
                               autoescape=select_autoescape(["html.j2"]), trim_blocks=True, lstrip_blocks=True,
                               keep_trailing_newline=True)

    def groups(self, entries: Sequence[Mapping[str, Any]]) -> list[GroupView]:
        """Kept entries, grouped by theme in the draft's order."""
        groups: dict[str, list[EntryView]] = {}
        for entry in entries:
            if entry["kept"]:
                groups.setdefault(entry["theme"], []).append(self.entry(entry))
        return [GroupView(theme, self.theme_labels.get(theme, theme), tuple(views)) for theme, views in groups.items()]

    def entry(self, row: Mapping[str, Any]) -> EntryView:
        url = safe_url(row.get("url"))
        archive = f"{self.public_url}/watcher/items/{tilde_encode(row['item_id'])}" if self.public_url else ""
        code = str(row.get("nature") or "")
        return EntryView(id=row["item_id"], title=" ".join(str(row.get("title") or "").split()),
                         url=url,
                         source=self.source_labels.get(row["source"], row["source"]),
                         date=legal_dates.spoken(str(row.get("legal_date") or "") or self._date(row.get("published")),
                                                 self.lang),
                         nature=natures.label(code, self.lang, str(row.get("nature_raw") or "")) if code else "",
                         abstract=str(row.get("abstract") or "").strip(),
                         archive_url=archive,
                         acts=tuple((a.label(self.lang), a.url or "") for a in acts_shown(
                             {**row, "id": row["item_id"]}) if (a.url or "").startswith("https://")))

    def subject(self, draft: Mapping[str, Any]) -> str:
        """'Lettre santé — semaine du 20 juillet 2026' (the week's Monday, a day of the archive's time zone)."""
        return f"{draft['title']} — {self.week(draft)[0].lower()}{self.week(draft)[1:]}"

    def week(self, draft: Mapping[str, Any]) -> str:
        """'Semaine du 20 juillet 2026' / 'Week of 20 July 2026'; the ISO week label when the draft has no start."""
        monday = self._date(draft.get("period_start")) if draft.get("period_start") else ""
        return f"{self.words['week']} {legal_dates.spoken(monday, self.lang) if monday else draft['week']}"

    def render(self, draft: Mapping[str, Any], entries: Sequence[Mapping[str, Any]], *,
               unsubscribe_url: str = "") -> Rendered:
        groups = self.groups(entries)
        subject = self.subject(draft)
        context = {"lang": self.lang, "words": self.words, "title": draft["title"], "week": self.week(draft),
                   "subject": subject, "introduction": str(draft.get("introduction") or "").strip(),
                   "groups": groups, "count": sum(len(g.entries) for g in groups), "unsubscribe_url": unsubscribe_url}
        return Rendered(subject=subject, html=self.env.get_template("issue.html.j2").render(context),
                        markdown=self.markdown(context))

    def markdown(self, context: Mapping[str, Any]) -> str:
        words = self.words
        count = f"{context['count']} {words['text'] if context['count'] == 1 else words['texts']}"
        blocks = [f"# {md(context['title'])}", f"{context['week']} · {count}"]
        if context["introduction"]:
            blocks.append(md_paragraphs(context["introduction"]))
        for group in context["groups"]:
            blocks.append(f"## {md(group.label)}")
            for entry in group.entries:
                title = f"[{md(entry.title)}]({entry.url})" if entry.url else md(entry.title)
                meta = " · ".join(md(x) for x in (entry.source, entry.date, entry.nature) if x)
                blocks.extend([f"### {title}", meta])
                if entry.abstract:
                    blocks.append(md_paragraphs(entry.abstract))
                if entry.acts:
                    blocks.append(" · ".join(f"[{md(label)}]({url})" for label, url in entry.acts))
                if entry.archive_url:
                    blocks.append(f"[{words['archive']}]({entry.archive_url})")
        footer = words["footer"] + (f" [{words['unsubscribe']}]({context['unsubscribe_url']})"
                                    if context["unsubscribe_url"] else "")
        blocks.extend(["---", footer])
        return "\n\n".join(blocks) + "\n"

    def _date(self, value: Any) -> str:
        return legal_dates.local_day(value, self.tz)
