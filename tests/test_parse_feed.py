"""The feed kind (and the wordpress kind built on it) on recorded real files and on reconstructed ones.

Every case asserts extracted values (ids, titles, dates, links, identifiers), not only counts. Hostile and broken
documents are written here, in the test, so that what they contain is visible.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.config.sources import SourceConfig
from watcher.sources.feed import FeedSource, read_feed
from watcher.util.errors import ConfigError, ParseError

FIXTURES = Path(__file__).parent / "fixtures"
CNIL_500 = FIXTURES / "cnil" / "bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml"
CNIL_6 = FIXTURES / "cnil" / "bmeret_cnil_feed_scraped-actualite_6items_2026-06-16.xml"
JORF = FIXTURES / "jorf"
MISC = FIXTURES / "misc"
FEED_URL = "https://www.cnil.fr/fr/rss.xml"


def feed(name: str = "cnil", url: str = FEED_URL, publisher: str = "CNIL", lang: str = "fr", **options) -> FeedSource:
    return FeedSource(SourceConfig(name=name, kind="feed", url=url, publisher=publisher, lang=lang, options=options))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- real files --------------------------------------------------------------------------------------------------


def test_cnil_500_items_first_and_last():
    items = feed(nature="actualite").parse(CNIL_500.read_bytes(), url=FEED_URL)
    assert len(items) == 500
    first, last = items[0], items[-1]
    assert first.id == "cnil:https://cnil.fr/fr/le-refus-de-credit-en-questions"
    assert first.title == "Le refus de crédit en questions"
    assert first.url == "https://cnil.fr/fr/le-refus-de-credit-en-questions"
    assert first.published == utc(2026, 8, 19)
    assert first.summary.startswith("Vous avez demandé un crédit et on vous l’a refusé ?")
    assert first.tags == ("Autre", "Particulier", "Crédit", "Banques")  # <category> then the <theme> elements
    assert (first.authority, first.nature, first.lang) == ("CNIL", "actualite", "fr")
    assert last.id == "cnil:https://cnil.fr/fr/privacy-research-day-retrouvez-levenement-en-video"
    assert last.title == "Privacy Research Day : retrouvez l'évènement en vidéo"
    assert last.published == utc(2022, 6, 29)
    assert last.tags[0] == "Droits & Libertés"  # &amp; decoded once
    assert len({i.id for i in items}) == 500
    assert all(i.published is not None and i.url.startswith("https://cnil.fr/fr/") for i in items)


def test_cnil_second_item_title_keeps_typographic_apostrophe():
    items = feed().parse(CNIL_500.read_bytes(), url=FEED_URL)
    assert items[1].title == "Piratage du système d’information des impôts : les vérifications sont en cours"
    assert items[1].url == "https://cnil.fr/fr/piratage-du-systeme-dinformation-des-impots-les-verifications-sont-en-cours"


def test_cnil_6_items_description_repeating_the_title_is_not_a_summary():
    items = feed().parse(CNIL_6.read_bytes(), url=FEED_URL)
    assert [i.url.rsplit("/", 1)[-1] for i in items] == [
        "nomination-jean-michel-fietier", "webinaire-pixels-de-suivi-recommandations-cnil",
        "le-cepd-rencontre-le-commissaire-europeen-mcgrath-et-adopte-un-modele-commun-de-notification-des",
        "communication-electronique-quelles-regles", "privacy-research-day-2026", "donnees-sante-sanction-5-millions-iqvia",
    ]
    iqvia = items[-1]
    assert iqvia.title == "Données de santé : sanction de 5 millions d’euros à l’encontre de la société IQVIA"
    assert iqvia.summary == ""
    assert iqvia.published == utc(2026, 6, 16, 16, 17, 46)


def test_legifrss_atom_escaped_html_content_becomes_text():
    items = feed("legifrss", url="https://legifrss.org/latest", publisher="").parse(
        (JORF / "legifrss_atom_small_ined_2021-02-26.xml").read_bytes(), url="https://legifrss.org/latest")
    assert len(items) == 1  # the file repeats the same entry twice
    item = items[0]
    assert item.id == "legifrss:https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000042709588"
    assert item.title.startswith("Arrêté du 18 décembre 2020 autorisant au titre de l'année 2021 l'ouverture")
    assert item.identifiers == {"jorftext": "JORFTEXT000042709588", "arrete": "2020-12-18"}
    assert item.published == utc(2020, 12, 22)  # 2020-12-22T01:00:00+01:00
    assert item.authority == "Institut national d'études démographiques"  # Atom author when no publisher set
    assert "<" not in item.text and "&#39;" not in item.text
    assert "Par arrêté de la directrice de l'Institut national d'études démographiques" in item.text
    assert "web de l'INED ( https://www.ined.fr) jusqu'au 20 janvier 2021" in item.text
    assert item.summary.endswith("…") and len(item.summary) <= 501


def test_legifrss_atom_with_empty_content():
    items = feed("legifrss", publisher="DILA").parse(
        (JORF / "legifrss_atom_decret_sante_2021-03.xml").read_bytes(), url="https://legifrss.org/latest")
    assert len(items) == 13  # 50 <entry>, 13 distinct ids
    first = items[0]
    assert first.title.startswith("Décret n° 2021-215 du 24 février 2021 relatif à la délivrance des produits")
    assert (first.summary, first.text) == ("", "")
    assert first.url == "https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000043185019"
    assert first.identifiers["jorftext"] == "JORFTEXT000043185019"
    assert first.published == utc(2021, 2, 26)


def test_legifrss_atom_cnil_deliberations():
    items = feed("legifrss").parse((JORF / "legifrss_atom_deliberation_cnil_2021-03.xml").read_bytes(),
                                   url="https://legifrss.org/latest")
    first = items[0]
    assert first.identifiers == {"jorftext": "JORFTEXT000043149483", "deliberation": "2021-001"}
    assert first.title.startswith("Délibération n° 2021-001 du 7 janvier 2021 portant avis sur un projet de décret")
    assert "« FL@sh EVENT »" in first.title
    assert "La Commission nationale de l'informatique et des libertés (ci-après la « Commission »)" in first.text


def test_legifrss_rss2_title_is_the_jorftext_id():
    items = feed("legifrss").parse((JORF / "legifrss_rss2_exampleoutput_2020-12-05.xml").read_bytes(),
                                   url="https://legifrss.org/latest")
    assert len(items) == 109
    first = items[0]
    assert first.title.startswith("Arrêté du 1er décembre 2020 instituant une commission chargée de donner des avis")
    assert first.identifiers == {"jorftext": "JORFTEXT000042612877", "arrete": "2020-12-01"}
    assert first.id == "legifrss:https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000042612877"
    assert first.published is None  # the items carry no date: None, not a crash
    assert items[-1].title == "Demandes de changement de nom (Accès protégé textes 109 à 140)"


# --- broken and hostile bodies --------------------------------------------------------------------------------------


def test_bozo_invalid_bytes_are_read_as_windows_1252_with_a_warning():
    parsed = feed().read((MISC / "feedparser_bozo_linenoise_invalid_bytes.xml").read_bytes(), url=FEED_URL)
    # valid UTF-8 ’ and ” kept, the one stray byte (0xA9) read as windows-1252 ©; feedparser gives 'â€™â€\x9dŠ'
    assert [i.summary for i in parsed.items] == ["’<>”©"]
    assert parsed.warnings == ("feed bytes are not all valid UTF-8; the invalid ones were read as windows-1252",)


def test_c1_control_for_a_cp1252_apostrophe_is_repaired():
    parsed = feed().read((MISC / "feedparser_demoronize_cp1252_bytes.xml").read_bytes(), url=FEED_URL)
    assert [i.title for i in parsed.items] == ["don’t"]  # no title: the description stands in
    assert parsed.items[0].id.startswith("cnil:title-")


def test_truncated_feed_is_read_leniently():
    parsed = feed().read((MISC / "feedparser_truncated_rss_unclosed_root.xml").read_bytes(), url=FEED_URL)
    assert [i.url for i in parsed.items] == ["http://link/get?a=1&b=2"]
    assert parsed.items[0].id == "cnil:http://link/get?a=1&b=2"
    assert parsed.warnings


def test_undeclared_cp1252_bytes_do_not_crash():
    body = ("<rss version='2.0'><channel><item><title>L\x92article sur la sant\xe9</title>"
            "<link>https://example.org/a</link></item></channel></rss>").encode("latin-1")
    parsed = feed().read(body, url=FEED_URL)
    assert parsed.items[0].title == "L’article sur la santé"
    assert parsed.warnings


def test_declared_windows_1252_is_honoured_by_the_fast_path():
    body = ("<?xml version='1.0' encoding='windows-1252'?><rss version='2.0'><channel><item>"
            "<title>L’article sur la santé</title><link>https://example.org/a</link></item></channel></rss>"
            ).encode("cp1252")
    parsed = feed().read(body, url=FEED_URL)
    assert parsed.items[0].title == "L’article sur la santé"
    assert parsed.warnings == ()


def test_utf16_with_bom():
    body = "<rss version='2.0'><channel><item><title>Santé</title><guid>x1</guid></item></channel></rss>"
    item = feed().parse(body.encode("utf-16"), url=FEED_URL)[0]
    assert (item.title, item.id) == ("Santé", "cnil:x1")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><item><title>&lol9;</title></item></channel></rss>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><item><title>&xxe;</title></item></channel></rss>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_entity_declarations_are_rejected_not_expanded(body):
    with pytest.raises(ParseError) as caught:
        feed().parse(body, url=FEED_URL)
    assert "[cnil]" in str(caught.value) and "entities" in str(caught.value)


@pytest.mark.parametrize("body, words", [
    (b"<!DOCTYPE html><html><head><title>CNIL</title></head><body><p>Page</p></body></html>", "HTML page"),
    (b'{"items": []}', "JSON"),
    (b"", "empty body"),
    (b"   \n", "empty body"),
    (b"<?xml version='1.0'?><sitemap><url/></sitemap>", "root element <sitemap>"),
    (b"<html><body><p>unclosed <b>markup</body>", "HTML page"),
    (b"Service Unavailable", "not an RSS/Atom feed"),
])
def test_a_body_that_is_not_a_feed_is_a_parse_error_naming_the_source(body, words):
    with pytest.raises(ParseError) as caught:
        feed().parse(body, url=FEED_URL)
    assert caught.value.source == "cnil"
    assert words in str(caught.value)


def test_empty_feed_is_valid():
    body = b"<?xml version='1.0'?><rss version='2.0'><channel><title>CNIL</title></channel></rss>"
    assert feed().read(body, url=FEED_URL).items == []
    assert feed().parse(b"<feed xmlns='http://www.w3.org/2005/Atom'><title>x</title></feed>", url=FEED_URL) == []


# --- fields -----------------------------------------------------------------------------------------------------------

RSS_WITH_EVERYTHING = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">
<channel><title>T</title><language>fr-FR</language>
<atom:link href="https://example.org/feed/" rel="self"/>
<item>
  <title>Santé &amp; <![CDATA[<b>IA</b>]]></title>
  <link>/actualites/ia-sante?utm_source=rss&amp;utm_medium=rss#haut</link>
  <description><![CDATA[<p>Un <strong>résumé</strong> en
   deux lignes.</p><p>Second paragraphe.</p>]]></description>
  <content:encoded><![CDATA[<h2>Titre</h2><p>Texte <a href="/x">complet</a>.</p>]]></content:encoded>
  <dc:date>2026-03-29T02:30:00+02:00</dc:date>
  <category>IA</category><category><![CDATA[Santé]]></category><category>IA</category>
  <dc:creator>Jeanne Dupont</dc:creator>
</item>
<item><title>Sans date</title><guid isPermaLink="false">urn:x:42</guid></item>
</channel></rss>""".encode()


def test_rss_fields_extracted_and_normalised():
    first, second = feed(url="https://example.org/feed/", publisher="").parse(
        RSS_WITH_EVERYTHING, url="https://example.org/feed/")
    assert first.title == "Santé & IA"
    assert first.url == "https://example.org/actualites/ia-sante"  # relative, tracking and fragment removed
    assert first.id == "cnil:https://example.org/actualites/ia-sante"
    assert first.summary == "Un résumé en deux lignes.\n\nSecond paragraphe."
    assert first.text == "Titre\n\nTexte complet."
    assert first.published == utc(2026, 3, 29, 0, 30)
    assert first.tags == ("IA", "Santé")
    assert first.authority == "Jeanne Dupont" and first.extra == {"author": "Jeanne Dupont"}
    assert (second.id, second.published, second.url) == ("cnil:urn:x:42", None, "")


def test_options_max_items_keep_categories_nature():
    source = feed(url="https://example.org/feed/", max_items=1, keep_categories=["santé"], nature="article")
    items = source.parse(RSS_WITH_EVERYTHING, url="https://example.org/feed/")
    assert [(i.title, i.tags, i.nature, i.authority) for i in items] == [("Santé & IA", ("Santé",), "article", "CNIL")]
    assert feed(keep_categories=False).parse(RSS_WITH_EVERYTHING, url=FEED_URL)[0].tags == ()


@pytest.mark.parametrize("options", [{"max_items": 0}, {"max_items": "5"}, {"keep_categories": "yes"}])
def test_bad_option_values_are_config_errors(options):
    with pytest.raises(ConfigError) as caught:
        feed(**options)
    assert "cnil" in str(caught.value)


def test_celex_identifier_from_title_and_link():
    body = b"""<rss version="2.0"><channel><item>
      <title>CELEX:32026L1472: Directive (UE) 2026/1472 du Parlement europ\xc3\xa9en et du Conseil</title>
      <link>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELEX:32026L1472</link>
      <description></description>
      <guid>https://eur-lex.europa.eu/legal-content/AUTO/?uri=CELLAR:0a1b2c3d-0000-11ef-0000-01aa75ed71a1</guid>
      <pubDate>Thu, 16 Jul 2026 10:15:00 +0200</pubDate></item></channel></rss>"""
    item = feed("eurlex-oj").parse(body, url="https://eur-lex.europa.eu/FR/display-feed.rss?rssId=222")[0]
    assert item.identifiers == {"celex": "32026L1472", "eu_directive": "2026/1472"}
    assert item.url == "https://eur-lex.europa.eu/legal-content/AUTO/?uri=CELEX:32026L1472"
    assert item.id == "eurlex-oj:https://eur-lex.europa.eu/legal-content/AUTO/?uri=CELLAR:0a1b2c3d-0000-11ef-0000-01aa75ed71a1"
    assert item.published == utc(2026, 7, 16, 8, 15)
    assert item.summary == ""


def test_atom_xhtml_content_links_and_language():
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
      <entry xml:lang="en"><id>tag:edpb,2026:1</id><title type="html">EDPB &lt;em&gt;adopts&lt;/em&gt; guidelines</title>
        <link rel="enclosure" href="/file.pdf"/><link href="/news/2026/edpb-adopts"/>
        <updated>2026-07-01T09:00:00Z</updated><category term="GDPR"/>
        <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>First.</p><p>Second.</p></div></content>
      </entry></feed>"""
    item = feed("edpb", url="https://www.edpb.europa.eu/feed/news_en", publisher="EDPB").parse(
        body, url="https://www.edpb.europa.eu/feed/news_en")[0]
    assert item.title == "EDPB adopts guidelines"
    assert item.url == "https://www.edpb.europa.eu/news/2026/edpb-adopts"
    assert item.id == "edpb:tag:edpb,2026:1"
    assert item.text == "First.\n\nSecond."
    assert (item.lang, item.tags, item.published) == ("en", ("GDPR",), utc(2026, 7, 1, 9))


def test_rdf_rss_1_0():
    body = b"""<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
        xmlns:dc="http://purl.org/dc/elements/1.1/">
      <channel rdf:about="https://example.org/"><title>x</title></channel>
      <item rdf:about="https://example.org/a"><title>A</title><link>https://example.org/a</link>
        <dc:date>2026-01-05</dc:date><dc:subject>Sant\xc3\xa9</dc:subject></item></rdf:RDF>"""
    item = feed().parse(body, url="https://example.org/rss")[0]
    assert (item.id, item.title, item.tags) == ("cnil:https://example.org/a", "A", ("Santé",))
    assert item.published == utc(2026, 1, 4, 23)  # a bare date is midnight in Paris


def test_raw_reader_reports_every_entry_even_repeated_ones():
    raw = read_feed((JORF / "legifrss_atom_decret_sante_2021-03.xml").read_bytes(), source="x", url="u")
    assert len(raw.entries) == 50 and raw.warnings == ()


# --- reconstructed feeds (real items, invented envelopes: see fixtures/reconstructed/README.md) -----------------------

RECONSTRUCTED = FIXTURES / "reconstructed"

# file, source name, feed url, count, first item (id suffix, title start, published), last item (id suffix, published)
RECONSTRUCTED_CASES = [
    ("reconstructed_ansm_rss_actualites.xml", "ansm-actualites", "https://ansm.sante.fr/rss/actualites", 14,
     ("https://ansm.sante.fr/actualites/duloxetine-lansm-demande-aux-laboratoires-de-renforcer-leurs-approvisionnements",
      "Duloxétine : l’ANSM demande aux laboratoires de renforcer leurs approvisionnements", utc(2026, 10, 9, 8)),
     ("https://ansm.sante.fr/actualites/teralithe-et-quetiapine-point-sur-la-disponibilite-et-levolution-des-mesures"
      "-daccompagnement", utc(2026, 7, 20, 8, 39, 5))),
    ("reconstructed_ansm_rss_informations_securite.xml", "ansm-securite", "https://ansm.sante.fr/rss/informations_securite",
     14, ("https://ansm.sante.fr/informations-de-securite/ocrevus-ocrelizumab-risque-nouveau-datteinte-hepatique-dorigine"
          "-medicamenteuse-et-recommandations-sur-la-surveillance-hepatique-avant-et-pendant-le-traitement",
          "Ocrevus (ocrelizumab) : risque nouveau d'atteinte hépatique", utc(2026, 10, 7, 22)),
     ("https://ansm.sante.fr/informations-de-securite/curosurf-120-mg-1-5-ml-suspension-pour-instillation"
      "-endotracheobronchique-laboratoire-chiesi-sas", utc(2026, 3, 18, 23))),
    ("reconstructed_cnil_rss.xml", "cnil", "https://www.cnil.fr/fr/rss.xml", 20,
     ("https://www.cnil.fr/fr/le-refus-de-credit-en-questions", "Le refus de crédit en questions", utc(2026, 8, 19, 12)),
     ("https://www.cnil.fr/fr/journee-internationale-droits-des-femmes-2026", utc(2026, 3, 9, 12))),
    ("reconstructed_edpb_news_feed.xml", "edpb", "https://www.edpb.europa.eu/feed/news_en", 10,
     ("https://www.edpb.europa.eu/news/stakeholder-event-on-guidelines-on-the-interplay-between-data-protection-and"
      "-competition-law-0_en", "Stakeholder event on guidelines on the interplay", utc(2026, 7, 30, 10)),
     ("https://www.edpb.europa.eu/news/news/2026/coordinated-supervision-committee-extends-scope-include-eurodac_en",
      utc(2026, 6, 12, 10))),
    ("reconstructed_eurlex_oj_feed.xml", "eurlex-oj", "https://eur-lex.europa.eu/FR/display-feed.rss?rssId=222", 8,
     ("https://eur-lex.europa.eu/legal-content/AUTO/?uri=CELLAR:00000000-0000-0000-0000-000000000001",
      "CELEX:32025R0327: Règlement (UE) 2025/327 du Parlement européen et du Conseil du 11 février 2025 relatif à "
      "l’espace européen des données de santé", utc(2025, 3, 4, 23)),
     ("https://eur-lex.europa.eu/legal-content/AUTO/?uri=CELLAR:00000000-0000-0000-0000-000000000008",
      utc(2016, 5, 3, 22))),
]


@pytest.mark.parametrize("name, source, url, count, first, last", RECONSTRUCTED_CASES, ids=lambda v: str(v)[:30])
def test_reconstructed_feeds(name, source, url, count, first, last):
    parsed = feed(source, url=url).read((RECONSTRUCTED / name).read_bytes(), url=url)
    items = parsed.items
    assert (len(items), parsed.warnings) == (count, ())
    assert (items[0].id, items[0].published) == (f"{source}:{first[0]}", first[2])
    assert items[0].title.startswith(first[1])
    assert (items[-1].id, items[-1].published) == (f"{source}:{last[0]}", last[1])
    assert all(i.url.startswith("https://") and "&nbsp;" not in i.summary and "<" not in i.summary for i in items)


def test_reconstructed_ansm_safety_items():
    items = feed("ansm-securite", nature="information de securite").parse(
        (RECONSTRUCTED / "reconstructed_ansm_rss_informations_securite.xml").read_bytes(), url=FEED_URL)
    tavneos = items[2]
    assert tavneos.title == "Tavneos 10 mg, gélule – Laboratoire Vifor France (MED26/A019/B018)"
    assert tavneos.summary == ("Niveau de rappel : officines, établissements de santé et circuit de distribution "
                               "pharmaceutique - Publié le 19/08/2026")
    assert tavneos.published == utc(2026, 8, 18, 22)  # midnight in Paris, summer time
    assert (tavneos.tags, tavneos.nature) == (("Rappel de produit", "Médicaments"), "information de securite")


def test_reconstructed_cnil_double_escaped_nbsp_is_a_space():
    items = feed().parse((RECONSTRUCTED / "reconstructed_cnil_rss.xml").read_bytes(), url=FEED_URL)
    municipales = next(i for i in items if i.url.endswith("/municipales-2026-bilan-observatoire"))
    assert "des 15 et 22 mars 2026, la CNIL a reçu 739 signalements" in municipales.summary
    assert "SMS (63 %)" in municipales.summary
    assert municipales.authority == "CNIL" and municipales.published == utc(2026, 4, 8, 12)


def test_reconstructed_eurlex_celex_and_links():
    items = feed("eurlex-oj").parse((RECONSTRUCTED / "reconstructed_eurlex_oj_feed.xml").read_bytes(), url=FEED_URL)
    assert [i.identifiers["celex"] for i in items] == [
        "32025R0327", "32024R1689", "32023R2854", "32022L2555", "32022R2065", "32022R0868", "32017R0745", "32016R0679"]
    gdpr = items[-1]
    assert gdpr.url == "https://eur-lex.europa.eu/legal-content/AUTO/?uri=CELEX:32016R0679"  # '/./' removed
    assert (gdpr.summary, gdpr.tags, gdpr.identifiers["eu_regulation"]) == ("", ("Lex Alerts",), "2016/679")


# --- wordpress ------------------------------------------------------------------------------------------------------

def wordpress(name: str = "vigier-avocats", url: str = "https://www.vigier-avocats.com/", **options):
    from watcher.sources.wordpress import WordPressSource

    return WordPressSource(SourceConfig(name=name, kind="wordpress", url=url, publisher="Vigier Avocats",
                                        options=options))


def test_wordpress_vigier_reconstructed():
    source = wordpress()
    first, second = source.parse((RECONSTRUCTED / "reconstructed_wordpress_vigier_feed.xml").read_bytes(),
                                 url=source.feed_url)
    assert first.id == "vigier-avocats:p=12137"
    assert first.url == "https://www.vigier-avocats.com/hebergement-des-donnees-de-sante-le-decret-du-24-mars-2026-renforce/"
    assert first.summary == first.title  # only the Yoast sentence was there: the title stands in
    assert first.text == ""
    assert (first.nature, first.authority, first.tags) == ("article", "Vigier Avocats", ("Données de santé", "E-santé"))
    assert first.published == utc(2026, 3, 26, 8, 30)
    assert second.id == "vigier-avocats:p=12089"
    assert second.summary == ("Le décret n° 2026-153 du 3 mars 2026 fixe un nouveau régime de sanctions financières "
                              "pour les services numériques en santé …")  # straight-apostrophe Yoast removed too
    assert second.text == ("Décret n° 2026-153 du 3 mars 2026\n\nLe décret n° 2026-153 du 3 mars 2026 fixe un nouveau "
                           "régime de sanctions financières pour les services numériques en santé.")
    assert "utm_" not in second.url
    assert second.identifiers == {"decret": "2026-153"}  # found in the excerpt: the act this commentary discusses


def test_wordpress_legalis_reconstructed_no_yoast_left():
    source = wordpress("legalis", url="https://www.legalis.net/", nature="actualite")
    items = source.parse((RECONSTRUCTED / "reconstructed_wordpress_legalis_feed.xml").read_bytes(),
                         url="https://www.legalis.net/feed/")
    assert len(items) == 8
    assert items[0].id == "legalis:p=20500"
    assert items[0].title == "Condamnée par avoir fait indûment bloquer des vidéos"
    assert items[0].summary.startswith("Par un jugement du 19 juin 2026, le tribunal judiciaire de Paris a condamné")
    assert items[-1].url == "https://www.legalis.net/actualite/la-liberte-dexpression-prevaut-sur-le-droit-a-loubli/"
    for item in items:
        assert "apparu en premier" not in item.summary + item.text
        assert item.nature == "actualite" and item.tags == ("Actualité",)


@pytest.mark.parametrize("description", [
    "<p>Texte.</p>\n<p>L’article <a href=\"https://x/a/\">Titre</a> est apparu en premier sur <a href=\"https://x/\">X</a>.</p>",
    "<p>Texte.</p><p>L'article <a href='https://x/a/'>Titre</a> est apparu en premier sur <a href='https://x/'>X</a>.</p>",
    "Texte. L&#8217;article <a href=\"https://x/a/\">Titre</a> est apparu en premier sur <a href=\"https://x/\">X</a>.",
    "Texte.\nL’article Titre est apparu en premier sur X.",
    "<p>Texte.</p><p>The post <a href=\"https://x/a/\">Titre</a> appeared first on <a href=\"https://x/\">X</a>.</p>",
])
def test_wordpress_strips_yoast_sentence_in_all_spellings(description):
    body = f"""<rss version="2.0"><channel><item><title>Titre</title><link>https://x/a/</link>
      <guid isPermaLink="false">https://x/?p=7</guid><description><![CDATA[{description}]]></description>
      </item></channel></rss>""".encode()
    item = wordpress("x", url="https://x/").parse(body, url="https://x/feed/")[0]
    assert (item.id, item.summary) == ("x:p=7", "Texte.")


def test_wordpress_keeps_an_article_that_cites_l_article():
    body = """<rss version="2.0"><channel><item><title>RGPD</title><link>https://x/a/</link>
      <description><![CDATA[<p>L’article 9 du RGPD interdit en principe le traitement des données de santé.</p>
      <p>L’article <a href="https://x/a/">RGPD</a> est apparu en premier sur <a href="https://x/">X</a>.</p>]]>
      </description></item></channel></rss>""".encode()
    item = wordpress("x", url="https://x/").parse(body, url="https://x/feed/")[0]
    assert item.summary == "L’article 9 du RGPD interdit en principe le traitement des données de santé."
    assert item.id == "x:https://x/a/"  # no ?p= GUID: the canonical link


def test_wordpress_feed_url_default_and_override():
    assert wordpress().feed_url == "https://www.vigier-avocats.com/feed/"
    assert wordpress(url="https://www.houdart.org").feed_url == "https://www.houdart.org/feed/"
    custom = wordpress(feed_url="https://www.vigier-avocats.com/category/donnees-de-sante/feed/")
    assert custom.feed_url == "https://www.vigier-avocats.com/category/donnees-de-sante/feed/"


def test_identifiers_written_only_in_the_links_are_found():
    body = b"""<rss version="2.0"><channel>
      <item><title>R\xc3\xa8glement g\xc3\xa9n\xc3\xa9ral sur la protection des donn\xc3\xa9es</title>
        <link>https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=celex%3A32016r0679</link></item>
      <item><title>Arr\xc3\xaat\xc3\xa9 relatif aux entrep\xc3\xb4ts de donn\xc3\xa9es de sant\xc3\xa9</title>
        <link>https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000054246001</link></item>
      <item><title>Sans identifiant</title><link>https://example.org/a</link></item></channel></rss>"""
    celex, jorf, plain = feed("links").parse(body, url="https://example.org/")
    assert celex.identifiers == {"celex": "32016R0679"}
    assert jorf.identifiers == {"jorftext": "JORFTEXT000054246001"}
    assert plain.identifiers == {}


def test_the_fast_path_does_not_import_feedparser():
    """feedparser is only for broken feeds: importing it costs ~40 ms a run that most runs never need."""
    code = ("import sys; from pathlib import Path; from watcher.sources.feed import read_feed; "
            f"raw = read_feed(Path({str(CNIL_500)!r}).read_bytes(), source='cnil', url='u'); "
            "assert len(raw.entries) == 500; print('feedparser' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert read_feed(b"<rss><channel><item><title>trunc", source="x", url="u").warnings  # the fallback still works
