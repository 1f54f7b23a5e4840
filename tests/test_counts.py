"""The counts the archive keeps (``store.counts``) stay equal to a ``COUNT(*) ... GROUP BY`` over the rows, on a real
archive (the demo recordings stored and classified), after inserts, re-classification, corrections, new versions,
deletions, and when the migration counts an archive stored before it existed; and the pages of watcher's Datasette
that read them show the right items and counts, a search ranked by relevance."""

from __future__ import annotations

import asyncio
import html
import re
import sqlite3
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from archive_support import copy_archive, write_config

from store import Store, counts
from store import store as store_module
from watcher.config import load_config
from watcher.legal.normalize import to_utc
from watcher.models import Item
from watcher.records import item_to_row
from watcher.search.fulltext import register_sql_functions
from watcher.web import build_datasette
from watcher.web import facets as facets_module

NOW = "2026-09-01T08:00:00Z"
COLUMNS = ("source", "nature", "authority", "lang")


def grouped(conn: sqlite3.Connection) -> Counter[tuple[str, str, str]]:
    """Every count as GROUP BY queries compute it from ``items`` and ``item_themes`` (not from ``items.themes``,
    which the kept counts read)."""
    out: Counter[tuple[str, str, str]] = Counter()
    out["", "total", ""] = conn.execute("select count(*) from items").fetchone()[0]
    month = "substr(i.legal_date, 1, 7)"
    dated = f"i.legal_date glob '{counts.MONTH_GLOB}'"
    for facet, expr, where in [*((c, f"i.{c}", f"i.{c} is not null") for c in COLUMNS), ("month", month, dated)]:
        for value, n in conn.execute(f"select {expr}, count(*) from items i where {where} group by 1"):
            out["", facet, value] = n
        for theme, value, n in conn.execute(f"select t.theme, {expr}, count(*) from items i join item_themes t "
                                            f"on t.item_id = i.id where {where} group by 1, 2"):
            out[theme, facet, value] = n
    for theme, n in conn.execute("select theme, count(*) from item_themes group by theme"):
        out["", "theme", theme] = out[theme, "total", ""] = n
    for theme, other, n in conn.execute("select a.theme, b.theme, count(*) from item_themes a join item_themes b "
                                        "on a.item_id = b.item_id group by 1, 2"):
        out[theme, "theme", other] = n
    return out


def kept(conn: sqlite3.Connection) -> Counter[tuple[str, str, str]]:
    return Counter({(scope, facet, value): n for scope, facet, value, n in
                    conn.execute("select scope, facet, value, n from item_counts where n != 0")})


@pytest.fixture
def store(tmp_path: Path, archive_built: Path) -> Store:
    return Store(copy_archive(archive_built, tmp_path))


def _item(n: int, **kw: object) -> Item:
    fields: dict[str, object] = {"id": f"jorf:JORFTEXT0000999990{n:02d}", "source": "jorf",
                                 "url": f"https://www.legifrance.gouv.fr/jorf/id/x{n}",
                                 "title": f"Arrêté n° {n} relatif à l'hébergement de données de santé",
                                 "summary": "", "nature": "arrete", "published": to_utc("2026-06-13"),
                                 "legal_date": date(2026, 6, 13), "authority": "Ministère de la santé", **kw}
    return Item(**fields)  # type: ignore[arg-type]


def test_the_demo_archive_counts_what_group_by_counts(store: Store) -> None:
    expected = grouped(store.db.conn)
    assert expected["", "total", ""] > 500 and sum(n for (s, f, _), n in expected.items() if s and f == "total") > 100
    assert kept(store.db.conn) == expected
    assert counts.total(store.db.conn) == store.count_items()


def test_counts_follow_inserts_classification_corrections_versions_and_deletions(store: Store) -> None:
    conn = store.db.conn
    store.upsert_items([item_to_row(_item(n)) for n in range(3)] + [item_to_row(_item(9, legal_date=None))], NOW)
    assert kept(conn) == grouped(conn)
    store.save_themes(_item(0).id, "h", [{"theme": "health-data", "score": 0.9, "reason": "r", "origin": "rule",
                                          "model": "m", "model_version": "1"},
                                         {"theme": "personal-data", "score": 0.8, "reason": "r", "origin": "rule",
                                          "model": "m", "model_version": "1"}], now=NOW, model="m", model_version="1")
    assert kept(conn) == grouped(conn)
    # re-classified: one theme dropped, another given
    store.save_themes(_item(0).id, "h", [{"theme": "ai", "score": 0.7, "reason": "r", "origin": "model",
                                          "model": "m", "model_version": "2"}], now=NOW, model="m", model_version="2")
    store.add_label(_item(1).id, "dmuu-reprocessing", "add", now=NOW)
    store.add_label(_item(0).id, "ai", "remove", now=NOW)
    assert kept(conn) == grouped(conn)
    # a new version changes the kind of act and the legal date
    changed = store.upsert_items([item_to_row(_item(1, nature="decret", legal_date=date(2025, 1, 2)))], NOW)
    assert changed.changed == [_item(1).id]
    assert kept(conn) == grouped(conn)
    before = kept(conn)
    tagged = conn.execute("select item_id from item_themes limit 1").fetchone()[0]
    with store.transaction():
        for table in ("item_themes", "classifications", "identifiers", "item_versions", "labels", "delivery_items",
                      "newsletter_entries", "newsletter_issue_items"):
            conn.execute(f"delete from {table} where item_id in (?, ?)", [tagged, _item(2).id])
        conn.execute("delete from items where id in (?, ?)", [tagged, _item(2).id])
    assert kept(conn) == grouped(conn) != before


def test_the_migration_counts_an_archive_stored_before_it(tmp_path: Path, archive_built: Path) -> None:
    database = copy_archive(archive_built, tmp_path)
    conn = sqlite3.connect(database)
    with conn:
        conn.execute("drop table item_counts")
        conn.execute("drop trigger item_counts_delete")
        conn.execute("delete from _sqlite_migrations where name = 'm009_counts'")
        conn.execute("update items set legal_date = '2020-02-02' where rowid % 7 = 0")  # nothing counts this
    conn.close()
    store = Store(database)
    assert "m009_counts" in store.applied_migrations()
    assert kept(store.db.conn) == grouped(store.db.conn)
    store.upsert_items([item_to_row(_item(5))], NOW)  # and the store keeps them from then on
    assert kept(store.db.conn) == grouped(store.db.conn)


# --- the pages that read them, through watcher's Datasette -----------------------------------------------------

@pytest.fixture
def web(tmp_path: Path, archive_built: Path) -> tuple[Any, Path]:
    database = copy_archive(archive_built, tmp_path / "db")
    return build_datasette(load_config(write_config(tmp_path, database))), database


def _get(ds: Any, path: str) -> Any:
    response = asyncio.run(ds.client.get(path))
    assert response.status_code == 200, response.text[:500]
    return response


def _facets(data: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {name: {r["value"]: r["count"] for r in facet["results"]} for name, facet in data["facet_results"].items()}


@pytest.mark.parametrize("theme", ["ai", "health-products"])  # 70 and 7 items of 553: walked by date / rare
def test_theme_page_shows_the_theme_items_and_their_exact_counts(web: tuple[Any, Path], theme: str) -> None:
    ds, database = web
    conn = sqlite3.connect(database)
    members = {r[0] for r in conn.execute("select item_id from item_themes where theme = ?", [theme])}
    by_source = dict(conn.execute("select i.source, count(*) from items i join item_themes t on t.item_id = i.id "
                                  "where t.theme = ? group by 1", [theme]).fetchall())
    with_theme = dict(conn.execute("select b.theme, count(*) from item_themes a join item_themes b "
                                   "on a.item_id = b.item_id where a.theme = ? group by 1", [theme]).fetchall())
    data = _get(ds, f"/watcher/items.json?_theme={theme}&_shape=objects&_size=max").json()
    assert {r["id"] for r in data["rows"]} == members and data["filtered_table_rows_count"] == len(members)
    facets = _facets(data)
    assert facets["source"] == by_source and facets["themes"] == with_theme
    assert sum(facets["legal_date"].values()) <= len(members)
    page = html.unescape(_get(ds, f"/watcher/items?_theme={theme}").text)
    assert f"{len(members):,} rows" in page and f'theme is "{theme}"' in page
    first = _get(ds, f"/watcher/items.json?_theme={theme}&_size=5").json()
    further = _get(ds, first["next_url"].replace("http://localhost", "")).json()  # a page further down
    assert further["rows"] and not {r[0] for r in further["rows"]} & {r[0] for r in first["rows"]}
    assert _facets(further) == _facets(first) and further["filtered_table_rows_count"] == len(members)
    dated = [r[-2] for r in first["rows"] + further["rows"]]  # legal_date, newest first across the pages
    assert dated == sorted(dated, reverse=True)
    # the page reads the kept counts (it does not count at each request): a changed kept count shows
    source = min(by_source)
    conn.execute("update item_counts set n = n + 1000 where scope = ? and facet = 'source' and value = ?",
                 [theme, source])
    conn.commit()
    conn.close()
    again = _facets(_get(ds, f"/watcher/items.json?_theme={theme}").json())
    assert again["source"][source] == by_source[source] + 1000


def test_whole_archive_page_counts_are_the_group_by_counts(web: tuple[Any, Path]) -> None:
    ds, database = web
    conn = sqlite3.connect(database)
    total = conn.execute("select count(*) from items").fetchone()[0]
    natures = dict(conn.execute("select nature, count(*) from items where nature is not null group by 1"))
    themes = dict(conn.execute("select theme, count(*) from item_themes group by 1"))
    conn.close()
    data = _get(ds, "/watcher/items.json?_facet_size=max").json()
    assert data["filtered_table_rows_count"] == total
    facets = _facets(data)
    assert facets["nature"] == natures and facets["themes"] == themes


def test_search_is_ranked_by_relevance_with_the_counts_of_its_matches(web: tuple[Any, Path]) -> None:
    ds, database = web
    conn = sqlite3.connect(database)
    register_sql_functions(conn)
    text = "données de santé"
    ranked = [r[0] for r in conn.execute("select items.id from items_fts join items on items.rowid = items_fts.rowid "
                                         "where items_fts match watcher_fts(?) order by rank, items.rowid desc",
                                         [text])]
    by_source = dict(conn.execute("select source, count(*) from items where rowid in (select rowid from items_fts "
                                  "where items_fts match watcher_fts(?)) group by 1", [text]).fetchall())
    conn.close()
    assert 20 < len(ranked) < facets_module.SEARCH_FACET_SAMPLE
    data = _get(ds, f"/watcher/items.json?_search={quote(text)}&_shape=objects&_size=20").json()
    assert [r["id"] for r in data["rows"]] == ranked[:20]  # best first, by FTS5's bm25
    assert data["filtered_table_rows_count"] == len(ranked) and data["next"] is None
    assert _facets(_get(ds, f"/watcher/items.json?_search={quote(text)}").json())["source"] == by_source
    page = html.unescape(_get(ds, f"/watcher/items?_search={quote(text)}").text)
    assert f"{len(ranked):,} rows where search matches" in page and "best matches first" in page
    assert "sorted by legal_date" not in page
    # sorted by date on request: every match, page by page
    dated = _get(ds, f"/watcher/items.json?_search={quote(text)}&_sort_desc=legal_date&_size=20").json()
    assert dated["next"] and dated["filtered_table_rows_count"] == len(ranked)


def test_a_search_past_the_caps_says_at_least(web: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    ds, database = web
    monkeypatch.setattr(facets_module, "SEARCH_COUNT_CAP", 30)
    monkeypatch.setattr(facets_module, "SEARCH_FACET_SAMPLE", 10)
    page = html.unescape(_get(ds, "/watcher/items?_search=donn%C3%A9es").text)
    assert "≥ 30 rows where search matches" in page
    counts_shown = re.findall(r"</a> (≥ )?([\d,]+)</li>", page)
    assert counts_shown and all(at_least for at_least, _ in counts_shown)
    data = _get(ds, "/watcher/items.json?_search=donn%C3%A9es").json()
    assert data["filtered_table_rows_count"] == 30
    assert all(sum(f.values()) <= 10 for name, f in _facets(data).items() if name != "themes")


def test_a_search_with_more_matches_than_the_window_ranks_the_newest(store: Store,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    conn = store.db.conn
    register_sql_functions(conn)
    match = '"données"'
    newest = [r[0] for r in conn.execute("select rowid from items_fts where items_fts match ? order by rowid desc "
                                         "limit 7", [match])]
    by_rank = [r[0] for r in conn.execute("select items.id from items_fts join items on items.rowid = items_fts.rowid "
                                          f"where items_fts match ? and items_fts.rowid >= {min(newest)} "
                                          "order by rank, items.rowid desc", [match])]
    monkeypatch.setattr(store_module, "RANK_WINDOW", 7)
    assert store.search_ids(match, limit=5) == by_rank[:5]  # the 5 best of the 7 stored last, best first
    monkeypatch.setattr(store_module, "RANK_WINDOW", 100_000)
    everything = [r[0] for r in conn.execute("select items.id from items_fts join items on items.rowid = "
                                             "items_fts.rowid where items_fts match ? order by rank, items.rowid desc",
                                             [match])]
    assert store.search_ids(match, limit=5) == everything[:5]
