"""Normalisation shared by every kind: text, dates, URLs, ids."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from watcher.legal.normalize import (
    canonical_url,
    clean_text,
    html_to_text,
    iso,
    parse_date,
    parse_french_date,
    parse_rfc822,
    stable_id,
    to_utc,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("fragment, text", [
    ("<p>Un <b>texte</b> en <i>gras</i> et <a href='/x'>un lien</a>.</p>", "Un texte en gras et un lien."),
    ("Décret<b>s</b> et <span>arrêtés</span>", "Décrets et arrêtés"),
    ("<p>Premier.</p><p>Second.</p>", "Premier.\n\nSecond."),
    ("Ligne<br>suivante<br/>fin", "Ligne\nsuivante\nfin"),
    ("<p>Un paragraphe\n  écrit sur\ndeux lignes</p>", "Un paragraphe écrit sur deux lignes"),
    ("<ul><li>a</li><li><em>b</em> c</li></ul>", "a\n\nb c"),
    ("<h2>Titre</h2>Texte", "Titre\nTexte"),
    ("<table><tr><th>Nom</th><td>Valeur</td></tr><tr><td>x</td><td>y</td></tr></table>", "Nom Valeur\nx y"),
    ("<p>a</p><script>alert(1)</script><style>p{}</style><p>b</p>", "a\n\nb"),
    ("l&#8217;article &amp; la loi&nbsp;!", "l’article & la loi !"),
    ("<p>caf&eacute; <!-- note --> cr&egrave;me</p>", "café crème"),
    ("", ""),
    (None, ""),
])
def test_html_to_text(fragment, text):
    assert html_to_text(fragment) == text


def test_clean_text_repairs_cp1252_c1_controls_and_spaces():
    assert clean_text("L\x92article\u00a0 du\tcode\u00ad") == "L’article du code"
    assert clean_text("a\n\n\n\nb ") == "a\n\nb"
    assert clean_text("  Données  de santé ") == "Données de santé"
    assert clean_text("Donne\u0301es") == "Données"  # decomposed accent recomposed (NFC)


def test_clean_text_undoes_double_escaped_entities():
    # cnil.fr's RSS descriptions carry "&amp;nbsp;" (an escaped entity inside the HTML)
    assert clean_text("des 15 et 22&amp;nbsp;mars 2026, 739&amp;nbsp;signalements") == "des 15 et 22 mars 2026, 739 signalements"
    assert clean_text("AT&amp;T") == "AT&T"


@pytest.mark.parametrize("value, expected", [
    ("2026-01-15T10:00:00", utc(2026, 1, 15, 9)),  # winter: Paris = UTC+1
    ("2026-07-15T10:00:00", utc(2026, 7, 15, 8)),  # summer: Paris = UTC+2
    ("2026-03-29T01:59:00", utc(2026, 3, 29, 0, 59)),  # last minute of winter time
    ("2026-03-29T03:00:00", utc(2026, 3, 29, 1)),  # first minute of summer time
    ("2026-10-25T02:30:00", utc(2026, 10, 25, 0, 30)),  # ambiguous hour: first occurrence (fold=0, CEST)
    ("2026-06-13", utc(2026, 6, 12, 22)),  # a bare date is midnight in Paris
    ("2026-06-13T00:20:00Z", utc(2026, 6, 13, 0, 20)),
    ("2021-02-26T01:00:00+01:00", utc(2021, 2, 26)),
    ("", None),
    ("pas une date", None),
])
def test_to_utc_from_paris(value, expected):
    assert to_utc(value) == expected


def test_to_utc_date_and_aware_values():
    assert to_utc(date(2026, 12, 25)) == utc(2026, 12, 24, 23)
    assert iso(to_utc("2026-07-15T10:00:00")) == "2026-07-15T08:00:00Z"


@pytest.mark.parametrize("value, expected", [
    ("Wed, 19 Aug 2026 00:00:00 -0000", utc(2026, 8, 19)),
    ("Sat, 05 Dec 2020 22:05:09 +0100", utc(2020, 12, 5, 21, 5, 9)),
    ("Thu, 16 Jul 2026 10:15:00 +0200", utc(2026, 7, 16, 8, 15)),
    ("Thu, 16 Jul 2026 10:15:00 GMT", utc(2026, 7, 16, 10, 15)),
    ("Thu, 16 Jul 2026 10:15:00 CEST", utc(2026, 7, 16, 8, 15)),
    ("Mon, 12 Jan 2026 10:15:00 EST", utc(2026, 1, 12, 15, 15)),
    ("Mon, 12 Jan 2026 10:15:00", utc(2026, 1, 12, 9, 15)),  # no zone: Paris
    ("12 Jan 26 10:15 +0000", utc(2026, 1, 12, 10, 15)),
    ("Mon, 31 Feb 2026 10:15:00 +0000", None),
    ("Mon, 12 Jan 2026 10:15:00 +0000", utc(2026, 1, 12, 10, 15)),
    ("Thu, 01 Jan 2026 00:30:00 +0130", utc(2025, 12, 31, 23, 0)),
    ("Wed, 31 Dec 2025 22:00:00 -0230", utc(2026, 1, 1, 0, 30)),
    ("Mon, 12 Foo 2026 10:15:00 +0000", None),
    ("Mon, 12 jan 2026 10:15:00 +0000", utc(2026, 1, 12, 10, 15)),  # not the usual layout: general reader
    ("2026-01-12", None),
])
def test_parse_rfc822(value, expected):
    assert parse_rfc822(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("12 juin 2026", utc(2026, 6, 11, 22)),
    ("1er janvier 2026", utc(2025, 12, 31, 23)),
    ("Publié le 5 août 2026", utc(2026, 8, 4, 22)),
    ("mercredi 1er juillet 2026 à 14h30", utc(2026, 7, 1, 12, 30)),
    ("3 févr. 2026", utc(2026, 2, 2, 23)),
    ("25 DÉCEMBRE 2026", utc(2026, 12, 24, 23)),
    ("12/06/2026", utc(2026, 6, 11, 22)),
    ("10/07/2026 à 9h15", utc(2026, 7, 10, 7, 15)),
    ("31 février 2026", None),
    ("12 brumaire 2026", None),
    ("", None),
])
def test_parse_french_date(value, expected):
    assert parse_french_date(value) == expected


def test_parse_date_tries_iso_then_rfc822_then_french():
    assert parse_date("2026-08-19T10:00:00+02:00") == utc(2026, 8, 19, 8)
    assert parse_date("Wed, 19 Aug 2026 00:00:00 -0000") == utc(2026, 8, 19)
    assert parse_date("19 août 2026") == utc(2026, 8, 18, 22)
    assert parse_date("  ") is None


@pytest.mark.parametrize("url, base, expected", [
    ("https://www.vigier-avocats.com/hds/?utm_source=rss&utm_medium=rss&utm_campaign=hds",
     None, "https://www.vigier-avocats.com/hds/"),
    ("/bibliotheque-ouverte-algorithmes-sante/eds-nlp", "https://www.health-data-hub.fr/bibliotheque-ouverte-algorithmes-sante?page=1",
     "https://www.health-data-hub.fr/bibliotheque-ouverte-algorithmes-sante/eds-nlp"),
    ("https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELEX:32026L1472",
     None, "https://eur-lex.europa.eu/legal-content/AUTO/?uri=CELEX:32026L1472"),
    ("HTTPS://WWW.CNIL.FR/fr/Sanction#top", None, "https://www.cnil.fr/fr/Sanction"),
    ("?page=2", "https://example.org/liste?page=1", "https://example.org/liste?page=2"),
    ("https://example.org/?p=12137&fbclid=abc", None, "https://example.org/?p=12137"),
    ("https://cnil.fr", None, "https://cnil.fr/"),
    ("https://cnil.fr/fr/le-refus-de-credit-en-questions", "https://x.org/", "https://cnil.fr/fr/le-refus-de-credit-en-questions"),
    ("", None, ""),
])
def test_canonical_url(url, base, expected):
    assert canonical_url(url, base) == expected


def test_stable_id_prefers_native_then_url_then_title():
    assert stable_id("jorf", native="JORFTEXT000054245373") == "jorf:JORFTEXT000054245373"
    assert stable_id("cnil", url="https://cnil.fr/fr/x?utm_source=rss") == "cnil:https://cnil.fr/fr/x"
    assert stable_id("x", title="Un titre") == stable_id("x", title=" Un  titre ")
    assert stable_id("x", title="Un titre").startswith("x:title-")
