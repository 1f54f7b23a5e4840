"""Kind ``wordpress``: a law firm's WordPress blog, read from its RSS feed (``<site>/feed/`` by default).

On top of the feed kind it:

* removes the sentence Yoast SEO appends to the description and the content ("L'article <a>TITLE</a> est apparu
  en premier sur <a>SITE</a>.", straight or curly apostrophe; the English "The post ... appeared first on ...");
* uses the GUID's post number as the native id (``https://site/?p=12137`` → ``<source>:p=12137``), which survives
  a change of slug or of domain;
* keeps the title as summary when nothing is left of the excerpt (the page itself is not fetched here);
* looks for legal identifiers (décret n°, loi n°, CELEX...) in the excerpt as well as in the title.

Links lose their ``utm_*`` parameters through ``canonical_url``; categories become tags as in the feed kind.
"""

from __future__ import annotations

import re
from typing import ClassVar

from watcher.legal.normalize import html_to_text
from watcher.sources.feed import Entry, FeedSource, teaser

_APOSTROPHE = r"(?:'|’|&#8217;|&#x2019;|&rsquo;|&#039;|&#39;|&apos;)"
_YOAST_HTML = re.compile(
    rf"(?:<p>\s*)?(?:L{_APOSTROPHE}\s?article|The post)\s*<a\b[^>]*>[^<]*</a>\s*"
    r"(?:est apparu en premier sur|appeared first on)\s*<a\b[^>]*>[^<]*</a>\s*\.?\s*(?:</p>)?",
    re.I,
)
_YOAST_LINE = re.compile(
    r"(?:^|\n)[ \t]*(?:L['’]\s?article|The post)\s[^\n]*?(?:est apparu en premier sur|appeared first on)[^\n]*$",
    re.I,
)
_YOAST_WORDS = ("apparu en premier sur", "appeared first on")
_MORE = re.compile(r"\s*(?:\[(?:…|\.\.\.)\]|\[&hellip;\])\s*$")
_POST_ID = re.compile(r"[?&]p=(\d+)\b")


def strip_yoast(html: str) -> str:
    """The HTML without Yoast's "L'article ... est apparu en premier sur ..." paragraph."""
    if not html or not any(w in html for w in _YOAST_WORDS):
        return html
    return _YOAST_HTML.sub("", html)


def strip_yoast_text(text: str, title: str = "") -> str:
    """The same, on plain text (feeds whose description was already flattened): the sentence naming ``title``,
    else a last line shaped like it."""
    if not text or not any(w in text for w in _YOAST_WORDS):
        return text
    if title:
        exact = re.compile(rf"\s*(?:L['’]\s?article|The post)\s+{re.escape(title)}\s+"
                           r"(?:est apparu en premier sur|appeared first on)\s[^\n]*$", re.I)
        text, count = exact.subn("", text)
        if count:
            return text.strip()
    return _YOAST_LINE.sub("", text).strip()


class WordPressSource(FeedSource):
    kind: ClassVar[str] = "wordpress"
    optional: ClassVar[dict[str, str]] = {
        "feed_url": "the RSS feed, if not <url>/feed/ (e.g. a category feed <url>/category/<slug>/feed/)",
        "nature": "kind of publication given to every item (default 'article')",
        "max_items": FeedSource.optional["max_items"],
        "keep_categories": FeedSource.optional["keep_categories"],
    }
    default_nature: ClassVar[str] = "article"
    cited_in_summary: ClassVar[bool] = True  # a commentary names the act it discusses in its excerpt

    @property
    def feed_url(self) -> str:
        configured = self.config.option("feed_url")
        return str(configured) if configured else self.config.url.rstrip("/") + "/feed/"

    def native_id(self, entry: Entry, link: str) -> str:
        match = _POST_ID.search(entry.guid)
        return f"p={match.group(1)}" if match else super().native_id(entry, link)

    def texts(self, entry: Entry, title: str) -> tuple[str, str]:
        summary = strip_yoast_text(html_to_text(strip_yoast(entry.summary)), title)
        text = strip_yoast_text(html_to_text(strip_yoast(entry.content)), title)
        return _MORE.sub(" …", summary).strip(), text

    def summary_of(self, title: str, summary: str, text: str) -> str:
        return summary or teaser(text) or title


__all__ = ["WordPressSource", "strip_yoast", "strip_yoast_text"]
