"""Search takes any text: an archive built from real fixtures (JORF and CNIL XML, a legifrss feed of décrets, the
CNIL's 500-item news feed), queried the way people type, through ``watcher.search.fulltext`` and through the SQL functions
Datasette uses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store import Store
from watcher.config import SourceConfig
from watcher.records import item_to_row
from watcher.search import fulltext as search
from watcher.sources import build, dila_cnil, dila_jorf

FIXTURES = Path(__file__).parent / "fixtures"
NASTY = ["décret 2025-895", "l'IA", "l’IA", "n°", "nº 78-17", '"données de santé', '"données" "santé"', "(RGPD)",
         "AND", "OR NOT", "NEAR(a b)", "title:santé", "santé*", "-", "^", "''", '""', "", "   ", "2016/679",
         "loi n° 78-17 du 6 janvier 1978", "{ } [ ]", "café; drop table items; --", "%_%", "\\", "l'''IA"]


def _feed(name: str, path: Path) -> list[dict]:
    config = SourceConfig(name=name, kind="feed", url="https://example.org/feed")
    return [item_to_row(i) for i in build(config).parse(path.read_bytes(), url=config.url)]


@pytest.fixture(scope="module")
def store() -> Store:
    store = Store(":memory:")
    rows = [item_to_row(dila_jorf.parse_text(f.read_bytes())) for f in (FIXTURES / "jorf").glob("jorfsimple_JORFTEXT*")]
    rows += [item_to_row(dila_cnil.parse_text(f.read_bytes())) for f in (FIXTURES / "cnil").glob("dila_CNILTEXT*")]
    rows += _feed("legifrss", FIXTURES / "jorf" / "legifrss_atom_decret_sante_2021-03.xml")
    rows += _feed("cnil", FIXTURES / "cnil" / "bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml")
    store.upsert_items(rows, "2026-08-20T00:00:00Z")
    return store


@pytest.mark.parametrize("text", NASTY)
def test_anything_typed_is_a_query_never_an_sql_error(store: Store, text: str) -> None:
    search.search(store, text, limit=50)  # no exception is the assertion
    conn = store.db.conn
    search.register_sql_functions(conn)
    conn.execute(search.SEARCH_SQL, {"q": text}).fetchall()
    conn.execute("select rowid from items_fts where items_fts match escape_fts(?)", [text]).fetchall() if \
        search.fts_expression(text) else None


def test_words_are_words_accents_and_case_ignored(store: Store) -> None:
    accented = {r["id"] for r in search.search(store, "données de santé", limit=500)}
    plain = {r["id"] for r in search.search(store, "DONNEES DE SANTE", limit=500)}
    assert accented and accented == plain
    apostrophe = search.search(store, "l'IA", limit=500)
    assert apostrophe and {r["id"] for r in apostrophe} == {r["id"] for r in search.search(store, "l’IA", limit=500)}
    assert all("ia" in (r["title"] + r["summary"] + r["text"]).lower() for r in apostrophe)


def test_a_quoted_phrase_is_tighter_than_its_words(store: Store) -> None:
    words = search.search(store, "données santé", limit=500)
    phrase = search.search(store, '"données de santé"', limit=500)
    assert 0 < len(phrase) < len(words)


def test_a_decree_number_finds_the_decree_first(store: Store) -> None:
    found = search.search(store, "décret n° 2021-215", limit=10)
    assert found[0]["title"].startswith("Décret n° 2021-215 du 24 février 2021")
    assert search.search(store, "décret 2021-215", limit=10)[0]["id"] == found[0]["id"]  # without n°


def test_an_identifier_finds_the_items_that_cite_it(store: Store) -> None:
    # the CNIL recommandation cites the GDPR as "règlement (UE) 2016/679" and the loi 78-17 in its visas
    cited = search.search(store, "2016/679", limit=20)
    assert "cnil:CNILTEXT000054047151" in [r["id"] for r in cited]
    assert "cnil:CNILTEXT000054047151" in [r["id"] for r in search.search(store, "loi 78-17", limit=20)]


def test_a_nor_or_a_legifrance_id_finds_its_text(store: Store) -> None:
    """A NOR is in no text: only the identifiers table knows it."""
    assert [r["id"] for r in search.search(store, "CNIS2611643X")] == ["cnil:CNILTEXT000054047151"]
    assert [r["id"] for r in search.search(store, "jorftext000054245373")] == ["jorf:JORFTEXT000054245373"]
    assert search.search(store, "délibération 2026-047")[0]["id"] == "cnil:CNILTEXT000054047151"


def test_the_sql_search_gives_what_the_python_search_gives(store: Store) -> None:
    conn: sqlite3.Connection = store.db.conn
    search.register_sql_functions(conn)
    for text in ("CNIS2611643X", "2016/679", "décret n° 2021-215", "l'IA", "données de santé"):
        sql_ids = {r[0] for r in conn.execute(search.SEARCH_SQL, {"q": text})}
        py_ids = {r["id"] for r in search.search(store, text, limit=1000)}
        assert sql_ids == py_ids, text


def test_fts_expression_quotes_every_chunk() -> None:
    assert search.fts_expression("décret n° 2025-895") == '"décret" "2025-895"'
    assert search.fts_expression('l\'IA "données de santé" (RGPD)') == '"l\'IA" "données de santé" "(RGPD)"'
    assert search.fts_expression('say "hi') == '"say" "hi"'  # an unbalanced quote is dropped
    assert search.fts_expression("- * ^") == ""


# --- Datasette, for real (its ASGI client on a real archive file), with the plugin loaded ------------------------

@pytest.fixture(scope="module")
def datasette(tmp_path_factory: pytest.TempPathFactory, store: Store) -> object:
    import asyncio  # noqa: F401 - used by _get
    import json

    from datasette.app import Datasette

    from store import METADATA_PATH

    path = tmp_path_factory.mktemp("ds") / "watcher.db"
    store.db.conn.execute("vacuum into ?", [str(path)])
    from watcher.web import register_plugin

    register_plugin()
    return Datasette(files=[str(path)], metadata=json.loads(METADATA_PATH.read_text(encoding="utf-8")))


def _get(ds: object, path: str) -> tuple[int, dict]:
    import asyncio

    response = asyncio.run(ds.client.get(path))  # type: ignore[attr-defined]
    return response.status_code, response.json() if response.status_code == 200 else {"text": response.text}


@pytest.mark.parametrize("text", ["décret 2026-153", "l'IA", "n°", '"données de santé', "(RGPD)", "NEAR(", "-"])
def test_datasette_search_box_takes_any_text(datasette: object, text: str) -> None:
    from urllib.parse import quote

    status, data = _get(datasette, f"/watcher/items.json?_shape=objects&_search={quote(text)}")
    assert status == 200, data


def test_datasette_search_matches_the_cli(datasette: object, store: Store) -> None:
    from urllib.parse import quote

    for text in ("l'IA", "données de santé", "DONNEES DE SANTE", "décret n° 2021-215"):
        _, table = _get(datasette, f"/watcher/items.json?_shape=objects&_size=max&_search={quote(text)}")
        fts_only = {r["id"] for r in store.items(store.search_ids(search.fts_expression(text), 1000))}
        assert {r["id"] for r in table["rows"]} == fts_only, text
        _, canned = _get(datasette, f"/watcher/search.json?_shape=objects&q={quote(text)}")
        assert {r["id"] for r in canned["rows"]} == {r["id"] for r in search.search(store, text, limit=200)}, text


def test_datasette_canned_search_finds_an_act_by_its_nor(datasette: object) -> None:
    _, data = _get(datasette, "/watcher/search.json?_shape=objects&q=CNIS2611643X")
    assert [r["id"] for r in data["rows"]] == ["cnil:CNILTEXT000054047151"]
    assert data["rows"][0]["legal_date"] == "2026-04-02"


def test_the_metadata_runs_the_same_search_sql() -> None:
    import json

    from store import METADATA_PATH

    queries = json.loads(METADATA_PATH.read_text(encoding="utf-8"))["databases"]["watcher"]["queries"]
    assert queries["search"]["sql"] == search.SEARCH_SQL


def test_datasette_escape_fts_is_ours(datasette: object) -> None:
    """Datasette's ?_search= goes through escape_fts: the plugin's version drops n° and an unbalanced quote."""
    from urllib.parse import quote

    sql = quote("select escape_fts('décret n° 2025-895 \"santé') as e")
    _, data = _get(datasette, f"/watcher.json?_shape=array&sql={sql}")
    assert data == [{"e": search.fts_expression('décret n° 2025-895 "santé')}] == [{"e": '"décret" "2025-895" "santé"'}]


# --- the command ------------------------------------------------------------------------------------------------

def test_watcher_search_prints_one_line_per_item_and_says_when_nothing_is_found(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from watcher.cli import main

    path = tmp_path / "watcher.db"
    store.db.conn.execute("vacuum into ?", [str(path)])
    monkeypatch.setenv("WATCHER_DATABASE", str(path))
    runner = CliRunner()
    found = runner.invoke(main, ["search", "délibération n° 2026-047"])
    assert found.exit_code == 0, found.output
    (line,) = found.stdout.splitlines()
    item_id, legal_date, source, themes, title = line.split("\t")
    assert (item_id, legal_date, source, themes) == ("cnil:CNILTEXT000054047151", "2026-04-02", "cnil-deliberations", "-")
    assert title.startswith("Délibération n° 2026-047 du 2 avril 2026")
    nothing = runner.invoke(main, ["search", "décret 2025-895 (introuvable)"])
    assert nothing.exit_code == 1 and nothing.stdout == "" and "no result for" in nothing.stderr
    for text in NASTY:
        assert runner.invoke(main, ["search", text]).exit_code in (0, 1), text  # never a traceback


def test_filler_words_typed_alone_are_left_out_unless_nothing_else_remains(store: Store) -> None:
    assert search.fts_expression("transfert de données") == '"transfert" "données"'
    assert search.fts_expression('"données de santé" et la CNIL') == '"données de santé" "CNIL"'
    assert search.fts_expression("de la") == '"de" "la"'
    with_fillers = {r["id"] for r in search.search(store, "les données de santé", limit=200)}
    assert with_fillers == {r["id"] for r in search.search(store, "données santé", limit=200)}
    assert with_fillers
