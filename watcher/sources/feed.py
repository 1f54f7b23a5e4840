"""Kind ``feed``: RSS 2.0, Atom 1.0 and RSS 1.0 (RDF) feeds.

Two readers produce the same ``Entry`` records, and one function turns entries into ``Item``s:

* fast path: a strict parse with ``defusedxml.ElementTree`` (no entity expansion, no external entities, no
  network), then direct field extraction. It honours the XML declaration and a BOM. A document that declares
  entities (a billion-laughs bomb, an external entity) is rejected with ``ParseError``, never expanded.
* when the bytes are not well-formed XML, in this order (each time the run carries a warning saying what was done,
  and the source is recorded degraded):
  - bytes that are not valid in the declared encoding (UTF-8 when none is declared) are read as windows-1252,
    the encoding such feeds nearly always are in (its curly quotes and ``…`` kept), then parsed strictly;
  - a document cut short (every byte well-formed, the end missing) keeps only its complete entries;
  - anything else (a bare ``&``, a broken tag in the middle) goes to ``feedparser`` (lenient).
* ``feedparser`` also reads any well-formed dialect or namespace the fast path does not know (Atom 0.3, RSS 2.0
  in a default namespace...), and a well-formed document where the fast path found no entry but ``item`` or
  ``entry`` elements exist.

One entry that cannot be made into an item (e.g. a GUID ``http://[bad``) is skipped with a warning; the others
are kept. A body that is not a feed at all (an HTML page, JSON, an empty body, XML that feedparser cannot read
either) is a ``ParseError`` naming the source; a well-formed feed with zero entries is a quiet day, not an error.
"""

from __future__ import annotations

import codecs
import logging
import re
from calendar import timegm
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, cast
from xml.etree.ElementTree import Element, XMLPullParser, tostring
from xml.etree.ElementTree import ParseError as XMLSyntaxError

from defusedxml import DefusedXmlException

import watcher.util.xmlsafe as SafeET
from watcher.config.sources import SourceConfig
from watcher.legal import identifiers as ids
from watcher.legal.normalize import canonical_url, iso, parse_date, stable_id
from watcher.models import Collected, Item, SourceState
from watcher.sources.base import SourceKind, unchanged
from watcher.util.errors import ConfigError, ParseError
from watcher.util.text import clean_text, html_to_text, teaser

if TYPE_CHECKING:
    from watcher.http import HttpClient

log = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
RDF_ABOUT = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

_CELEX = re.compile(r"CELEX(?::|%3A)\s*([0-9CE]\d{4}[A-Z]{1,2}\d{1,4}(?:\(\d{1,2}\))?)", re.I)
_JORFTEXT = re.compile(r"JORFTEXT\d{12}")
_DIGIT = re.compile(r"\d")
_BARE_ID = re.compile(r"(?:JORFTEXT\d{12}|CELEX:\S+)")  # a title that is only an identifier (legifrss RSS 2.0)
_RSS_FIELDS = frozenset(
    {"title", "link", "guid", "description", "encoded", "pubDate", "date", "published", "updated", "creator", "author"}
)
_NS_PREFIX = re.compile(r"<(/?)[A-Za-z][\w.-]*:")
_XMLNS = re.compile(r'\s+xmlns(?::[\w.-]+)?="[^"]*"')


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry as the feed writes it, before normalisation; the same shape whichever reader made it."""

    guid: str = ""
    link: str = ""
    title: str = ""  # text or HTML
    summary: str = ""  # HTML (RSS description, Atom summary)
    content: str = ""  # HTML (content:encoded, Atom content)
    published: datetime | None = None
    categories: tuple[str, ...] = ()
    author: str = ""
    lang: str = ""


@dataclass(frozen=True, slots=True)
class RawFeed:
    entries: list[Entry]
    lang: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What one feed body gave: the items and any warning about how it had to be read."""

    items: list[Item]
    warnings: tuple[str, ...] = field(default=())


# --- reading bytes into entries -------------------------------------------------------------------------------


def read_feed(content: bytes, *, source: str, url: str) -> RawFeed:
    """Entries of an RSS / Atom / RDF body: strict and fast when well-formed, lenient (feedparser) otherwise."""
    _sniff(content, source=source, url=url)
    try:
        root = SafeET.fromstring(content)
    except DefusedXmlException as exc:
        raise ParseError(source, f"feed rejected: it declares entities or a DTD feature ({type(exc).__name__})",
                         url=url) from None
    except XMLSyntaxError as exc:
        return _repaired(content, source=source, url=url, reason=str(exc))
    return _strict(root, content, source=source, url=url)


def _strict(root: Element, content: bytes, *, source: str, url: str) -> RawFeed:
    """The fast path's reading, or feedparser's when the fast path does not know the dialect or namespace, or
    found no entry in a document that has some."""
    feed = _fast(root)
    if feed is None:
        return _lenient(content, source=source, url=url,
                        not_a_feed=f"XML but not an RSS/Atom feed (root element <{_local(root.tag)}>)")
    if not feed.entries and any(_local(el.tag) in ("item", "entry") for el in root.iter()):
        return _lenient(content, source=source, url=url, not_a_feed="")
    return feed


def _repaired(content: bytes, *, source: str, url: str, reason: str) -> RawFeed:
    """A body that is not well-formed XML, read as honestly as it can be (see the module docstring)."""
    transcoded = _as_windows_1252(content)
    if transcoded is not None:
        content, declared = transcoded
        try:
            root = SafeET.fromstring(content)
        except XMLSyntaxError as exc:
            reason = f"{exc}, after reading the bytes as windows-1252"
        else:
            feed = _strict(root, content, source=source, url=url)
            return _warned(feed, source, f"feed bytes are not all valid {declared}; the invalid ones were read "
                                         "as windows-1252")
    complete = None if SafeET.has_dtd(content) else _complete_entries(content)
    if complete is not None:
        return _warned(RawFeed(complete), source, f"feed is truncated, not well-formed XML ({reason}); kept its "
                                                   f"{len(complete)} complete entries, dropped the cut one")
    feed = _lenient(content, source=source, url=url, not_a_feed=f"not an RSS/Atom feed (XML error: {reason})")
    return _warned(feed, source, f"feed is not well-formed XML ({reason}); read leniently with feedparser")


def _warned(feed: RawFeed, source: str, warning: str) -> RawFeed:
    log.warning("[%s] %s", source, warning)
    return RawFeed(feed.entries, lang=feed.lang, warnings=(warning, *feed.warnings))


# what a real UTF-8 feed in a European language has and a windows-1252 one never shows by accident: Latin letters
# with accents, general punctuation (’ “ ” …), the euro sign
_PLAUSIBLE = re.compile("[\u00c0-\u024f\u2010-\u2027\u20ac]")
_DECLARED = re.compile(rb"""^(\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _as_windows_1252(content: bytes) -> tuple[bytes, str] | None:
    """(UTF-8 bytes, what was wrong) of a body whose bytes are not all valid in its declared encoding (UTF-8 when
    none is declared): the valid sequences read in that encoding (a valid "été" stays "été"), each invalid byte as
    windows-1252 (the encoding such feeds nearly always are in, or mix in: ``’`` ``…`` ``é``; its five unassigned
    bytes as latin-1); a UTF-8 body with no valid accented letter or punctuation at all is a windows-1252 document
    and is read as one. None when every byte is valid (the XML error is something else)."""
    if not content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") or b"\x00" in content[:4096]:
        return None  # not text markup at all (binary, UTF-16): no encoding repair makes it a feed
    declared = _DECLARED.match(content)
    encoding = declared.group(2).decode("ascii").lower() if declared else "utf-8"
    try:
        content.decode(encoding)
        return None
    except LookupError:
        encoding = "utf-8"  # an encoding Python does not know: UTF-8 with windows-1252 bytes is the best guess
    except UnicodeDecodeError:
        pass
    text = content.decode(encoding, errors=_windows_1252_bytes())
    if encoding in ("utf-8", "utf8") and not _PLAUSIBLE.search(content.decode(encoding, errors="ignore")):
        # not one valid UTF-8 letter or punctuation mark: a windows-1252 document, whose "é »" (E9 A0 BB) can happen
        # to be a valid UTF-8 sequence (a CJK character), so it is read as windows-1252 whole
        text = content.decode("windows-1252", errors=_windows_1252_bytes())
    if declared:
        text = text.replace(declared.group(2).decode("ascii"), "utf-8", 1)
    return text.encode("utf-8"), f"{encoding.upper()}{'' if declared else ' (no encoding declared)'}"



def _windows_1252_bytes() -> str:
    """The name of a codec error handler reading each undecodable byte as windows-1252 (registered once)."""
    name = "watcher-windows-1252"
    try:
        codecs.lookup_error(name)
    except LookupError:
        codecs.register_error(name, _read_as_windows_1252)
    return name


def _read_as_windows_1252(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in bad), error.end


def _complete_entries(content: bytes) -> list[Entry] | None:
    """The entries of a document cut short, those whose end tag arrived; None when the document is broken
    before its end (not a truncation). Only for documents without a DTD (``SafeET.has_dtd`` checked)."""
    parser: XMLPullParser[Element] = XMLPullParser(events=("end",))
    try:
        parser.feed(content)
    except XMLSyntaxError:
        return None
    events = cast(Iterator[tuple[str, Element]], parser.read_events())  # "end" events only: (event, element)
    ended = [el for _, el in events if _local(el.tag) in ("item", "entry")]
    entries = [_rss_entry(el) if _local(el.tag) == "item" else _atom_entry(el) for el in ended]
    try:
        parser.close()
    except XMLSyntaxError:
        return entries
    return None


def _sniff(content: bytes, *, source: str, url: str) -> None:
    head = content[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        raise ParseError(source, "empty body where a feed was expected", url=url)
    if head[:1] in (b"{", b"["):
        raise ParseError(source, "the body is JSON, not an RSS/Atom feed", url=url)
    if head.startswith((b"<!doctype html", b"<html")):
        raise ParseError(source, "the body is an HTML page, not an RSS/Atom feed (moved feed? bot wall?)", url=url)


def _fast(root: Element) -> RawFeed | None:
    """RSS 2.0 / 0.9x (no namespace), Atom 1.0, RSS 1.0 (RDF); None for any other root element."""
    name = root.tag.rsplit("}", 1)[-1]
    if name == "rss":
        channel = root.find("channel")
        scope = root if channel is None else channel
        return RawFeed([_rss_entry(el) for el in scope.iterfind("item")], lang=_child_text(scope, "language"))
    if root.tag == f"{ATOM}feed":
        lang = root.get(XML_LANG, "")
        return RawFeed([_atom_entry(el) for el in root.iterfind(f"{ATOM}entry")], lang=lang)
    if name == "RDF":
        items = [el for el in root if el.tag.endswith("}item") or el.tag == "item"]
        channel = next((el for el in root if el.tag.endswith("channel")), None)
        lang = _child_text(channel, "language") if channel is not None else ""
        return RawFeed([_rss_entry(el) for el in items], lang=lang)
    return None


@lru_cache(maxsize=1024)
def _local(tag: str) -> str:
    """``{namespace}name`` -> ``name``: the same few tags repeat in every entry, so each is split once."""
    return tag.rsplit("}", 1)[-1]


def _child_text(parent: Element, local: str) -> str:
    for child in parent:
        if _local(child.tag) == local:
            return (child.text or "").strip()
    return ""


def _inner(el: Element) -> str:
    """Text of an element; its markup when it holds child elements (unescaped XHTML inside RSS/Atom)."""
    if len(el) == 0:
        return el.text or ""
    parts = [el.text or ""] + [tostring(child, encoding="unicode") for child in el]
    return _XMLNS.sub("", _NS_PREFIX.sub(r"<\1", "".join(parts)))


_CATEGORY = "category"


@lru_cache(maxsize=1024)
def _rss_role(tag: str) -> str | None:
    """What a child of an RSS item is for: ``_CATEGORY``, the name of an ``Entry`` source field, or None
    (ignored). Namespaces are ignored on purpose: dc:date, content:encoded, dc:subject... Decided once per tag."""
    local = _local(tag)
    if local in ("category", "subject", "theme"):  # <theme>: CNIL site tags in the bmeret feed
        return _CATEGORY
    if local == "link" and tag.startswith(ATOM):
        return None  # atom:link rel=self inside RSS
    return local if local in _RSS_FIELDS else None


def _rss_entry(item: Element) -> Entry:
    """RSS 2.0 / 0.9x / 1.0 item."""
    f: dict[str, str] = {}
    categories: list[str] = []
    for child in item:
        role = _rss_role(child.tag)
        if role is None or role in f:
            continue
        if role == _CATEGORY:
            if child.text and child.text.strip():
                categories.append(child.text)
        else:
            f[role] = (child.text or "") if len(child) == 0 else _inner(child)  # (inlined common case of _inner)
    date = f.get("pubDate") or f.get("date") or f.get("published") or f.get("updated")
    return Entry(
        guid=f.get("guid", "") or item.get(RDF_ABOUT, ""), link=f.get("link", ""), title=f.get("title", ""),
        summary=f.get("description", ""), content=f.get("encoded", ""), published=parse_date(date),
        categories=tuple(categories), author=f.get("creator") or f.get("author", ""),
    )


def _atom_entry(entry: Element) -> Entry:
    f: dict[str, str] = {}
    categories: list[str] = []
    link = ""
    for child in entry:
        local = _local(child.tag)
        if local == "link":
            if not link and child.get("rel", "alternate") == "alternate":
                link = child.get("href", "")
        elif local == "category":
            term = child.get("label") or child.get("term")
            if term:
                categories.append(term)
        elif local == "author":
            f.setdefault("author", _child_text(child, "name"))
        elif local not in f:
            f[local] = _inner(child)
    return Entry(
        guid=f.get("id", ""), link=link, title=f.get("title", ""), summary=f.get("summary", ""),
        content=f.get("content", ""), published=parse_date(f.get("published") or f.get("updated")),
        categories=tuple(categories), author=f.get("author", ""), lang=entry.get(XML_LANG, ""),
    )


def _lenient(content: bytes, *, source: str, url: str, not_a_feed: str) -> RawFeed:
    """feedparser's reading. The body is given as XML (``application/xml``: its own declaration says the
    encoding; without a media type feedparser would fall back to iso-8859-1, turning windows-1252's ``…`` into
    a control character). ``not_a_feed``: the ``ParseError`` when feedparser finds no feed either ("" = none)."""
    import feedparser  # only for unusual feeds: most runs never need it, and its import is slow

    parsed: Any = feedparser.parse(content, response_headers={"content-location": url,
                                                              "content-type": "application/xml"})
    if not_a_feed and not parsed.get("version") and not parsed.entries:
        raise ParseError(source, not_a_feed, url=url)
    entries = [_feedparser_entry(e) for e in parsed.entries]
    return RawFeed(entries, lang=str(parsed.feed.get("language", "")))


def _feedparser_entry(e: Any) -> Entry:
    contents = e.get("content") or []
    content = contents[0].get("value", "") if contents else ""
    summary = e.get("summary", "")
    categories = [t.get("term") or t.get("label") or "" for t in e.get("tags", [])]
    if e.get("theme"):
        categories.append(e["theme"])
    raw_date = e.get("published") or e.get("updated") or ""
    published = parse_date(raw_date)
    stamp = e.get("published_parsed") or e.get("updated_parsed")
    if published is None and stamp:
        published = datetime.fromtimestamp(timegm(stamp), UTC)
    return Entry(
        guid=e.get("id", ""), link=e.get("link", ""), title=e.get("title", ""),
        summary="" if summary == content else summary, content=content, published=published,
        categories=tuple(c for c in categories if c), author=e.get("author", ""),
    )


# --- entries into items ------------------------------------------------------------------------------------------


def identifiers_in(title: str, *links: str) -> dict[str, str]:
    """Legal identifiers an entry shows: everything ``watcher.legal.identifiers`` finds in the title (CELEX, NOR,
    JORFTEXT, décret / loi numbers...), plus a CELEX number or a JORFTEXT id written in its links."""
    found = ids.first_by_scheme(title) if _DIGIT.search(title) else {}
    joined = " ".join(links)
    if "celex" not in found and "celex" in joined.lower() and (
            celex := _CELEX.search(joined)) is not None:
        found["celex"] = celex.group(1).upper()
    if "jorftext" not in found and "JORFTEXT" in joined and (jorftext := _JORFTEXT.search(joined)) is not None:
        found["jorftext"] = jorftext.group(0)
    return found


class FeedSource(SourceKind):
    kind: ClassVar[str] = "feed"
    expects: ClassVar[str] = "feed"
    required: ClassVar[dict[str, str]] = {}
    optional: ClassVar[dict[str, str]] = {
        "nature": "kind of publication given to every item, e.g. 'actualite', 'information de securite'",
        "max_items": "keep only the first N entries of the feed (default: all)",
        "keep_categories": "true (default) keeps the feed's categories as tags, false drops them, "
        "a list keeps only those categories",
    }
    default_nature: ClassVar[str] = ""
    cited_in_summary: ClassVar[bool] = False  # also look for legal identifiers in the summary (slower)

    def __init__(self, config: SourceConfig):
        super().__init__(config)
        self.max_items = self._max_items(config.option("max_items"))
        self.keep_categories = self._keep_categories(config.option("keep_categories", True))
        self.nature = str(config.option("nature", self.default_nature))

    def _max_items(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError("must be a positive integer", table=f"[[source]] ({self.name})", key="max_items")
        return value

    def _keep_categories(self, value: Any) -> bool | frozenset[str]:
        if isinstance(value, bool):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return frozenset(clean_text(v).casefold() for v in value)
        raise ConfigError("must be true, false or a list of category names", table=f"[[source]] ({self.name})",
                          key="keep_categories")

    @property
    def feed_url(self) -> str:
        return self.config.url

    def parse(self, content: bytes, *, url: str) -> list[Item]:
        return self.read(content, url=url).items

    def read(self, content: bytes, *, url: str) -> ParsedFeed:
        """``parse`` plus the warnings (e.g. 'read leniently'): pure, no network."""
        raw = read_feed(content, source=self.name, url=url)
        entries = raw.entries[: self.max_items] if self.max_items else raw.entries
        skipped: list[str] = []
        items = list(_unique(self._item_or_skip(n, e, url, skipped) for n, e in enumerate(entries, 1)))
        return ParsedFeed(items, (*raw.warnings, *skipped))

    def _item_or_skip(self, number: int, entry: Entry, base: str, skipped: list[str]) -> Item | None:
        """One entry's item; an entry that cannot be read (a malformed URL...) is skipped and said, not fatal."""
        try:
            return self.item(entry, base=base)
        except ValueError as exc:
            warning = f"entry {number} ({clean_text(entry.title)[:60] or entry.guid[:60]!r}) skipped: {exc}"
            log.warning("[%s] %s", self.name, warning)
            skipped.append(warning)
            return None

    def collect(self, http: HttpClient, state: SourceState) -> Collected:
        """One conditional GET of the feed URL; 304 means nothing to do; parse warnings travel with the run."""
        response = self.conditional_get(http, state, self.feed_url)
        if response.not_modified:
            return unchanged(state)
        parsed = self.read(response.content, url=response.url)
        return Collected(parsed.items, etag=response.etag, last_modified=response.last_modified,
                         cursor=state.cursor, requests=1, warnings=parsed.warnings)

    # hooks a feed-based kind (wordpress) may refine

    def native_id(self, entry: Entry, link: str) -> str:
        """What the feed says the entry is: its GUID / Atom id (canonical when it is a URL), else nothing.
        ``link`` is the entry's canonical link, reused when the GUID is that same URL."""
        guid = entry.guid.strip()
        if not guid.startswith(("http://", "https://")):
            return guid
        return link if guid == entry.link.strip() else canonical_url(guid)

    def texts(self, entry: Entry, title: str) -> tuple[str, str]:
        """(summary, text) as plain text, from the entry's description and content."""
        return html_to_text(entry.summary), html_to_text(entry.content)

    def item(self, entry: Entry, *, base: str) -> Item | None:
        """One entry as an Item; None when it carries nothing to identify it (no title, link or GUID)."""
        link = canonical_url(entry.link, base) if entry.link.strip() else ""
        guid = entry.guid.strip()
        if not link and guid.startswith(("http://", "https://")):
            link = canonical_url(guid)
        title = html_to_text(entry.title)
        summary, text = self.texts(entry, title)
        if summary and _BARE_ID.fullmatch(title):
            title = summary  # legifrss RSS 2.0: the title is the JORFTEXT id, the description is the title
        if not title and not link and not guid and not summary:
            return None
        if summary == title:
            summary = ""  # feeds that repeat the title as description (CNIL 6-item feed, legifrss RSS 2.0)
        native = self.native_id(entry, link)
        return Item(
            id=stable_id(self.name, native=native, url=link,
                         title=None if native or link else _dated(title or summary, entry.published)),
            source=self.name, url=link, title=title or teaser(summary or text, 140) or link,
            summary=self.summary_of(title, summary, text), text=text, published=entry.published,
            lang=self._lang(entry.lang), nature=self.nature,
            authority=self.config.publisher or clean_text(entry.author),
            identifiers=identifiers_in(f"{title}\n{summary}" if self.cited_in_summary else title, link, guid),
            tags=self._tags(entry.categories),
            extra={"author": clean_text(entry.author)} if entry.author else {},
        )

    def summary_of(self, title: str, summary: str, text: str) -> str:
        return summary or teaser(text)

    def _lang(self, declared: str) -> str:
        primary = declared[:2].lower()
        return primary if primary in ("fr", "en") else self.config.lang

    def _tags(self, categories: Iterable[str]) -> tuple[str, ...]:
        if self.keep_categories is False:
            return ()
        tags = dict.fromkeys(t for t in (_clean_category(c) for c in categories) if t)
        if isinstance(self.keep_categories, frozenset):
            return tuple(t for t in tags if t.casefold() in self.keep_categories)
        return tuple(tags)


def _dated(title: str, published: datetime | None) -> str:
    """What identifies an entry with neither GUID nor link: its title and its date (the same title on two dates,
    e.g. a weekly "Communiqué de presse", is two items)."""
    return f"{title}\n{iso(published)}" if published else title


@lru_cache(maxsize=4096)
def _clean_category(category: str) -> str:
    """Categories repeat from one entry to the next: clean each spelling once."""
    return clean_text(category)


def _unique(items: Iterable[Item | None]) -> Iterator[Item]:
    """Items in feed order, the first of each id only (feeds sometimes repeat an entry)."""
    seen: set[str] = set()
    for item in items:
        if item is not None and item.id not in seen:
            seen.add(item.id)
            yield item


__all__ = ["Entry", "FeedSource", "ParsedFeed", "RawFeed", "identifiers_in", "read_feed", "teaser"]
