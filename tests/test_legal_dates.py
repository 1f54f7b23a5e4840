"""Legal dates: the date a lawyer cites, checked on every DILA fixture against what the XML itself says, and the
archive's backfill (m008_alerts_legal_date, in SQL) checked against the Python rule on real and edge instants."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from store import Store
from store.schema import migrations
from watcher.legal import legal_dates
from watcher.legal.legal_dates import french, in_paris, parse_french
from watcher.models import Item
from watcher.records import item_to_row
from watcher.sources import dila_cnil, dila_jorf
from watcher.sources.dila_common import iter_members

FIXTURES = Path(__file__).parent / "fixtures"
JORF_FILES = sorted((FIXTURES / "jorf").glob("jorfsimple_JORFTEXT*.xml"))
CNIL_FILES = sorted((FIXTURES / "cnil").glob("dila_CNILTEXT*.xml"))
ARCHIVES = sorted((FIXTURES / "reconstructed").glob("reconstructed_*SIMPLE_2*.tar.gz")) + sorted(
    (FIXTURES / "reconstructed").glob("reconstructed_CNIL_*.tar.gz"))


def _tag(xml: bytes, name: str) -> str:
    found = re.search(rf"<{name}(?: [^>]*)?>([^<]*)</{name}>".encode(), xml)
    return found.group(1).decode("utf-8").strip() if found else ""


def _dila_members() -> list[tuple[str, bytes]]:
    """Every DILA text the fixtures hold: the loose files and each member of the (real-XML) archives."""
    members = [(f.name, f.read_bytes()) for f in JORF_FILES + CNIL_FILES]
    for archive in ARCHIVES:
        members += [(f"{archive.name}:{path}", data) for path, data in
                    iter_members(archive.read_bytes(), source="test", archive=archive.name)
                    if re.search(r"(JORF|CNIL)TEXT\d{12}\.xml$", path)]
    return members


def test_the_fixtures_hold_jorf_and_cnil_texts() -> None:
    names = [name for name, _ in _dila_members()]
    assert len(names) >= 6
    assert any("JORFTEXT" in n for n in names) and any("CNILTEXT" in n for n in names)


@pytest.mark.parametrize(("name", "xml"), _dila_members(), ids=lambda v: v if isinstance(v, str) else "")
def test_legal_date_is_what_the_dila_xml_says(name: str, xml: bytes) -> None:
    if b"<TEXTE_CNIL" in xml[:200]:
        row = item_to_row(dila_cnil.parse_text(xml))
        # a délibération is cited by its own date: DATE_TEXTE, also spelled in its title
        assert row["legal_date"] == _tag(xml, "DATE_TEXTE")
        assert parse_french(_tag(xml, "TITRE")) == date.fromisoformat(row["legal_date"])
        published = datetime.fromisoformat(row["published"].replace("Z", "+00:00"))
        assert in_paris(published) == date.fromisoformat(_tag(xml, "DATE_PUBLI"))  # the exact instant stays
        return
    row = item_to_row(dila_jorf.parse_text(xml))
    assert row["legal_date"] == _tag(xml, "DATE_PUBLI"), name
    origine = _tag(xml, "ORIGINE_PUBLI")
    if origine:  # "JORF n°0137 du 13 juin 2026"
        assert parse_french(origine) == date.fromisoformat(row["legal_date"])
        assert french(row["legal_date"]) in origine
    # the exact instant stays beside it: midnight in Paris, the evening before in UTC
    assert row["published"] < row["legal_date"]


def test_the_catnat_arrete_of_the_issue_is_dated_13_june_not_12() -> None:
    xml = (FIXTURES / "jorf" / "jorfsimple_JORFTEXT000054245373_arrete_catnat_large_600KB.xml").read_bytes()
    row = item_to_row(dila_jorf.parse_text(xml))
    assert row["published"] == "2026-06-12T22:00:00Z"
    assert row["legal_date"] == "2026-06-13"
    assert french(row["legal_date"]) == "13 juin 2026"


def test_french_and_english_spelling() -> None:
    assert french("2026-06-01") == "1er juin 2026"
    assert french(date(2026, 8, 15)) == "15 août 2026"
    assert legal_dates.english("2026-06-13") == "13 June 2026"
    assert legal_dates.spoken("2026-12-31", "fr") == "31 décembre 2026"
    assert french("") == "" and french(None) == ""
    assert parse_french("JORF n°0001 du 1er janvier 2026") == date(2026, 1, 1)
    assert parse_french("Décret du 31 fevrier 2026") is None  # no such day: no date rather than a wrong one


@pytest.mark.parametrize(("instant", "expected"), [
    ("2026-06-12T21:59:59Z", "2026-06-12"), ("2026-06-12T22:00:00Z", "2026-06-13"),  # summer: UTC+2
    ("2026-01-15T22:30:00Z", "2026-01-15"), ("2026-01-15T23:00:00Z", "2026-01-16"),  # winter: UTC+1
    ("2026-03-29T00:59:59Z", "2026-03-29"), ("2026-03-28T23:00:00Z", "2026-03-29"),  # the March change
    ("2026-10-24T22:00:00Z", "2026-10-25"), ("2026-10-25T22:59:00Z", "2026-10-25"),  # the October change
    ("2025-10-26T00:30:00Z", "2025-10-26"), ("2025-03-30T22:00:00Z", "2025-03-31"),
])
def test_a_post_is_dated_by_its_publication_day_in_paris(instant: str, expected: str) -> None:
    published = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    item = Item(id="feed:x", source="feed", url="https://example.org/x", title="x", published=published)
    assert item_to_row(item)["legal_date"] == expected
    assert in_paris(published) == date.fromisoformat(expected)


def _old_row(item_id: str, published: str, nature: str, identifiers: dict[str, str]) -> tuple[object, ...]:
    return (item_id, "src", "https://example.org/", "t", published, nature, json.dumps(identifiers), "h")


def test_the_migration_backfills_legal_date_and_nature_like_the_code(tmp_path: Path) -> None:
    """An archive written before m008: its rows get the same legal date and kind of act a new row gets."""
    path = tmp_path / "old.db"
    old = Store(path, migrate=False)
    migrations.apply(old.db, stop_before="m008_alerts_legal_date")
    items: list[Item] = [dila_jorf.parse_text(f.read_bytes()) for f in JORF_FILES]
    items += [dila_cnil.parse_text(f.read_bytes()) for f in CNIL_FILES]
    instants = ["2026-06-12T21:59:59Z", "2026-06-12T22:00:00Z", "2026-01-15T23:00:00Z", "2026-03-29T00:59:59Z",
                "2026-03-29T01:00:00Z", "2026-10-25T00:59:59Z", "2026-10-25T01:00:00Z", "2024-02-29T23:30:00Z"]
    natures = ["actualite", "information de securite", "article", "algorithme", "DECRET", "rappel", "", "LOI"]
    items += [Item(id=f"feed:{n}", source="feed", url="https://example.org/", title="t", nature=natures[n],
                   published=datetime.fromisoformat(i.replace("Z", "+00:00")).astimezone(UTC))
              for n, i in enumerate(instants)]
    expected = {item.id: item_to_row(item) for item in items}
    old.db.conn.executemany(
        "insert into items (id, source, url, title, published, nature, identifiers, content_hash) "
        "values (?, ?, ?, ?, ?, ?, ?, ?)",
        [_old_row(r["id"], r["published"], r["nature_raw"], r["identifiers"]) for r in expected.values()])
    old.close()
    store = Store(path)
    assert "m008_alerts_legal_date" in store.applied_migrations()
    for row in store.db.query("select id, legal_date, nature, nature_raw from items"):
        want = expected[row["id"]]
        assert (row["legal_date"], row["nature"], row["nature_raw"]) == (
            want["legal_date"], want["nature"], want["nature_raw"]), row["id"]
    store.close()
