"""Parsing faults keep data honest. Every hostile body here is made at run time from a real capture (cut short,
re-encoded, put in a namespace, given a broken GUID...), so what is tested is real feed content."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import feedparser
import pytest

from store import Store
from watcher.config import SourceConfig, load_config
from watcher.legal.normalize import canonical_url
from watcher.models import Item
from watcher.pipeline import ingest
from watcher.sources.feed import FeedSource, ParsedFeed

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures"
CNIL_500 = (FIX / "cnil/bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml").read_bytes()
CNIL_6 = (FIX / "cnil/bmeret_cnil_feed_scraped-actualite_6items_2026-06-16.xml").read_bytes()
ATOM = (FIX / "jorf/legifrss_atom_deliberation_cnil_2021-03.xml").read_bytes()
URL = "https://cnil.fr/fr/rss.xml"


def read(body: bytes) -> ParsedFeed:
    return FeedSource(SourceConfig(name="cnil", kind="feed", url=URL)).read(body, url=URL)


def fields(items: list[Item]) -> list[tuple[str, str, str, str, str]]:
    return [(i.id, i.url, i.title, i.summary, str(i.published)) for i in items]


def test_a_truncated_feed_keeps_only_its_complete_entries() -> None:
    whole = read(CNIL_500).items
    cut = CNIL_500[: int(len(CNIL_500) * 0.6)]  # somewhere inside an entry, as a dropped connection leaves it
    parsed = read(cut)
    complete = cut.count(b"</item>")
    assert len(parsed.items) == complete and 0 < complete < 500
    assert fields(parsed.items) == fields(whole[:complete]), "each kept entry is whole: summary and date included"
    (warning,) = parsed.warnings
    assert warning.startswith("feed is truncated, not well-formed XML") and f"kept its {complete} complete" in warning


def test_a_truncated_feed_is_stored_honestly_and_the_source_shows_degraded(
        tmp_path: Path, replay_server, http_client) -> None:  # type: ignore[no-untyped-def]
    source = SourceConfig(name="cnil", kind="feed", url="https://cnil.example/rss.xml")
    replay_server.add(source.url, body=CNIL_500[:200_000], headers={"content-type": "application/rss+xml"})
    (tmp_path / "sources.toml").write_text(f'[[source]]\nname = "cnil"\nkind = "feed"\nurl = "{source.url}"\n')
    store = Store(tmp_path / "w.db")
    from datetime import UTC, datetime

    (report,) = ingest(load_config(tmp_path / "sources.toml"), store, http_client(), datetime(2026, 8, 19, tzinfo=UTC),
                       [source])
    assert report.outcome == "degraded" and report.new == CNIL_500[:200_000].count(b"</item>")
    (health,) = store.sources_health()
    assert health["last_outcome"] == "degraded" and "truncated" in health["last_warning"]
    stored = store.items([f"cnil:{i.url}" for i in read(CNIL_500).items[: report.new]])
    assert all(row["summary"] and row["published"] for row in stored)


def _undeclared_windows_1252(body: bytes) -> bytes:
    text = re.sub(r"<\?xml[^>]*\?>", '<?xml version="1.0"?>', body.decode("utf-8"), count=1)
    return text.encode("cp1252", errors="xmlcharrefreplace")


def test_a_windows_1252_feed_without_declaration_keeps_its_punctuation() -> None:
    whole = read(CNIL_500)
    parsed = read(_undeclared_windows_1252(CNIL_500))
    assert sum("…" in i.summary for i in whole.items) == 464
    assert fields(parsed.items) == fields(whole.items), "every title and summary as in the UTF-8 original"
    assert parsed.warnings == ("feed bytes are not all valid UTF-8 (no encoding declared); the invalid ones were "
                               "read as windows-1252",)


def test_a_c1_apostrophe_from_the_real_demoronize_capture() -> None:
    parsed = read((FIX / "misc/feedparser_demoronize_cp1252_bytes.xml").read_bytes())
    assert [i.summary or i.title for i in parsed.items] == ["don’t"]


def test_one_bad_entry_is_skipped_with_a_warning_never_the_whole_feed() -> None:
    link = b"https://cnil.fr/fr/nomination-jean-michel-fietier"
    body = CNIL_6.replace(b"<link>" + link, b"<link>http://[bad", 1).replace(b'">' + link, b'">http://[bad', 1)
    parsed = read(body)
    assert fields(parsed.items) == fields(read(CNIL_6).items[1:])
    (warning,) = parsed.warnings
    assert warning.startswith("entry 1 ('Nomination de Jean-Michel FIETIER") and "Invalid IPv6 URL" in warning


def test_entries_with_a_title_but_no_link_are_kept_with_an_id_from_title_and_date() -> None:
    body = re.sub(rb"\s*<(link|guid)[^>]*>https://cnil.fr/[^<]*</\1>", b"", CNIL_6)
    again = body.replace(b"Tue, 16 Jun 2026 16:17:46", b"Wed, 17 Jun 2026 09:00:00", 1)
    first, second = read(body).items, read(again).items
    assert len(first) == 6 and all(i.id.startswith("cnil:title-") and not i.url for i in first)
    assert [i.title for i in first] == [i.title for i in read(CNIL_6).items]
    assert first[0].id != second[0].id and [i.id for i in first[1:]] == [i.id for i in second[1:]]


def test_rss_2_in_a_default_namespace_is_read_not_a_silent_zero() -> None:
    body = CNIL_6.replace(b'<rss version="2.0">', b'<rss version="2.0" xmlns="http://backend.userland.com/rss2">')
    assert fields(read(body).items) == fields(read(CNIL_6).items)


def test_atom_0_3_is_read() -> None:
    body = ATOM.replace(b"http://www.w3.org/2005/Atom", b"http://purl.org/atom/ns#").replace(
        b"<feed ", b'<feed version="0.3" ').replace(b"published>", b"issued>").replace(b"updated>", b"modified>")
    atom1, atom03 = read(ATOM).items, read(body).items
    assert len(atom03) == len(atom1) > 0
    assert [(i.url, i.title, i.published) for i in atom03] == [(i.url, i.title, i.published) for i in atom1]


def test_xml_that_is_no_feed_is_still_an_error() -> None:
    from watcher.util.errors import ParseError

    with pytest.raises(ParseError, match=r"XML but not an RSS/Atom feed \(root element <sitemapindex>\)"):
        read(b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             b"<sitemap><loc>https://a.example/s.xml</loc></sitemap></sitemapindex>")


FEEDS = sorted(p for p in FIX.rglob("*.xml") if b"<item" in p.read_bytes()[:200_000] or b"<entry" in
               p.read_bytes()[:200_000])


@pytest.mark.parametrize("path", FEEDS, ids=[p.name for p in FEEDS])
def test_the_fast_path_agrees_with_feedparser_on_every_recorded_feed(path: Path) -> None:
    """Same entries, same links and same dates as feedparser reads them (dates to the second, in UTC)."""
    body = path.read_bytes()
    ours = FeedSource(SourceConfig(name="x", kind="feed", url=URL)).read(body, url=URL).items
    unique: dict[str, Any] = {}
    for e in feedparser.parse(body).entries:  # feeds that repeat an entry: watcher keeps the first of each, in
        unique.setdefault(e.get("id") or e.get("link") or e.get("title"), e)  # the order of first appearance
    theirs = list(unique.values())
    assert len(ours) == len(theirs)
    for item, entry in zip(ours, theirs, strict=True):
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        if stamp and item.published:
            assert item.published.utctimetuple()[:6] == tuple(stamp[:6]), (item.title, entry.get("published"))
        if entry.get("link") and item.url:
            assert item.url == canonical_url(entry["link"], URL)
