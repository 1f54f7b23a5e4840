"""An issue as it is e-mailed, previewed, exported and archived: one HTML and one Markdown rendering of the kept
entries (the Markdown is also the e-mail's text part). The editor's preview is this very rendering.

Everything from a source or an editor is escaped for its medium: HTML by Jinja2's autoescape, Markdown by the
``md`` filter (link and emphasis characters backslashed). Only http(s) URLs become links.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from watcher.legal import legal_dates, natures
from watcher.notify.render import tilde_encode

WORDS: dict[str, dict[str, str]] = {
    "fr": {"week": "Semaine du", "text": "texte", "texts": "textes", "read": "Lire le texte",
           "archive": "Fiche dans l'archive",
           "unsubscribe": "Se désabonner", "footer": "Lettre préparée par l'équipe de veille à partir de l'archive."},
    "en": {"week": "Week of", "text": "text", "texts": "texts", "read": "Read the text", "archive": "Archive record",
           "unsubscribe": "Unsubscribe", "footer": "Prepared by the legal watch team from the archive."},
}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


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
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value or "").split()))


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
        url = str(row.get("url") or "")
        archive = f"{self.public_url}/watcher/items/{tilde_encode(row['item_id'])}" if self.public_url else ""
        code = str(row.get("nature") or "")
        return EntryView(id=row["item_id"], title=" ".join(str(row.get("title") or "").split()),
                         url=url if url.startswith(("https://", "http://")) else "",
                         source=self.source_labels.get(row["source"], row["source"]),
                         date=legal_dates.spoken(str(row.get("legal_date") or "") or self._date(row.get("published")),
                                                 self.lang),
                         nature=natures.label(code, self.lang, str(row.get("nature_raw") or "")) if code else "",
                         abstract=str(row.get("abstract") or "").strip(),
                         archive_url=archive)

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
            blocks.append(context["introduction"])
        for group in context["groups"]:
            blocks.append(f"## {md(group.label)}")
            for entry in group.entries:
                title = f"[{md(entry.title)}]({entry.url})" if entry.url else md(entry.title)
                meta = " · ".join(md(x) for x in (entry.source, entry.date, entry.nature) if x)
                blocks.extend([f"### {title}", meta])
                if entry.abstract:
                    blocks.append(entry.abstract)
                if entry.archive_url:
                    blocks.append(f"[{words['archive']}]({entry.archive_url})")
        footer = words["footer"] + (f" [{words['unsubscribe']}]({context['unsubscribe_url']})"
                                    if context["unsubscribe_url"] else "")
        blocks.extend(["---", footer])
        return "\n\n".join(blocks) + "\n"

    def _date(self, value: Any) -> str:
        return legal_dates.local_day(value, self.tz)
