"""The html listing kind on the real Health Data Hub listing (selectors as in sources.toml), and its pagination."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.config.sources import SourceConfig
from watcher.models import SourceState
from watcher.sources.html_listing import HtmlListingSource, decode_html
from watcher.util.errors import ConfigError, ParseError

FIXTURES = Path(__file__).parent / "fixtures"
HDH_PAGE0 = FIXTURES / "health_data_hub" / "hdh_listing_bibliotheque-algorithmes_page0.html"
HDH_URL = "https://www.health-data-hub.fr/bibliotheque-ouverte-algorithmes-sante"
HDH_ITEM = "https://www.health-data-hub.fr/bibliotheque-ouverte-algorithmes-sante/"

# the same selectors as the health-data-hub source of sources.toml
HDH_SELECTORS = {
    "item_selector": "div.liste-projets__projet-container",
    "title_selector": ".liste-projets__projet-title h3",
    "link_selector": ".liste-projets__projet-title a",
    "summary_selector": ".taxonomie",
    "next_selector": "li.pager__item--next a[rel=next]",
}


def listing(url: str = HDH_URL, name: str = "health-data-hub", **options) -> HtmlListingSource:
    return HtmlListingSource(SourceConfig(name=name, kind="html", url=url, publisher="Health Data Hub",
                                          options={**HDH_SELECTORS, **options}))


def test_health_data_hub_listing_page0():
    items = listing(nature="algorithme").parse(HDH_PAGE0.read_bytes(), url=HDH_URL)
    assert len(items) == 10
    first = items[0]
    assert first.id == "health-data-hub:" + HDH_ITEM + "ehden-persephone"
    assert (first.title, first.url) == ("EHDEN / Persephone", HDH_ITEM + "ehden-persephone")
    assert first.summary.startswith("Auteurs\nPlateforme de données\n\nObjectifs de l’algorithme\n")
    assert "SQL" in first.summary
    assert (first.authority, first.nature, first.published) == ("Health Data Hub", "algorithme", None)
    assert [i.title for i in items[1:4]] == [
        "Prise en charge des allergies aux pollens dans la région Normandie",
        "Indicateurs sur le statut d’ayant droit entre 2012 et 2020.",
        "Magic Loop",
    ]
    assert items[-1].url == HDH_ITEM + "requete-type-de-selection-dald-exonerantes-actives-une-annee"
    assert items[-1].title == "Requête-type de sélection d’ALD exonérantes actives une année civile donnée."


def test_health_data_hub_next_page_is_resolved_against_the_page():
    assert listing().next_page(HDH_PAGE0.read_bytes(), url=HDH_URL) == HDH_URL + "?page=1"
    assert listing(next_selector="a.nothing-here").next_page(HDH_PAGE0.read_bytes(), url=HDH_URL) is None


def test_a_listing_whose_items_vanished_is_a_parse_error():
    with pytest.raises(ParseError) as caught:
        listing(item_selector="article.post").parse(HDH_PAGE0.read_bytes(), url=HDH_URL)
    assert caught.value.source == "health-data-hub" and "article.post" in str(caught.value)


BLOG = """<html><head><meta charset="windows-1252"></head><body>
<article class="post"><h2 class="entry-title"><a href="/sante/hds-2026/">H\xe9bergement <em>HDS</em> 2026</a></h2>
  <time class="entry-date" datetime="2026-03-26T09:30:00+01:00">26 mars 2026</time>
  <div class="excerpt"><p>Le d\xe9cret du 24 mars 2026.</p></div></article>
<article class="post"><h2 class="entry-title"><a href="https://autre.example/ia/">IA et sant\xe9</a></h2>
  <time class="entry-date">1er juillet 2026</time></article>
<article class="post"><h2 class="entry-title">Sans lien</h2><span class="d">12/06/2026</span></article>
<article class="post"></article>
</body></html>""".encode("cp1252")
BLOG_SELECTORS = {"item_selector": "article.post", "title_selector": ".entry-title", "link_selector": ".entry-title a",
                  "date_selector": "time.entry-date", "summary_selector": ".excerpt"}


def blog(**options) -> HtmlListingSource:
    return HtmlListingSource(SourceConfig(name="firm", kind="html", url="https://cabinet.example/actualites/",
                                          options={**BLOG_SELECTORS, **options}))


def test_dates_links_and_encoding_of_a_theme_listing():
    first, second, third = blog().parse(BLOG, url="https://cabinet.example/actualites/")
    assert (first.title, first.url) == ("Hébergement HDS 2026", "https://cabinet.example/sante/hds-2026/")
    assert first.published == datetime(2026, 3, 25, 23, tzinfo=UTC)  # the text "26 mars 2026", midnight in Paris
    assert first.summary == "Le décret du 24 mars 2026."
    assert second.published == datetime(2026, 6, 30, 22, tzinfo=UTC)  # "1er juillet 2026"
    assert (second.url, second.summary) == ("https://autre.example/ia/", "")
    assert (third.title, third.url, third.id.startswith("firm:title-")) == ("Sans lien", "", True)


def test_date_attribute_and_formats():
    source = blog(date_attribute="datetime")
    assert source.parse(BLOG, url="https://cabinet.example/")[0].published == datetime(2026, 3, 26, 8, 30, tzinfo=UTC)
    assert source.parse(BLOG, url="https://cabinet.example/")[1].published is None  # no such attribute
    assert blog(date_format="fr").read_date("Publié le 12 juin 2026") == datetime(2026, 6, 11, 22, tzinfo=UTC)
    assert blog(date_format="%d/%m/%Y").read_date("12/06/2026") == datetime(2026, 6, 11, 22, tzinfo=UTC)
    assert blog(date_format="%d/%m/%Y").read_date("juin 2026") is None
    dated = blog(date_selector="span.d", date_format="%d/%m/%Y").parse(BLOG, url="https://cabinet.example/")
    assert dated[2].published == datetime(2026, 6, 11, 22, tzinfo=UTC)


@pytest.mark.parametrize("options", [{"max_pages": 0}, {"max_pages": "3"}, {"title_selector": 3}])
def test_bad_options_are_config_errors(options):
    with pytest.raises(ConfigError):
        blog(**options)


def test_decode_html():
    assert decode_html("é".encode()) == "é"
    assert decode_html(b'<meta charset="iso-8859-1"><p>\xe9') == '<meta charset="iso-8859-1"><p>é'
    assert decode_html(b"<p>\x92</p>") == "<p>’</p>"


# --- collect: first page conditional, then next_selector up to max_pages -----------------------------------------

PAGE = """<html><body><div class="liste-projets__projet-container"><div class="liste-projets__projet-title">
<a href="/bibliotheque-ouverte-algorithmes-sante/{slug}"><h3>{title}</h3></a></div></div>
<ul><li class="pager__item--next"><a rel="next" href="?page={next}">suivant</a></li></ul></body></html>"""


def test_collect_follows_pages_up_to_max_pages(replay_server, http_client):
    replay_server.add(HDH_URL, body=HDH_PAGE0.read_bytes(), headers={"content-type": "text/html; charset=UTF-8",
                                                                    "etag": '"p0"'})
    replay_server.add(HDH_URL + "?page=1", body=PAGE.format(slug="eds-nlp", title="EDS-NLP", next=2).encode(),
                      headers={"content-type": "text/html"})
    replay_server.add(HDH_URL + "?page=2", body=PAGE.format(slug="p2", title="Page 2", next=3).encode(),
                      headers={"content-type": "text/html"})
    collected = listing(max_pages=2).collect(http_client(), SourceState("health-data-hub"))
    assert collected.requests == 2 and collected.etag == '"p0"'
    assert len(collected.items) == 11
    assert collected.items[-1].url == HDH_ITEM + "eds-nlp"
    assert replay_server.count(HDH_URL + "?page=2") == 0


def test_collect_not_modified_fetches_nothing_more(replay_server, http_client):
    replay_server.add(HDH_URL, body=HDH_PAGE0.read_bytes(), headers={"content-type": "text/html", "etag": '"p0"'})
    collected = listing().collect(http_client(), SourceState("health-data-hub", etag='"p0"'))
    assert (collected.not_modified, collected.items, collected.requests) == (True, [], 1)
    assert replay_server.count(HDH_URL + "?page=1") == 0


def test_collect_stops_on_a_page_that_links_to_itself(replay_server, http_client):
    replay_server.add(HDH_URL, body=PAGE.format(slug="a", title="A", next=1).encode(),
                      headers={"content-type": "text/html"})
    replay_server.add(HDH_URL + "?page=1", body=PAGE.format(slug="b", title="B", next=1).encode(),
                      headers={"content-type": "text/html"})
    collected = listing(max_pages=5).collect(http_client(), SourceState("health-data-hub"))
    assert [i.title for i in collected.items] == ["A", "B"] and collected.requests == 2


def test_a_failing_later_page_keeps_the_first_pages_items(replay_server, http_client):
    replay_server.add(HDH_URL, body=HDH_PAGE0.read_bytes(), headers={"content-type": "text/html", "etag": '"p0"'})
    replay_server.add(HDH_URL + "?page=1", status=404)
    collected = listing(max_pages=3).collect(http_client(), SourceState("health-data-hub"))
    assert len(collected.items) == 10 and collected.requests == 2
    assert collected.warnings and "stopped at page 2" in collected.warnings[0] and "404" in collected.warnings[0]
    assert collected.etag is None, "an incomplete listing must be read again next time, not answered by a 304"
