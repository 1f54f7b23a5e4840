"""The dila-jorf kind on the real JORFSIMPLE files (tests/fixtures/jorf) and on the reconstructed deltas that
hold them (tests/fixtures/reconstructed, see its README). Hostile inputs (entity bombs, unsafe tar paths) are
built here, in the test, so that what they contain is visible. ``collect`` runs against a small fake HTTP
object with the ``HttpClient.get`` interface; nothing touches the network or writes in the repository."""

from __future__ import annotations

import gzip
import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dila_support import FakeHttp, targz

from watcher.config.sources import SourceConfig
from watcher.models import SourceState
from watcher.sources import dila_common
from watcher.sources.dila_jorf import ARCHIVE, DilaJorfSource, parse_sommaire, parse_text
from watcher.util.errors import ConfigError, FetchError, ParseError
from watcher.util.text import fragment_text

FIXTURES = Path(__file__).parent / "fixtures"
JORF = FIXTURES / "jorf"
RECONSTRUCTED = FIXTURES / "reconstructed"
SOMMAIRE = JORF / "jorfsimple_JORFCONT000054245240_sommaire_2026-06-13.xml"
SMALL = JORF / "jorfsimple_JORFTEXT000054246001_arrete_nomination_small.xml"
LARGE = JORF / "jorfsimple_JORFTEXT000054245373_arrete_catnat_large_600KB.xml"
LISTING = JORF / "dila_opendata_JORFSIMPLE_index_listing_reformatted.html"
FOLDER = "https://echanges.dila.gouv.fr/OPENDATA/JORFSIMPLE/"
OLD, MORNING, EVENING = (f"JORFSIMPLE_{stamp}.tar.gz" for stamp in ("20260611-001512", "20260612-002012",
                                                                      "20260612-205512"))
CORRUPT = RECONSTRUCTED / "reconstructed_JORFSIMPLE_corrupt_truncated.tar.gz"
SMALL_ID, LARGE_ID = "jorf:JORFTEXT000054246001", "jorf:JORFTEXT000054245373"
TEXTES_GENERAUX_INTERIEUR = "Décrets, arrêtés, circulaires > Textes généraux > Ministère de l'intérieur"
NOMINATIVES_INTERIEUR = "Décrets, arrêtés, circulaires > Mesures nominatives > Ministère de l'intérieur"


def reconstructed(name: str) -> bytes:
    return (RECONSTRUCTED / f"reconstructed_{name}").read_bytes()


# --- a fake HttpClient --------------------------------------------------------------------------------------

def fake_http(archives: dict[str, bytes | Exception]) -> FakeHttp:
    """The real listing, plus {archive name: its bytes or the exception its GET raises}."""
    pages: dict[str, bytes | Exception] = {FOLDER + name: answer for name, answer in archives.items()}
    return FakeHttp({FOLDER: LISTING.read_bytes(), **pages}, folder=FOLDER)


def jorf(**options) -> DilaJorfSource:
    return DilaJorfSource(SourceConfig(name="jorf", kind="dila-jorf", url=FOLDER, options=options))


def good_http() -> FakeHttp:
    return fake_http({MORNING: reconstructed(MORNING), EVENING: reconstructed(EVENING)})


# --- listing and sommaire -----------------------------------------------------------------------------------

def test_listing_is_read_as_latin1_and_sorted():
    assert dila_common.parse_listing(LISTING.read_bytes(), ARCHIVE) == [OLD, MORNING, EVENING]
    page = ("<a href='JORFSIMPLE_20260613-002012.tar.gz'>Freemium_jorf_simple_20250713-100000.tar.gz</a> é"
            .encode("iso-8859-1"))
    assert dila_common.parse_listing(page, ARCHIVE) == ["JORFSIMPLE_20260613-002012.tar.gz"]


@pytest.mark.parametrize(("jorftext", "rubric"), [
    ("JORFTEXT000054245243", "LOIS"),
    ("JORFTEXT000054245373", TEXTES_GENERAUX_INTERIEUR),
    ("JORFTEXT000054246001", NOMINATIVES_INTERIEUR),
    ("JORFTEXT000054246469", "Commission nationale de l'informatique et des libertés"),
    ("JORFTEXT000054246584", "Avis et communications > Avis divers > Ministère de la santé, des familles, de "
                             "l'autonomie et des personnes handicapées"),
    ("JORFTEXT000054246587", "Annonces"),
])
def test_sommaire_rubric_paths(jorftext, rubric):
    assert parse_sommaire(SOMMAIRE.read_bytes())[jorftext] == rubric


def test_sommaire_has_every_link():
    rubrics = parse_sommaire(SOMMAIRE.read_bytes())
    assert len(rubrics) == SOMMAIRE.read_bytes().count(b"<LIEN_TXT") == 101
    assert all(key.startswith("JORFTEXT") and value for key, value in rubrics.items())


def test_sommaire_refuses_a_text():
    with pytest.raises(ParseError, match="<TEXTE>"):
        parse_sommaire(SMALL.read_bytes())


# --- one text -----------------------------------------------------------------------------------------------

def test_small_text_without_eli():
    item = parse_text(SMALL.read_bytes(), NOMINATIVES_INTERIEUR)
    assert item.id == SMALL_ID
    assert item.source == "jorf"
    assert item.url == "https://www.legifrance.gouv.fr/jorf/id/JORFTEXT000054246001"
    assert item.title == ("Arrêté du 11 juin 2026 portant nomination (régisseurs titulaires d'avances et de "
                          "recettes)")
    assert item.nature == "ARRETE"
    assert item.authority == "Ministère de l'intérieur"
    assert item.rubric == NOMINATIVES_INTERIEUR
    assert item.published == datetime(2026, 6, 12, 22, 0, tzinfo=UTC)  # 13 June 2026, midnight in Paris
    assert item.text.startswith("Par arrêté du ministre de l'intérieur en date du 11 juin 2026, la maréchale")
    assert item.text.endswith("à compter du 4 août 2026.")
    assert item.summary == item.text  # short: the whole first article
    assert dict(item.identifiers) == {
        "jorftext": "JORFTEXT000054246001", "nor": "INTJ2615756A", "nor_base": "INTJ2615756",
        "jorfcont": "JORFCONT000054245240", "date_texte": "2026-06-11", "arrete": "2026-06-11",
    }
    assert "eli" not in item.identifiers and "num" not in item.identifiers
    assert dict(item.extra) == {"num_parution": "0137", "num_sequence": "36",
                                "titre": "Arrêté du 11 juin 2026",
                                "origine_publi": "JORF n°0137 du 13 juin 2026", "rectificatif": False}
    assert not item.is_rectificatif


def test_large_text_with_annex_tables():
    item = parse_text(LARGE.read_bytes())
    assert item.id == LARGE_ID
    assert item.title == "Arrêté du 12 juin 2026 portant reconnaissance de l'état de catastrophe naturelle"
    assert item.identifiers["eli"] == "https://www.legifrance.gouv.fr/eli/arrete/2026/6/12/INTE2615534A/jo/texte"
    assert item.identifiers["nor"] == "INTE2615534A"
    assert item.identifiers["arrete"] == "2026-06-12"
    assert item.rubric == ""
    lines = item.text.split("\n")
    assert lines[0].startswith("Le ministre de l'intérieur, le ministre de l'économie")  # visas first
    assert ("Vu le code des assurances, notamment ses articles L. 122-7, L. 125-1 à L. 125-7, D. 125-1 à "
            "D. 125-6 et A. 125-2 et suivants ;") in lines
    assert [line for line in lines if line.startswith("Article ") or line == "Annexe"] == [
        "Article 1", "Article 2", "Article 3", "Article 4", "Article 5", "Annexe", "Annexe"]
    rows = [line for line in lines if " | " in line]
    assert len(rows) == LARGE.read_bytes().count(b"<tr>") == 723  # one line per row: 2 headers + 721 communes
    assert rows[0].startswith("Département | Commune | Phénomène naturel | Date de début de la période de "
                              "reconnaissance | Date de fin")
    assert rows[1].startswith("Aisne | Amigny-Rouy | Mouvements de terrain différentiels consécutifs à la "
                              "sécheresse et à la réhydratation des sols | 01/01/2025 | 31/12/2025 | | "
                              "L'intensité anormale")
    assert lines[-1].startswith("Val-d'Oise | Montlignon | Mouvements de terrain")
    assert item.summary.startswith("En application du code des assurances, les demandes de reconnaissance")
    assert item.summary.endswith("…") and len(item.summary) <= 301


def test_table_headers_in_th_or_td_give_the_same_rows():
    cells = ("<tr><{c}>Département</{c}><{c}>Commune</{c}></tr>"
             "<tr><td>\n<br/>Aisne</td><td>Autreville</td></tr>")
    for cell in ("th", "td"):
        root = dila_common.parse_xml(f"<CONTENU><table>{cells.format(c=cell)}</table></CONTENU>".encode(),
                                     source="jorf", what="test")
        assert fragment_text(root) == "Département | Commune\nAisne | Autreville"


def test_same_text_twice_same_id_and_hash():
    first, second = parse_text(SMALL.read_bytes()), parse_text(SMALL.read_bytes(), NOMINATIVES_INTERIEUR)
    assert first.id == second.id
    assert first.content_hash() == second.content_hash()  # the rubric is not content


def test_changed_text_changes_hash_not_id():
    changed = SMALL.read_bytes().replace(b"4 ao\xc3\xbbt 2026", b"5 ao\xc3\xbbt 2026")
    assert parse_text(changed).id == SMALL_ID
    assert parse_text(changed).content_hash() != parse_text(SMALL.read_bytes()).content_hash()


def test_rectificatif_nor_ending_in_z():
    """The small real text with its NOR made a rectificatif's (…A -> …Z), as SOURCES.md §1a describes."""
    data = SMALL.read_bytes().replace(b"<NOR>INTJ2615756A</NOR>", b"<NOR>INTJ2615756Z</NOR>")
    item = parse_text(data)
    assert item.identifiers["nor"] == "INTJ2615756Z"
    original = parse_text(SMALL.read_bytes())
    assert item.identifiers["nor_base"] == original.identifiers["nor_base"] == "INTJ2615756"
    assert item.extra["rectificatif"] is True
    assert item.is_rectificatif


def test_title_marked_rectificatif():
    data = SMALL.read_bytes().replace(b"recettes)</TITREFULL>", b"recettes) (rectificatif)</TITREFULL>")
    assert parse_text(data).extra["rectificatif"] is True


def test_decree_own_number_and_cited_texts():
    """A real décret title (gold g0350) in the small real file's envelope: its own number, what it cites."""
    title = ("Décret n° 2021-217 du 25 février 2021 modifiant les décrets n° 2020-1262 du 16 octobre 2020 et "
             "n° 2020-1310 du 29 octobre 2020 prescrivant les mesures générales")
    data = (SMALL.read_bytes().replace(b"<NATURE>ARRETE</NATURE>", b"<NATURE>DECRET</NATURE>")
            .replace(b"<NUM/>", b"<NUM>2021-217</NUM>", 1)
            .replace(parse_text(SMALL.read_bytes()).title.encode(), title.encode()))
    item = parse_text(data)
    assert item.identifiers["decret"] == item.identifiers["num"] == "2021-217"
    assert item.identifiers["cites_decret"] == "2020-1262,2020-1310"
    assert "arrete" not in item.identifiers


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE TEXTE [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<TEXTE><ID>JORFTEXT000054246001</ID><TITREFULL>&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;</TITREFULL></TEXTE>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE TEXTE [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<TEXTE><ID>JORFTEXT000054246001</ID><TITREFULL>&x;</TITREFULL></TEXTE>"""


@pytest.mark.parametrize("data", [BOMB, EXTERNAL], ids=["entity-expansion", "external-entity"])
def test_unsafe_xml_is_refused(data):
    with pytest.raises(ParseError, match="refused unsafe XML"):
        parse_text(data)


@pytest.mark.parametrize(("data", "message"), [
    (b"<TEXTE><ID>JORFTEXT0001</ID", "not well-formed"),
    (b"<TEXTE><ID>LEGITEXT000006069414</ID></TEXTE>", "without a JORFTEXT id"),
    (b"<html><body>Service indisponible</body></html>", "got <html>"),
])
def test_not_a_jorf_text(data, message):
    with pytest.raises(ParseError, match=message):
        parse_text(data)


# --- parse(): a tarball or one file -------------------------------------------------------------------------

def test_parse_accepts_a_tarball_or_one_text():
    source = jorf()
    assert [i.id for i in source.parse(reconstructed(MORNING), url=FOLDER + MORNING)] == [SMALL_ID, LARGE_ID]
    assert [i.id for i in source.parse(SMALL.read_bytes(), url="file:JORFTEXT000054246001.xml")] == [SMALL_ID]
    with pytest.raises(ParseError, match="got <JO>"):
        source.parse(SOMMAIRE.read_bytes(), url="file:JORFCONT000054245240.xml")


# --- archives -----------------------------------------------------------------------------------------------

def test_reconstructed_archives_hold_the_real_files_byte_for_byte():
    real = {path.name.split("_")[1] + ".xml": path.read_bytes() for path in (SOMMAIRE, SMALL, LARGE)}
    cont, small, large = "JORFCONT000054245240", "JORFTEXT000054246001", "JORFTEXT000054245373"
    for name, expected in ((MORNING, [cont, small, large]), (EVENING, [small, cont])):
        note, *members = dila_common.iter_members(reconstructed(name), source="jorf", archive=name)
        assert note[0] == "RECONSTRUCTED.txt" and note[1].startswith(b"RECONSTRUCTED test fixture, not a DILA")
        assert [Path(path).stem for path, _ in members] == expected
        stamp = name[len("JORFSIMPLE_"):-len(".tar.gz")]
        for path, data in members:
            assert path.startswith(f"{stamp}/jorf/simple/JORF/CONT/00/00/54/24/52/JORFCONT000054245240/")
            assert data == real[Path(path).name]


def test_build_script_rebuilds_the_committed_archives():
    spec = importlib.util.spec_from_file_location("build_jorf_tarballs",
                                                  RECONSTRUCTED / "build_jorf_tarballs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build_all()  # in memory: nothing is written
    assert sorted(built) == sorted(p.name for p in RECONSTRUCTED.glob("reconstructed_JORFSIMPLE_*.tar.gz"))
    for name in (MORNING, EVENING):
        assert gzip.decompress(built[f"reconstructed_{name}"]) == gzip.decompress(reconstructed(name))
    assert len(built[CORRUPT.name]) == len(CORRUPT.read_bytes())


def test_morning_archive_items_get_their_rubric():
    items = jorf().parse(reconstructed(MORNING), url=MORNING)
    assert [(i.id, i.rubric) for i in items] == [(SMALL_ID, NOMINATIVES_INTERIEUR),
                                                 (LARGE_ID, TEXTES_GENERAUX_INTERIEUR)]
    assert items[0] == parse_text(SMALL.read_bytes(), NOMINATIVES_INTERIEUR)


def test_sommaire_after_its_text_still_gives_the_rubric():
    items = jorf().parse(reconstructed(EVENING), url="")
    assert [(i.id, i.rubric) for i in items] == [(SMALL_ID, NOMINATIVES_INTERIEUR)]


def test_corrupt_archive_names_itself():
    with pytest.raises(ParseError, match=f"archive {MORNING} is corrupt or truncated"):
        jorf().parse(CORRUPT.read_bytes(), url=MORNING)


def test_malformed_member_is_skipped_with_a_warning():
    data = targz({"x/JORFTEXT000000000001.xml": BOMB, "x/JORFTEXT000054246001.xml": SMALL.read_bytes()})
    content = jorf().read_archive(data, archive="a.tar.gz")
    assert [i.id for i in content.items] == [SMALL_ID]
    assert content.warnings == ["archive a.tar.gz: x/JORFTEXT000000000001.xml skipped: "
                                "JORF text: refused unsafe XML (EntitiesForbidden)"]
    with pytest.raises(ParseError, match="JORFTEXT000000000001.xml skipped"):
        jorf().parse(data, url="")  # parse() is strict


@pytest.mark.parametrize(("members", "message"), [
    ({"../JORFTEXT000054246001.xml": b"<TEXTE/>"}, "unsafe member path"),
    ({"/tmp/JORFTEXT000054246001.xml": b"<TEXTE/>"}, "unsafe member path"),
    ({"x/JORFTEXT000054246001.xml": b"x" * 2000}, "is 2000 bytes"),
])
def test_unsafe_members_are_refused(members, message):
    with pytest.raises(ParseError, match=message):
        list(dila_common.iter_members(targz(members), source="jorf", archive="a.tar.gz",
                                      max_member_bytes=1000))


def test_links_and_folders_are_skipped():
    data = targz({"x/JORFTEXT000054246001.xml": SMALL.read_bytes()},
                 links={"x/JORFTEXT000000000002.xml": "/etc/passwd"})
    assert [path for path, _ in dila_common.iter_members(data, source="jorf", archive="a")] == [
        "x/JORFTEXT000054246001.xml"]


def test_archive_without_text_warns():
    data = targz({"x/JORFCONT000054245240.xml": SOMMAIRE.read_bytes()})
    content = jorf().read_archive(data, archive="a")
    assert content.items == [] and content.warnings == ["archive a holds no JORFTEXT file"]


# --- collect: listing, cursor, faults -----------------------------------------------------------------------

def test_first_run_reads_the_newest_archives_only():
    http = good_http()
    collected = jorf().collect(http, SourceState("jorf"))
    assert [(url, expect) for url, expect, _ in http.calls] == [
        (FOLDER, "listing"), (FOLDER + MORNING, "tar"), (FOLDER + EVENING, "tar")]
    assert [(i.id, i.rubric) for i in collected.items] == [(SMALL_ID, NOMINATIVES_INTERIEUR),
                                                           (LARGE_ID, TEXTES_GENERAUX_INTERIEUR)]
    assert collected.cursor == EVENING
    assert collected.etag == '"listing-1"'
    assert collected.requests == 3
    assert collected.warnings == ()


def test_first_run_archives_option():
    http = good_http()
    collected = jorf(first_run_archives=1).collect(http, SourceState("jorf"))
    assert [url for url, _, _ in http.calls] == [FOLDER, FOLDER + EVENING]
    assert [i.id for i in collected.items] == [SMALL_ID] and collected.cursor == EVENING


def test_cursor_takes_only_newer_archives():
    http = good_http()
    collected = jorf().collect(http, SourceState("jorf", cursor=MORNING, etag='"listing-0"'))
    assert [url for url, _, _ in http.calls] == [FOLDER, FOLDER + EVENING]
    assert http.calls[0][2] == '"listing-0"'  # conditional GET of the listing
    assert [i.id for i in collected.items] == [SMALL_ID]
    assert collected.cursor == EVENING


def test_nothing_new_is_a_quiet_run():
    http = good_http()
    collected = jorf().collect(http, SourceState("jorf", cursor=EVENING))
    assert collected.items == [] and collected.cursor == EVENING and collected.requests == 1


def test_listing_not_modified():
    http = good_http()
    http.listing_not_modified = True
    collected = jorf().collect(http, SourceState("jorf", cursor=EVENING, etag='"listing-1"'))
    assert collected.not_modified and collected.cursor == EVENING and collected.etag == '"listing-1"'


def test_max_archives_per_run_leaves_the_rest_for_next_run():
    http = good_http()
    collected = jorf(max_archives_per_run=1).collect(http, SourceState("jorf", cursor=OLD))
    assert [url for url, _, _ in http.calls] == [FOLDER, FOLDER + MORNING]
    assert collected.cursor == MORNING
    assert collected.etag is None  # so that the next run reads the listing again instead of getting a 304


@pytest.mark.parametrize("fault", [CORRUPT.read_bytes(), FetchError("jorf", "HTTP 503")],
                         ids=["corrupt", "fetch"])
def test_bad_archive_after_a_good_one_stops_the_cursor_before_it(fault):
    http = fake_http({MORNING: reconstructed(MORNING), EVENING: fault})
    collected = jorf().collect(http, SourceState("jorf", cursor=OLD))
    assert [i.id for i in collected.items] == [SMALL_ID, LARGE_ID]
    assert collected.cursor == MORNING  # not past the bad archive: it is tried again next run
    assert collected.etag is None
    assert len(collected.warnings) == 1 and collected.warnings[0].startswith(f"stopped at archive {EVENING}")


def test_bad_first_archive_fails_the_run():
    http = fake_http({MORNING: CORRUPT.read_bytes(), EVENING: reconstructed(EVENING)})
    with pytest.raises(ParseError, match=f"archive {MORNING} is corrupt"):
        jorf().collect(http, SourceState("jorf", cursor=OLD))
    assert [url for url, _, _ in http.calls] == [FOLDER, FOLDER + MORNING]


def test_re_delivery_in_the_same_run_is_one_item():
    collected = jorf().collect(good_http(), SourceState("jorf", cursor=OLD))
    assert [i.id for i in collected.items] == [SMALL_ID, LARGE_ID]


def test_listing_without_archives_is_an_error_not_a_quiet_day():
    http = FakeHttp({FOLDER: b"<html><body><h1>Index of /OPENDATA/JORFSIMPLE</h1></body></html>"}, folder=FOLDER)
    with pytest.raises(ParseError, match="no JORFSIMPLE"):
        jorf().collect(http, SourceState("jorf"))


@pytest.mark.parametrize(("key", "value"), [("first_run_archives", 0), ("max_archives_per_run", "3"),
                                            ("first_run_archives", True)])
def test_bad_options(key, value):
    with pytest.raises(ConfigError, match=key):
        jorf(**{key: value})


def test_options_are_declared_with_help():
    assert set(DilaJorfSource.optional) == {"first_run_archives", "max_archives_per_run"}
    assert all(len(help_) > 20 for help_ in DilaJorfSource.optional.values())
    assert DilaJorfSource.kind == "dila-jorf" and DilaJorfSource.required == {}
