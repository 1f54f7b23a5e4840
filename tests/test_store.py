"""The store's domain verbs, on an in-memory database."""

from __future__ import annotations

from datetime import date

import pytest

from store import Store
from watcher.legal.normalize import to_utc
from watcher.models import Item
from watcher.records import item_from_row, item_to_row

NOW, LATER = "2026-06-13T01:00:00Z", "2026-06-13T21:00:00Z"


def _item(title: str = "Arrêté du 12 juin 2026 relatif au retraitement des dispositifs médicaux à usage unique",
          nor: str = "SPRP2612345A", **kw: object) -> Item:
    return Item(id="jorf:JORFTEXT000054245999", source="jorf", url="https://www.legifrance.gouv.fr/jorf/id/x",
                title=title, summary="", nature="ARRETE", published=to_utc("2026-06-13"),
                identifiers={"nor": nor, "jorftext": "JORFTEXT000054245999"}, **kw)  # type: ignore[arg-type]


@pytest.fixture
def store() -> Store:
    return Store(":memory:")


def test_migrations_are_recorded_and_idempotent(store: Store) -> None:
    assert store.applied_migrations()[:3] == ["m001_items", "m002_sources", "m003_themes"]
    assert store.migrate() == []


def test_rerun_never_duplicates_and_same_content_is_unchanged(store: Store) -> None:
    first = store.upsert_items([item_to_row(_item())], NOW)
    again = store.upsert_items([item_to_row(_item())], LATER)
    assert first.new == ["jorf:JORFTEXT000054245999"] and again.new == [] and again.unchanged == 1
    assert store.count_items() == 1
    row = store.get_item("jorf:JORFTEXT000054245999")
    assert row is not None and row["first_seen"] == NOW and row["last_seen"] == LATER and row["version"] == 1


def test_changed_content_is_a_new_version_not_a_new_item(store: Store) -> None:
    store.upsert_items([item_to_row(_item())], NOW)
    result = store.upsert_items([item_to_row(_item(title="Arrêté du 12 juin 2026 (version enrichie)"))], LATER)
    assert result.changed == ["jorf:JORFTEXT000054245999"] and store.count_items() == 1
    versions = store.versions("jorf:JORFTEXT000054245999")
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["title"].endswith("à usage unique") and "enrichie" in versions[1]["title"]


def test_identifiers_are_indexed_and_fts_finds_accents_loosely(store: Store) -> None:
    store.upsert_items([item_to_row(_item())], NOW)
    assert store.find_by_identifier("nor", "SPRP2612345A") == ["jorf:JORFTEXT000054245999"]
    assert [r["id"] for r in store.search("medicaux usage")] == ["jorf:JORFTEXT000054245999"]


def test_row_round_trip_keeps_the_item(store: Store) -> None:
    item = _item(tags=("santé",), authority="Ministère de la santé", legal_date=date(2026, 6, 13))
    store.upsert_items([item_to_row(item)], NOW)
    row = store.get_item(item.id)
    assert row is not None
    back = item_from_row(row)
    assert back == item and back.content_hash() == item.content_hash()


def test_rectificatif_flag_from_nor() -> None:
    assert _item(nor="MICA2518811Z").is_rectificatif and not _item(nor="MICA2518811A").is_rectificatif


def test_source_state_failures_count_and_reset(store: Store) -> None:
    assert store.record_failure("cnil", now=NOW, error="timed out") == 1
    assert store.record_failure("cnil", now=LATER, error="500 Internal Server Error") == 2
    state = store.source_state("cnil")
    assert state["consecutive_failures"] == 2 and state["last_error"] == "500 Internal Server Error"
    store.record_success("cnil", now=LATER, etag='"abc"', last_modified=None, cursor=None)
    state = store.source_state("cnil")
    assert state["consecutive_failures"] == 0 and state["etag"] == '"abc"' and state["last_error"] == "500 Internal Server Error"


def test_human_corrections_win_over_the_model(store: Store) -> None:
    item = _item()
    store.upsert_items([item_to_row(item)], NOW)
    tag = {"theme": "health-products", "score": 0.7, "reason": "matched: dispositifs médicaux", "origin": "rule",
           "model": "m", "model_version": "1"}
    store.save_themes(item.id, item.content_hash(), [tag], now=NOW, model="m", model_version="1")
    store.add_label(item.id, "health-products", "remove", now=LATER, author="editor")
    store.add_label(item.id, "dmuu-reprocessing", "add", now=LATER, author="editor")
    store.save_themes(item.id, item.content_hash(), [tag], now=LATER, model="m", model_version="2")
    themes = {t["theme"]: t["origin"] for t in store.themes_of(item.id)}
    assert themes == {"dmuu-reprocessing": "human"}
    assert store.labelled_items()[0]["themes"] == ["dmuu-reprocessing"]


def test_items_to_classify_only_new_or_changed(store: Store) -> None:
    item = _item()
    store.upsert_items([item_to_row(item)], NOW)
    assert [r["id"] for page in store.items_to_classify() for r in page] == [item.id]
    store.save_themes(item.id, item.content_hash(), [], now=NOW, model="m", model_version="1",
                      scope_reason="health ministry text")
    assert list(store.items_to_classify()) == []
    assert store.untagged_in_scope()[0]["scope_reason"] == "health ministry text"
    store.upsert_items([item_to_row(_item(title="changed"))], LATER)
    assert [r["id"] for page in store.items_to_classify() for r in page] == [item.id]


def test_items_carry_their_current_themes_for_faceting(store: Store) -> None:
    item = _item()
    store.upsert_items([item_to_row(item)], NOW)
    tag = {"theme": "health-products", "score": 0.7, "reason": "r", "origin": "rule", "model": "m", "model_version": "1"}
    store.save_themes(item.id, item.content_hash(), [tag], now=NOW, model="m", model_version="1")
    assert store.get_item(item.id)["themes"] == ["health-products"]  # type: ignore[index]
    store.add_label(item.id, "dmuu-reprocessing", "add", now=LATER)
    assert store.get_item(item.id)["themes"] == ["dmuu-reprocessing", "health-products"]  # type: ignore[index]
    store.add_label(item.id, "health-products", "remove", now=LATER)
    assert store.get_item(item.id)["themes"] == ["dmuu-reprocessing"]  # type: ignore[index]


def test_full_text_index_follows_inserts_and_content_changes_only(store: Store) -> None:
    store.upsert_items([item_to_row(_item())], NOW)
    assert [r["id"] for r in store.search("retraitement")] == ["jorf:JORFTEXT000054245999"]
    store.upsert_items([item_to_row(_item(title="Arrêté relatif aux tarifs des actes de biologie"))], LATER)
    assert store.search("retraitement") == [] and len(store.search("biologie")) == 1
    store.upsert_items([item_to_row(_item(title="Arrêté relatif aux tarifs des actes de biologie"))], LATER)
    fts_rows = store.db.execute("select count(*) from items_fts where items_fts match 'biologie'").fetchone()[0]
    assert fts_rows == 1, "an unchanged re-delivery (last_seen touched) must not duplicate the index entry"


def test_installed_sqlite_utils_plugins_do_not_touch_the_archive_connection(monkeypatch) -> None:
    from sqlite_utils import db as sqlite_utils_db
    from sqlite_utils import plugins

    def refuse(conn: object) -> None:
        raise AssertionError("a sqlite-utils plugin hook ran on the archive's connection")

    loaded: list[bool] = []
    monkeypatch.setattr(sqlite_utils_db, "ensure_plugins_loaded", lambda: loaded.append(True))
    monkeypatch.setattr(plugins.pm.hook, "prepare_connection", refuse)
    store = Store(":memory:")
    assert store.count_items() == 0 and loaded == []
