"""A French product, English on request: the plugin's pages (the item page, the list of items and its facets, the
editor's pages, the unsubscribe page) speak the archive's language (``[settings] language``, French by default),
show one name per authority and every date as the legal date in Europe/Paris — read through Datasette's own
ASGI client on the real archive."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path
from typing import Any

import pytest
from archive_support import EDITOR_PASSWORD, copy_archive, write_config
from datasette.app import Datasette
from datasette.utils import tilde_encode
from datasette_auth_passwords.utils import hash_password

from store import Store
from watcher.config import load_config
from watcher.web import build_datasette, password_variable

# published 2026-10-07T22:00:00Z, the ANSM's notice of 8 October 2026 (Paris): the legal day is the 8th
OCREVUS = ("ansm-securite:https://ansm.sante.fr/informations-de-securite/ocrevus-ocrelizumab-risque-nouveau-datteinte-"
           "hepatique-dorigine-medicamenteuse-et-recommandations-sur-la-surveillance-hepatique-avant-et-pendant-le-"
           "traitement")
DELIBERATION = "cnil:CNILTEXT000054047151"  # authority "Commission nationale de l'informatique et des libertés"
ENGLISH_WORDS = re.compile(r"\b(published|Themes|Identifiers|Similar items|Read it at the source|"
                           r"Every column|kind of act|No theme|other items citing it)\b")


def _datasette(tmp_path: Path, archive_built: Path, monkeypatch: pytest.MonkeyPatch, language: str = "") -> Datasette:
    database = copy_archive(archive_built, tmp_path / "db")
    store = Store(database)  # a lawyer tagged the délibération (its legal day is not the day it was stored)
    (content_hash,) = store.db.execute("select content_hash from items where id = ?", [DELIBERATION]).fetchone()
    store.save_themes(DELIBERATION, content_hash, [{"theme": "personal-data", "score": 1.0, "reason": "confirmé",
                                                    "origin": "human", "model": "", "model_version": ""}],
                      now="2026-05-08T08:00:00Z", model="human", model_version="1")
    store.close()
    path = write_config(tmp_path, database)
    if language:
        path.write_text(path.read_text(encoding="utf-8").replace(
            "[settings]\n", f'[settings]\nlanguage = "{language}"\n', 1), encoding="utf-8")
    monkeypatch.setenv(password_variable("alice"), hash_password(EDITOR_PASSWORD))
    return build_datasette(load_config(path), editors=("alice",))


def _get(ds: Datasette, path: str, cookies: dict[str, str] | None = None) -> Any:
    response = asyncio.run(ds.client.get(path, cookies=cookies or {}))
    assert response.status_code == 200, response.text[:300]
    return response


def _visible(page: str) -> str:
    text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def _login(ds: Datasette) -> dict[str, str]:
    first = _get(ds, "/-/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', first.text).group(1)  # type: ignore[union-attr]
    cookies = dict(first.cookies)
    answer = asyncio.run(ds.client.post("/-/login", data={"username": "alice", "password": EDITOR_PASSWORD,
                                                          "csrftoken": token}, cookies=cookies))
    cookies.update(answer.cookies)
    return cookies


def test_the_item_page_is_french_with_the_legal_date_and_one_name_per_authority(
        tmp_path: Path, archive_built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _datasette(tmp_path, archive_built, monkeypatch)
    page = _get(ds, f"/watcher/items/{tilde_encode(OCREVUS)}").text
    meta = _visible(re.search(r'<p class="watcher-meta">(.*?)</p>', page, re.S).group(1))  # type: ignore[union-attr]
    assert "publié le 8 octobre 2026" in meta and "information de sécurité" in meta and "français" in meta
    assert "2026-10-07" not in meta and "information-securite" not in meta
    body = _visible(page.split("<details class=\"watcher-all-columns\">", 1)[0])  # "Every column" shows the raw row, for researchers
    assert "Thèmes" in body and "Identifiants" in body and not ENGLISH_WORDS.search(body), ENGLISH_WORDS.search(body)
    cnil = _visible(_get(ds, f"/watcher/items/{tilde_encode(DELIBERATION)}").text.split("<details class=\"watcher-all-columns\">", 1)[0])
    assert "· CNIL ·" in cnil and "Commission nationale de l'informatique" not in cnil
    assert "publié le 2 avril 2026" in cnil


def test_the_list_and_its_facets_speak_french_labels_never_codes(
        tmp_path: Path, archive_built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _datasette(tmp_path, archive_built, monkeypatch)
    page = _get(ds, "/watcher/items?_facet=nature&_facet=authority&_facet=lang").text
    facets = _visible(page.split('<div class="facet-results">', 1)[1].split("</div>\n</div>", 1)[0])
    assert "actualité" in facets and "information de sécurité" in facets and "français" in facets
    assert "actualite" not in facets and "deliberation-recommandation" not in facets
    assert "Commission nationale de l'informatique" not in facets  # counted under CNIL
    assert "nature de l'acte" in facets and "autorité" in facets and "langue" in facets and "mois" in facets
    assert re.search(r"\b(janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre) 2026\b", facets)
    table = _visible(page.split('class="rows-and-columns watcher-items"', 1)[1].split("</table>", 1)[0])
    assert "[]" not in table and "sans thème" in table  # an untagged item says so
    assert not re.search(r"\b\d{4}-\d{2}-\d{2}\b", table)  # dates in words


def test_the_editor_s_pages_and_the_unsubscribe_page_are_french_and_the_draft_uses_legal_days(
        tmp_path: Path, archive_built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _datasette(tmp_path, archive_built, monkeypatch)
    cookies = _login(ds)
    index = _visible(_get(ds, "/-/newsletter", cookies).text)
    assert "Lettre hebdomadaire" in index and "Préparer ou ouvrir le brouillon de la semaine" in index
    built = _get(ds, "/-/newsletter", cookies)
    token = re.search(r'name="csrftoken" value="([^"]+)"', built.text).group(1)  # type: ignore[union-attr]
    asyncio.run(ds.client.post("/-/newsletter/build", data={"week": "2026-W19", "csrftoken": token},
                               cookies=cookies))
    draft = _get(ds, "/-/newsletter/draft/1", cookies).text
    shown = _visible(draft)
    assert "Brouillon 1 — semaine du 4 mai 2026" in shown and "Écarter" in shown and "Aperçu tel qu'envoyé" in shown
    # stored 2026-05-07T22:00:00Z (8 May in Paris), the délibération of 2 April 2026: its legal day, never the UTC one
    entry = _visible(re.search(rf'id="entry-{re.escape(DELIBERATION)}".*?</li>', draft, re.S).group(0))  # type: ignore[union-attr]
    assert "2 avril 2026" in entry and "2026-05-07" not in entry and "délibération CNIL – recommandation" in entry
    gone = _visible(asyncio.run(ds.client.get("/-/newsletter/unsubscribe?token=nope")).text)  # a 404, in French
    assert "Ce lien de désabonnement n'est pas valide" in gone


def test_english_on_request(tmp_path: Path, archive_built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _datasette(tmp_path, archive_built, monkeypatch, language="en")
    page = _visible(_get(ds, f"/watcher/items/{tilde_encode(OCREVUS)}").text.split("<details class=\"watcher-all-columns\">", 1)[0])
    assert "published on 8 October 2026" in page and "safety information" in page and "Themes" in page
    assert "publié" not in page and "Thèmes" not in page
    page = _get(ds, "/watcher/items?_facet=nature").text
    facet = _visible(page.split('id="facet-nature"', 1)[1].split("</ul>", 1)[0])
    assert "news" in facet and "kind of act" in facet and "actualit" not in facet
