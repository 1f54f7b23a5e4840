"""Researchers' view: Datasette on a real archive, with full-text search and facets by theme, source and date."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from datasette.app import Datasette

from store import METADATA_PATH, Store
from watcher.models import Item
from watcher.normalize import to_utc
from watcher.records import item_to_row


def _seed(path: Path) -> None:
    store = Store(path)
    items = [
        Item(id="cnil:1", source="cnil", url="https://cnil.fr/fr/a", title="Entrepôts de données de santé : la CNIL "
             "publie un référentiel", published=to_utc("2026-05-02"), nature="actualite"),
        Item(id="ansm:1", source="ansm-securite", url="https://ansm.sante.fr/b", title="Rappel de lots de Phosphalugel",
             published=to_utc("2026-06-01"), nature="rappel"),
    ]
    store.upsert_items([item_to_row(i) for i in items], "2026-06-02T00:00:00Z")
    for item, themes in zip(items, (["health-data", "personal-data"], ["health-products"]), strict=True):
        tags = [{"theme": t, "score": 0.9, "reason": "matched", "origin": "rule", "model": "m", "model_version": "1"}
                for t in themes]
        store.save_themes(item.id, item.content_hash(), tags, now="2026-06-02T00:00:00Z", model="m", model_version="1")
    store.close()


def _get(ds: Datasette, path: str) -> dict[str, Any]:
    response = asyncio.run(ds.client.get(path))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def datasette(tmp_path: Path) -> Datasette:
    _seed(tmp_path / "watcher.db")
    return Datasette(files=[str(tmp_path / "watcher.db")], metadata=json.loads(METADATA_PATH.read_text()))


def test_full_text_search_ignores_accents(datasette: Datasette) -> None:
    data = _get(datasette, "/watcher/items.json?_search=entrepots%20sante&_shape=objects")
    assert [r["id"] for r in data["rows"]] == ["cnil:1"]


def test_facets_by_theme_source_and_date(datasette: Datasette) -> None:
    data = _get(datasette, "/watcher/items.json?_shape=objects")
    facets = data["facet_results"]
    facets = facets.get("results", facets)
    themes = {r["value"]: r["count"] for r in facets["themes"]["results"]}
    assert themes == {"health-data": 1, "personal-data": 1, "health-products": 1}
    assert {r["value"] for r in facets["source"]["results"]} == {"cnil", "ansm-securite"}
    assert "legal_date" in facets  # the date a lawyer cites, not the UTC instant


def test_canned_query_items_by_theme(datasette: Datasette) -> None:
    data = _get(datasette, "/watcher/items_by_theme.json?theme=health-products&_shape=objects")
    assert [r["title"] for r in data["rows"]] == ["Rappel de lots de Phosphalugel"]
