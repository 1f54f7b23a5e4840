"""Kind ``html``: a listing page without a feed, read with CSS selectors kept in ``sources.toml``.

``item_selector`` picks one node per item; inside it ``title_selector``, ``link_selector`` (an ``<a href>`` or a
node holding one), and optionally ``date_selector`` (its text, or ``date_attribute`` such as ``datetime``, read
with ``date_format``: a ``strptime`` format, ``fr`` for "12 juin 2026", or nothing for ISO / RFC 822 / French)
and ``summary_selector``. Relative links are resolved against the page URL.

``collect`` fetches the first page with a conditional GET (304 = nothing new), then follows ``next_selector`` up to
``max_pages`` pages in all. A page where ``item_selector`` matches nothing is a ``ParseError``: on a listing it
means the layout changed, not that it was a quiet day.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from selectolax.lexbor import LexborHTMLParser, LexborNode

from watcher.config.sources import SourceConfig
from watcher.legal.normalize import (
    canonical_url,
    html_to_text,
    parse_date,
    parse_french_date,
    stable_id,
    to_utc,
)
from watcher.models import Collected, Item, SourceState
from watcher.sources.base import SourceKind, unchanged
from watcher.util.errors import ConfigError, ParseError, SourceError

if TYPE_CHECKING:
    from watcher.http import HttpClient, Response

_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w-]+)""", re.I)
DEFAULT_MAX_PAGES = 3


def decode_html(content: bytes) -> str:
    """UTF-8 (with or without BOM), else the charset a <meta> declares, else Windows-1252."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    declared = _META_CHARSET.search(content[:4096])
    for encoding in ((declared.group(1).decode("ascii"),) if declared else ()) + ("cp1252",):
        try:
            return content.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return content.decode("cp1252", errors="replace")


def _text(node: LexborNode | None) -> str:
    """Visible text of a node on one line."""
    return " ".join(html_to_text(node.html or "").split()) if node is not None else ""


def _href(node: LexborNode | None) -> str:
    if node is None:
        return ""
    href = node.attributes.get("href")
    if href is None:
        inner = node.css_first("a[href]")
        href = inner.attributes.get("href") if inner is not None else None
    return (href or "").strip()


class HtmlListingSource(SourceKind):
    kind: ClassVar[str] = "html"
    expects: ClassVar[str] = "html"
    required: ClassVar[dict[str, str]] = {
        "item_selector": "CSS selector of one item of the listing (e.g. 'article.post')",
        "title_selector": "CSS selector of the title, inside an item",
        "link_selector": "CSS selector of the link (an <a href> or a node holding one), inside an item",
    }
    optional: ClassVar[dict[str, str]] = {
        "date_selector": "CSS selector of the date, inside an item",
        "date_attribute": "read the date from this attribute of date_selector (e.g. 'datetime') instead of its text",
        "date_format": "strptime format of the date, or 'fr' for French dates like '12 juin 2026' "
        "(default: ISO 8601, RFC 822 or French, whichever fits)",
        "summary_selector": "CSS selector of a teaser, inside an item",
        "next_selector": "CSS selector of the link to the next page (pagination)",
        "max_pages": f"pages read per run when next_selector is set (default {DEFAULT_MAX_PAGES})",
        "nature": "kind of publication given to every item",
    }

    def __init__(self, config: SourceConfig):
        super().__init__(config)
        for key in (*self.required, *self.optional):
            value = config.option(key)
            if value is not None and key != "max_pages" and not isinstance(value, str):
                raise ConfigError("must be a string", table=f"[[source]] ({self.name})", key=key)
        self.max_pages = self._max_pages(config.option("max_pages", DEFAULT_MAX_PAGES))

    def _max_pages(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError("must be a positive integer", table=f"[[source]] ({self.name})", key="max_pages")
        return value

    def _opt(self, key: str) -> str:
        return str(self.config.option(key) or "")

    def parse(self, content: bytes, *, url: str) -> list[Item]:
        return self._items(LexborHTMLParser(decode_html(content)), url)

    def next_page(self, content: bytes, *, url: str) -> str | None:
        """Absolute URL of the next page, or None (no ``next_selector``, or the last page)."""
        selector = self._opt("next_selector")
        if not selector:
            return None
        href = _href(LexborHTMLParser(decode_html(content)).css_first(selector))
        return canonical_url(href, url) if href else None

    def _items(self, tree: LexborHTMLParser, url: str) -> list[Item]:
        nodes = tree.css(self._opt("item_selector"))
        if not nodes:
            raise ParseError(self.name, f"item_selector {self._opt('item_selector')!r} matched nothing on the "
                             "page: its layout may have changed", url=url)
        items: dict[str, Item] = {}
        for node in nodes:
            item = self._item(node, url)
            if item is not None:
                items.setdefault(item.id, item)
        return list(items.values())

    def _item(self, node: LexborNode, base: str) -> Item | None:
        title = _text(node.css_first(self._opt("title_selector")))
        href = _href(node.css_first(self._opt("link_selector")))
        link = canonical_url(href, base) if href else ""
        if not title and not link:
            return None
        summary_selector = self._opt("summary_selector")
        teaser = node.css_first(summary_selector) if summary_selector else None
        summary = html_to_text(teaser.html or "") if teaser is not None else ""
        return Item(
            id=stable_id(self.name, url=link, title=title), source=self.name, url=link, title=title or link,
            summary=summary, published=self._date(node), lang=self.config.lang, nature=self._opt("nature"),
            authority=self.config.publisher,
        )

    def _date(self, node: LexborNode) -> datetime | None:
        selector = self._opt("date_selector")
        found = node.css_first(selector) if selector else None
        if found is None:
            return None
        attribute = self._opt("date_attribute")
        raw = (found.attributes.get(attribute) or "") if attribute else _text(found)
        return self.read_date(raw)

    def read_date(self, raw: str) -> datetime | None:
        fmt = self._opt("date_format")
        if fmt == "fr":
            return parse_french_date(raw)
        if not fmt:
            return parse_date(raw)
        try:
            return to_utc(datetime.strptime(raw.strip(), fmt))
        except ValueError:
            return None

    def collect(self, http: HttpClient, state: SourceState) -> Collected:
        """First page conditional (304 = nothing new), then up to ``max_pages - 1`` more via ``next_selector``."""
        first = self.conditional_get(http, state)
        if first.not_modified:
            return unchanged(state)
        items = {i.id: i for i in self.parse(first.content, url=first.url)}
        requests, warnings = self._follow(http, first, items)
        # a later page that fails keeps the items already read; the conditional state is not remembered then,
        # so the next run reads the whole listing again instead of getting a 304
        complete = not warnings
        return Collected(list(items.values()), etag=first.etag if complete else None,
                         last_modified=first.last_modified if complete else None, cursor=state.cursor,
                         requests=requests, warnings=tuple(warnings))

    def _follow(self, http: HttpClient, first: Response, items: dict[str, Item]) -> tuple[int, list[str]]:
        seen, requests = {canonical_url(first.url)}, 1
        next_url = self.next_page(first.content, url=first.url)
        while next_url and next_url not in seen and requests < self.max_pages:
            seen.add(next_url)
            requests += 1
            try:
                page = http.get(next_url, source=self.name, expect=self.expects)
                page_items = self.parse(page.content, url=page.url)
            except SourceError as exc:
                return requests, [f"stopped at page {requests} ({next_url}): {exc.reason}"]
            for item in page_items:
                items.setdefault(item.id, item)
            next_url = self.next_page(page.content, url=page.url)
        return requests, []


__all__ = ["HtmlListingSource", "decode_html"]
