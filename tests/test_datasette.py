"""The researchers' archive and the editors' pages in Datasette (``watcher.web``), on a real archive, through
Datasette's own ASGI client: what a visitor sees and may not see, the item page, facets, canned queries with
parameters, Atom feeds checked against RFC 4287 and parsed by feedparser, the editor's login and conflicts."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import feedparser
import numpy as np
import pytest
from archive_support import EDITOR_PASSWORD, copy_archive, write_config
from datasette.app import Datasette
from datasette.utils import tilde_encode
from datasette_auth_passwords.utils import hash_password
from markupsafe import escape

from store import Store
from watcher.config import load_config
from watcher.legal import legal_dates
from watcher.newsletter.service import Newsletter
from watcher.web import build_datasette, password_variable

ATOM = "{http://www.w3.org/2005/Atom}"
DELIBERATION = "cnil:CNILTEXT000054047151"


class Client:
    """Datasette's ASGI client with a cookie jar and the CSRF token of the last page read."""

    def __init__(self, ds: Datasette):
        self.ds, self.cookies, self.token = ds, {}, ""

    def get(self, path: str) -> Any:
        response = asyncio.run(self.ds.client.get(path, cookies=self.cookies))
        self.cookies.update(response.cookies)
        found = re.search(r'name="csrftoken" value="([^"]+)"', response.text)
        self.token = found.group(1) if found else self.token
        return response

    def post(self, path: str, data: dict[str, str]) -> Any:
        response = asyncio.run(self.ds.client.post(path, data={**data, "csrftoken": self.token},
                                                   cookies=self.cookies))
        self.cookies.update(response.cookies)
        return response

    def login(self, user: str = "alice", password: str = EDITOR_PASSWORD) -> Any:
        self.get("/-/login")
        return self.post("/-/login", {"username": user, "password": password})


@pytest.fixture
def archive(tmp_path: Path, archive_built: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Datasette, Path]:
    database = copy_archive(archive_built, tmp_path / "db")
    config = load_config(write_config(tmp_path, database))
    monkeypatch.setenv(password_variable("alice"), hash_password(EDITOR_PASSWORD))
    monkeypatch.setenv(password_variable("bruno"), hash_password(EDITOR_PASSWORD))
    return build_datasette(config, editors=("alice", "bruno")), database


@pytest.fixture
def ds(archive: tuple[Datasette, Path]) -> Datasette:
    return archive[0]


def _json(ds: Datasette, path: str) -> Any:
    response = asyncio.run(ds.client.get(path))
    assert response.status_code == 200, response.text[:500]
    return response.json()


def test_home_opens_on_items_and_lists_only_public_tables(ds: Datasette) -> None:
    client = Client(ds)
    assert client.get("/").headers["location"] == "/watcher/items"
    listed = {t["name"] for t in _json(ds, "/watcher.json")["tables"] if not t["hidden"]}
    assert listed == {"items", "item_themes", "identifiers", "item_versions", "sources", "fetch_log",
                      "newsletter_issues", "newsletter_issue_items"}
    page = client.get("/watcher/items").text
    assert 'class="rows-and-columns watcher-items"' in page and "<th scope=\"col\">nature de l&#39;acte</th>" in page  # French by default


@pytest.mark.parametrize("path", [
    "/watcher/newsletter_drafts", "/watcher/newsletter_entries", "/watcher/newsletter_subscribers",
    "/watcher/deliveries", "/watcher/delivery_items", "/watcher/subscriptions", "/watcher/labels",
    "/watcher/newsletter_subscribers.json", "/watcher.db",
    "/watcher?sql=select+email+from+newsletter_subscribers", "/watcher.json?sql=select+1",
    "/-/newsletter", "/-/newsletter/draft/1", "/-/newsletter/draft/1/preview",
])
def test_private_pages_refuse_a_visitor(ds: Datasette, path: str) -> None:
    response = asyncio.run(ds.client.get(path))
    assert response.status_code == 403, (path, response.status_code)


def test_a_visitor_cannot_post_to_the_editor_pages(ds: Datasette) -> None:
    client = Client(ds)
    client.get("/watcher/items")
    assert client.post("/-/newsletter/build", {"week": "2026-W30"}).status_code == 403


def test_full_text_search_in_french_ignores_accents(ds: Datasette) -> None:
    data = _json(ds, "/watcher/items.json?_search=d%C3%A9lib%C3%A9ration%20solvabilite&_shape=objects")
    assert [r["id"] for r in data["rows"]] == [DELIBERATION]


def test_item_page_shows_themes_with_score_reason_origin_identifiers_versions_and_links(
        archive: tuple[Datasette, Path]) -> None:
    ds, database = archive
    store = Store(database)  # the keyword classifier missed it; a person adds the theme (`watcher label`)
    store.add_label(DELIBERATION, "personal-data", "add", now="2026-08-21T08:00:00Z", author="alice")
    store.close()
    page = Client(ds).get("/watcher/items/cnil~3ACNILTEXT000054047151").text
    themes = re.search(r'<table class="rows-and-columns watcher-themes">(.*?)</table>', page, re.S)
    assert themes is not None
    assert "Protection des données personnelles" in themes.group(1) and 'class="origin">juriste<' in themes.group(1)
    assert 'class="score">1,00<' in themes.group(1) and 'title="confirmed by alice">confirmé par un juriste<' in themes.group(1)
    # every identifier links to its official page, or to the official search for it (a NOR: Légifrance's)
    assert re.search(r'<strong>nor</strong> <a href="https://www\.legifrance\.gouv\.fr/search/[^"]*CNIS2611643X[^"]*">'
                     r'CNIS2611643X</a>', page)
    assert '<strong>cnil</strong> <a href="https://www.legifrance.gouv.fr/cnil/id/CNILTEXT000054047151">' in page
    assert 'href="https://www.legifrance.gouv.fr/cnil/id/CNILTEXT000054047151"' in page
    assert 'href="/-/atom/theme/personal-data.atom"' in page
    assert "watcher-versions" in page and "/watcher/all_versions_of_an_item?item=cnil%3ACNILTEXT000054047151" in page
    assert "Links from other tables" not in page  # counts of private rows are not shown


def test_facets_by_theme_source_kind_authority_language_and_month(ds: Datasette) -> None:
    facets = _json(ds, "/watcher/items.json?_shape=objects")["facet_results"]
    assert {"themes", "source", "nature", "authority", "lang", "legal_date"} <= set(facets)
    themes = {r["value"]: r["count"] for r in facets["themes"]["results"]}
    assert {"personal-data", "ai", "health-data", "health-products"} <= set(themes)
    ai = next(r for r in facets["themes"]["results"] if r["value"] == "ai")
    chosen = _json(ds, ai["toggle_url"].replace("http://localhost", "").replace("items?", "items.json?"))
    assert chosen["filtered_table_rows_count"] == themes["ai"] and "_theme=ai" in ai["toggle_url"]
    both = _json(ds, "/watcher/items.json?_theme=ai&_theme=personal-data&_shape=objects&_size=max")
    assert both["rows"] and all({"ai", "personal-data"} <= set(json.loads(r["themes"])) for r in both["rows"])
    months = [r["value"] for r in facets["legal_date"]["results"]]
    assert facets["legal_date"]["type"] == "month" and months == sorted(months, reverse=True)
    assert all(re.fullmatch(r"\d{4}-\d{2}", m) for m in months)
    chosen = facets["legal_date"]["results"][0]
    filtered = _json(ds, chosen["toggle_url"].replace("http://localhost", "").replace("items?", "items.json?"))
    assert filtered["filtered_table_rows_count"] == chosen["count"]


def test_canned_queries_take_a_theme_from_the_list_and_a_date_range(ds: Datasette) -> None:
    form = Client(ds).get("/watcher/this_week_by_theme").text
    options = re.findall(r'<option value="([a-z-]+)"', form)
    assert options == ["health-data", "ai", "dmuu-reprocessing", "personal-data", "health-products"]
    assert 'type="date" id="qp2" name="since"' in form
    rows = _json(ds, "/watcher/this_week_by_theme.json?theme=ai&since=2026-07-20&until=2026-07-26&_shape=objects")["rows"]
    assert rows and all("2026-07-20" <= r["date"] <= "2026-07-26" for r in rows)
    assert all(r["reason"] and r["score"] > 0 for r in rows)


def test_source_health_and_all_versions_of_an_item(archive: tuple[Datasette, Path]) -> None:
    ds, database = archive
    health = {r["source"]: r for r in _json(ds, "/watcher/source_health.json?_shape=objects")["rows"]}
    assert health["eurlex-oj"]["consecutive_failures"] == 1 and "bot wall" in health["eurlex-oj"]["last_error"]
    assert health["cnil"]["items"] == 500
    store = Store(database)
    item = store.get_item(DELIBERATION)
    assert item is not None
    store.upsert_items([{**item, "title": item["title"] + " (rectifié)", "content_hash": "edited"}],
                       "2026-08-21T08:00:00Z")
    store.close()
    rows = _json(ds, "/watcher/all_versions_of_an_item.json?item=" + DELIBERATION + "&_shape=objects")["rows"]
    assert [r["version"] for r in rows] == [1, 2] and rows[1]["title"].endswith("(rectifié)")


def _check_rfc4287(body: bytes) -> ET.Element:
    root = ET.fromstring(body)
    assert root.tag == f"{ATOM}feed"
    for element in [root, *root.findall(f"{ATOM}entry")]:
        for tag in ("id", "title", "updated"):
            assert (element.findtext(f"{ATOM}{tag}") or "").strip(), (element.tag, tag)
        datetime.fromisoformat(element.findtext(f"{ATOM}updated").replace("Z", "+00:00"))
        assert element.find(f"{ATOM}link") is not None
    assert root.find(f"{ATOM}author/{ATOM}name") is not None
    ids = [e.findtext(f"{ATOM}id") for e in root.findall(f"{ATOM}entry")]
    assert len(ids) == len(set(ids))
    return root


def test_theme_feed_is_valid_atom(ds: Datasette) -> None:
    response = asyncio.run(ds.client.get("/-/atom/theme/personal-data.atom"))
    assert response.headers["content-type"].startswith("application/atom+xml")
    root = _check_rfc4287(response.content)
    assert root.find(f"{ATOM}link[@rel='self']").get("href") == "http://localhost/-/atom/theme/personal-data.atom"
    feed = feedparser.parse(response.content)
    assert not feed.bozo and len(feed.entries) == 50
    assert all(any(t.term == "personal-data" for t in e.tags) for e in feed.entries)
    dates = [e.published for e in feed.entries if "published" in e]
    assert dates == sorted(dates, reverse=True)
    assert asyncio.run(ds.client.get("/-/atom/theme/no-such-theme.atom")).status_code == 404


def test_any_items_search_is_a_feed(ds: Datasette) -> None:
    page = Client(ds).get("/watcher/items?_search=deliberation+solvabilite").text
    assert 'href="/watcher/items.atom?_search=deliberation+solvabilite"' in page
    response = asyncio.run(ds.client.get("/watcher/items.atom?_search=deliberation+solvabilite"))
    root = _check_rfc4287(response.content)
    assert root.findtext(f"{ATOM}title") == "watcher — search « deliberation solvabilite »"
    feed = feedparser.parse(response.content)
    assert not feed.bozo and [e.id for e in feed.entries] == [
        "http://localhost/watcher/items/cnil~3ACNILTEXT000054047151"]
    assert feed.entries[0].link == "https://www.legifrance.gouv.fr/cnil/id/CNILTEXT000054047151"


def test_editor_logs_in_and_sees_private_tables_and_drafts(ds: Datasette) -> None:
    client = Client(ds)
    assert client.login(password="wrong").status_code == 401 and "ds_actor" not in client.cookies
    assert client.login().status_code == 302 and "ds_actor" in client.cookies
    assert client.get("/watcher/newsletter_subscribers").status_code == 200
    assert client.get("/-/newsletter").status_code == 200
    built = client.post("/-/newsletter/build", {"week": "2026-W30"})
    assert built.status_code == 302 and built.headers["location"] == "/-/newsletter/draft/1"
    page = client.get("/-/newsletter/draft/1").text
    assert 'name="version" value="1"' in page and "eurlex-oj" in page  # health notes, for editors


def test_two_editors_on_one_draft_the_stale_one_gets_a_conflict(archive: tuple[Datasette, Path]) -> None:
    ds, database = archive
    alice, bruno = Client(ds), Client(ds)
    alice.login("alice")
    bruno.login("bruno")
    alice.post("/-/newsletter/build", {"week": "2026-W30"})
    alice.get("/-/newsletter/draft/1")
    bruno.get("/-/newsletter/draft/1")
    saved = alice.post("/-/newsletter/draft/1", {"version": "1", "action": "save", "introduction": "Alice"})
    assert saved.status_code == 302
    stale = bruno.post("/-/newsletter/draft/1", {"version": "1", "action": "save", "introduction": "Bruno"})
    assert stale.status_code == 409
    assert "was changed by alice since you opened it" in stale.text and "Bruno" in stale.text
    config = load_config(write_config(database.parent.parent, database))
    draft, _ = Newsletter(Store(database), config).draft(1)
    assert draft["introduction"] == "Alice" and draft["version"] == 2


def test_unsubscribe_link_works_without_login(archive: tuple[Datasette, Path]) -> None:
    ds, database = archive
    letter = Newsletter(Store(database), load_config(write_config(database.parent.parent, database)))
    letter.add_subscribers([("Alice", "alice@cabinet-test.fr")], datetime(2026, 7, 27, tzinfo=UTC), origin="test")
    token = letter.store.subscribers()[0]["token"]
    client = Client(ds)
    assert "alice@cabinet-test.fr" in client.get(f"/-/newsletter/unsubscribe?token={token}").text
    done = client.post("/-/newsletter/unsubscribe", {"token": token})
    assert "Vous êtes désabonné" in done.text and letter.store.subscribers() == []
    assert client.get("/-/newsletter/unsubscribe?token=forged").status_code == 404


def test_one_click_unsubscribe_from_the_mail_client(archive: tuple[Datasette, Path]) -> None:
    ds, database = archive
    letter = Newsletter(Store(database), load_config(write_config(database.parent.parent, database)))
    letter.add_subscribers([("Bruno", "bruno@cabinet-test.fr")], datetime(2026, 7, 27, tzinfo=UTC), origin="test")
    token = letter.store.subscribers()[0]["token"]
    response = asyncio.run(ds.client.post(f"/-/newsletter/unsubscribe?token={token}",
                                          data={"List-Unsubscribe": "One-Click"}))  # RFC 8058: no form, no cookie
    assert response.status_code == 200 and letter.store.subscribers() == []


def test_the_plugin_leaves_other_datasettes_of_the_process_alone(archive: tuple[Datasette, Path]) -> None:
    _, database = archive  # the plugin is registered (process-wide) by build_datasette
    plain = Datasette(files=[str(database)])
    assert asyncio.run(plain.client.get("/watcher.json?sql=select+1")).status_code == 200
    assert asyncio.run(plain.client.get("/watcher/newsletter_subscribers.json")).status_code == 200
    assert asyncio.run(plain.client.get("/-/newsletter")).status_code == 404
    assert asyncio.run(plain.client.get("/")).status_code == 200  # Datasette's own home page


def _axis(*weights: float, dim: int = 384) -> np.ndarray:
    """A hand-made unit vector with ``weights`` on the first axes (no model: the cosines are known in advance)."""
    vector = np.zeros(dim, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


def test_item_page_lists_similar_items_from_stored_embeddings_and_nothing_without(
        archive: tuple[Datasette, Path]) -> None:
    ds, database = archive
    store = Store(database)
    near, far, other = [r[0] for r in store.db.execute(
        "select id from items where id != ? order by id limit 3", [DELIBERATION])]
    # cosines to the deliberation: near 0.98, far 0.5 (below the floor), other has no embedding
    store.vectors.save([(DELIBERATION, _axis(1.0)), (near, _axis(1.0, 0.2)), (far, _axis(1.0, 1.732))],
                       model="hand-made/unit-axes")
    shown = store.get_item(near) or {}
    store.close()
    client = Client(ds)
    page = client.get("/watcher/items/cnil~3ACNILTEXT000054047151").text
    listed = re.search(r'<ul class="watcher-similar">(.*?)</ul>', page, re.S)
    assert listed is not None and "<h2>Textes proches</h2>" in page
    assert f'href="/watcher/items/{tilde_encode(near)}"' in listed.group(1)
    assert str(escape(shown["title"])) in listed.group(1) and shown["source"] in listed.group(1)
    assert shown["legal_date"] and legal_dates.french(shown["legal_date"]) in listed.group(1)  # in words
    assert tilde_encode(far) not in listed.group(1) and tilde_encode(DELIBERATION) not in listed.group(1)
    without = client.get(f"/watcher/items/{tilde_encode(other)}")
    assert without.status_code == 200 and "watcher-similar" not in without.text


def test_item_page_without_the_embeddings_table_shows_no_similar_items(archive: tuple[Datasette, Path]) -> None:
    ds, database = archive
    store = Store(database)
    store.db["item_embeddings"].drop()  # an archive whose embeddings are unavailable
    store.close()
    page = Client(ds).get("/watcher/items/cnil~3ACNILTEXT000054047151")
    assert page.status_code == 200 and "watcher-versions" in page.text and "watcher-similar" not in page.text
