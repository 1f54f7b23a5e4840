"""The dila-cnil kind on the real DILA CNIL file (tests/fixtures/cnil/dila_CNILTEXT000054047151_…xml).

No real CNIL delta or folder listing was captured: the tarballs and the Apache index page used by the collect
tests are built here, in memory, around the real XML file, with the archive names SOURCES.md §2 reports
(``CNIL_20260507-213433.tar.gz``, ``Freemium_cnil_global_20250713-…``) and the member path of the file's own
``<URL>`` field. ``collect`` runs against a small fake object with the ``HttpClient.get`` interface."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from dila_support import FakeHttp, targz

from watcher.config.sources import SourceConfig
from watcher.models import SourceState
from watcher.sources.dila_cnil import DilaCnilSource, parse_text
from watcher.sources.dila_common import parse_listing
from watcher.util.errors import ParseError

CNIL = Path(__file__).parent / "fixtures" / "cnil"
REAL = CNIL / "dila_CNILTEXT000054047151_deliberation_2026-047_recommandation_credit.xml"
FOLDER = "https://echanges.dila.gouv.fr/OPENDATA/CNIL/"
ARCHIVE = "CNIL_20260507-213433.tar.gz"
MEMBER = "20260507-213433/cnil/global/texte/cnil/CNIL/TEXT/00/00/54/04/71/CNILTEXT000054047151.xml"
LISTING = """<html><head><title>Index of /OPENDATA/CNIL</title></head><body>
<h1>Index of /OPENDATA/CNIL</h1><table>
<tr><td><a href="CNIL_20260430-213012.tar.gz">CNIL_20260430-213012.tar.gz</a></td><td>2026-04-30</td></tr>
<tr><td><a href="CNIL_20260507-213433.tar.gz">CNIL_20260507-213433.tar.gz</a></td><td>2026-05-07</td></tr>
<tr><td><a href="DILA_CNIL_Presentation_20170824.pdf">DILA_CNIL_Presentation_20170824.pdf</a></td></tr>
<tr><td><a href="Freemium_cnil_global_20250713-140000.tar.gz">Freemium_cnil_global_20250713-140000.tar.gz</a>
</td><td>13-Jul-2025</td><td>18M</td></tr></table><p>Propriété de la DILA</p></body></html>
""".encode("iso-8859-1")
CNIL_ID = "cnil:CNILTEXT000054047151"


def cnil() -> DilaCnilSource:
    return DilaCnilSource(SourceConfig(name="cnil-deliberations", kind="dila-cnil", url=FOLDER))


def test_real_deliberation():
    item = parse_text(REAL.read_bytes())
    assert item.id == CNIL_ID
    assert item.source == "cnil-deliberations"
    assert item.url == "https://www.legifrance.gouv.fr/cnil/id/CNILTEXT000054047151"
    assert item.title == ("Délibération n° 2026-047 du 2 avril 2026 portant adoption d’une recommandation "
                          "concernant l’évaluation de la solvabilité dans le cadre de l’octroi de crédit")
    assert item.nature == "Recommandation/Lignes directrices"
    assert item.tags == ("Recommandation/Lignes directrices",)
    assert item.authority == "Commission nationale de l'informatique et des libertés"
    assert item.published == datetime(2026, 5, 7, 22, 0, tzinfo=UTC)  # DATE_PUBLI 2026-05-08, Paris midnight
    assert dict(item.identifiers) == {
        "cnil": "CNILTEXT000054047151", "deliberation": "2026-047", "nor": "CNIS2611643X",
        "nor_base": "CNIS2611643",
        "date_texte": "2026-04-02", "cites_eu_regulation": "2016/679", "cites_eu_directive": "95/46",
        "cites_loi": "78-17", "cites_deliberation": "2008-198",
    }
    assert dict(item.extra) == {"etat_juridique": "VIGUEUR", "nature": "DELIBERATION",
                                "nature_delib": "Recommandation/Lignes directrices",
                                "titre": "Délibération 2026-047 du 2 avril 2026"}
    assert item.summary.startswith("1. L’octroi de crédit repose sur des traitements de données à caractère")


def test_text_drops_blank_paragraphs_and_keeps_apostrophes():
    text = parse_text(REAL.read_bytes()).text
    paragraphs = text.split("\n\n")
    assert paragraphs[:2] == [
        "La Commission nationale de l'informatique et des libertés,",
        "Vu le règlement (UE) 2016/679 du Parlement européen et du Conseil du 27 avril 2016 relatif à la "
        "protection des personnes physiques à l’égard du traitement des données à caractère personnel et à "
        "la libre circulation de ces données, et abrogeant la directive 95/46/CE (règlement général sur la "
        "protection des données ou RGPD) ;"]
    assert all(p.strip() and "\n" not in p for p in paragraphs)  # the 21 '<p> </p>' are gone
    assert "Article 2 : La délibération figurant en annexe est adoptée." in paragraphs
    assert paragraphs[-1] == ("Vous pouvez consulter l’intégralité du texte à l’adresse suivante : "
                              "https://www.cnil.fr/fr/recommandation-octroi-de-credit")
    assert "\u00a0" not in text and "'" in text and "’" in text


def test_sanction_without_publication_date():
    data = (REAL.read_bytes()
            .replace(b"<NATURE_DELIB>Recommandation/Lignes directrices</NATURE_DELIB>",
                     b"<NATURE_DELIB>Sanction</NATURE_DELIB>")
            .replace(b"<DATE_PUBLI>2026-05-08</DATE_PUBLI>", b"<DATE_PUBLI/>"))
    item = parse_text(data)
    assert item.nature == "Sanction" and item.tags == ("Sanction",)
    assert item.published == datetime(2026, 4, 1, 22, 0, tzinfo=UTC)  # falls back on DATE_TEXTE


@pytest.mark.parametrize(("data", "message"), [
    (b"<TEXTE><ID>JORFTEXT000054246001</ID></TEXTE>", "got <TEXTE>"),
    (b"<TEXTE_CNIL><META><META_COMMUN><ID/></META_COMMUN></META></TEXTE_CNIL>", "without a CNILTEXT id"),
    (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><TEXTE_CNIL>&a;</TEXTE_CNIL>', "refused unsafe XML"),
])
def test_not_a_cnil_text(data, message):
    with pytest.raises(ParseError, match=message):
        parse_text(data)


def test_listing_ignores_the_stock_and_other_files():
    assert parse_listing(LISTING, DilaCnilSource.archive_pattern) == ["CNIL_20260430-213012.tar.gz", ARCHIVE]


def test_archive_and_parse():
    data = targz({MEMBER: REAL.read_bytes(), "20260507-213433/cnil/global/liste_suppression_cnil.dat": b""})
    source = cnil()
    assert [i.id for i in source.parse(data, url=FOLDER + ARCHIVE)] == [CNIL_ID]
    assert source.parse(data, url="")[0] == parse_text(REAL.read_bytes())
    assert [i.id for i in source.parse(REAL.read_bytes(), url="file:CNILTEXT000054047151.xml")] == [CNIL_ID]
    with pytest.raises(ParseError, match=f"archive {ARCHIVE} is corrupt or truncated"):
        source.parse(data[: len(data) // 2], url=FOLDER + ARCHIVE)


def test_collect_first_run_and_cursor():
    http = FakeHttp({FOLDER: LISTING, FOLDER + "CNIL_20260430-213012.tar.gz": targz({}),
                     FOLDER + ARCHIVE: targz({MEMBER: REAL.read_bytes()})}, folder=FOLDER)
    collected = cnil().collect(http, SourceState("cnil-deliberations"))
    assert [url for url, _, _ in http.calls] == [FOLDER, FOLDER + "CNIL_20260430-213012.tar.gz", FOLDER + ARCHIVE]
    assert [i.id for i in collected.items] == [CNIL_ID]
    assert collected.cursor == ARCHIVE
    assert collected.warnings == ("archive CNIL_20260430-213012.tar.gz holds no CNILTEXT file",)
    again = cnil().collect(http, SourceState("cnil-deliberations", cursor=ARCHIVE))
    assert again.items == [] and again.cursor == ARCHIVE


def test_kind_and_options():
    assert DilaCnilSource.kind == "dila-cnil"
    assert set(DilaCnilSource.optional) == {"first_run_archives", "max_archives_per_run"}


def test_nature_delib_reaches_the_theme_rules():
    from classifiers.decide.hybrid import HybridClassifier

    (result,) = HybridClassifier(embedder_factory=None).classify([parse_text(REAL.read_bytes())])
    tags = result.tags
    assert [t.theme for t in tags] == ["personal-data"]
    assert "délibération CNIL : recommandation" in tags[0].reason
