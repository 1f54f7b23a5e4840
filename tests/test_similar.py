"""Search by meaning: embeddings kept in the archive (store.vectors), nearest items, same-event groups, the
embeddings the classifier leaves behind, and (with the real model) a cross-language search over real items."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from classifiers.decide.hybrid import HybridClassifier
from classifiers.lab.evaluation import load_gold
from store import Store
from store.vectors import dequantize, quantize
from tests.model_support import untuned_head
from watcher.models import Item
from watcher.pipeline import classify_pending
from watcher.records import item_to_row
from watcher.search.similar import group_same_event, similar_items, vector_model

MODEL = "test/model"
NOW = "2026-06-01T00:00:00+00:00"


def unit(rng: np.random.Generator, n: int = 1, dim: int = 384) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def archive(n: int) -> list[Item]:
    """Real items: the first ``n`` of the gold dev set."""
    gold = Path(__file__).parent / "fixtures" / "gold" / "dev.jsonl"
    return [e.item for e in load_gold(gold)[:n]]


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    s.upsert_items([item_to_row(i) for i in archive(40)], now=NOW)
    return s


def test_the_migration_adds_the_embeddings_table(store: Store) -> None:
    assert "m008_model_embeddings" in store.applied_migrations()
    assert store.db["item_embeddings"].exists() and store.vectors.count() == 0


def test_int8_storage_keeps_the_direction() -> None:
    v = unit(np.random.default_rng(0))[0]
    blob = quantize(v)
    assert len(blob) == 384 and float(dequantize(blob) @ v) > 0.999


def test_nearest_finds_the_closest_items_of_the_same_model_only(store: Store) -> None:
    ids = [r[0] for r in store.db.execute("select id from items order by rowid")]
    vectors = unit(np.random.default_rng(1), len(ids))
    assert store.vectors.save(zip(ids, vectors, strict=True), model=MODEL) == len(ids)
    store.vectors.save([(ids[0], vectors[0])], model="other/model")  # replaces the row: another model now
    target = vectors[7] + 0.05 * unit(np.random.default_rng(2))[0]
    hits = store.vectors.nearest(target, model=MODEL, limit=3)
    assert hits[0].item_id == ids[7] and hits[0].similarity > 0.99 and len(hits) == 3
    assert all(h.item_id != ids[0] for h in store.vectors.nearest(vectors[0], model=MODEL, limit=50))
    assert [h.item_id for h in store.vectors.nearest(vectors[0], model="other/model", limit=5)] == [ids[0]]
    assert store.vectors.nearest(target, model=MODEL, limit=3, exclude=[ids[7]])[0].item_id != ids[7]


def test_the_numpy_cache_follows_new_and_replaced_rows(store: Store) -> None:
    ids = [r[0] for r in store.db.execute("select id from items order by rowid")]
    rng = np.random.default_rng(3)
    store.vectors.save(zip(ids[:10], unit(rng, 10), strict=True), model=MODEL)
    assert len(store.vectors.matrix(MODEL)[0]) == 10
    store.vectors.save(zip(ids[10:20], unit(rng, 10), strict=True), model=MODEL)
    fresh = unit(rng)[0]
    store.vectors.save([(ids[3], fresh)], model=MODEL)
    got, matrix = store.vectors.matrix(MODEL)
    assert sorted(got) == sorted(ids[:20]) and matrix.shape == (20, 384)
    assert store.vectors.nearest(fresh, model=MODEL, limit=1)[0].item_id == ids[3]
    assert store.vectors.missing(ids[:25], MODEL) == ids[20:25]


def test_similar_items_and_same_event_groups_use_the_stored_embeddings(store: Store) -> None:
    rows = store.items([r[0] for r in store.db.execute("select id from items order by rowid limit 6")])
    rng = np.random.default_rng(4)
    vectors = unit(rng, 6)
    vectors[4] = vectors[1] + 0.1 * unit(rng)[0]  # items 1 and 4 report the same event
    store.vectors.save(zip((r["id"] for r in rows[:5]), vectors[:5], strict=True), model=MODEL)
    groups = group_same_event(rows, store)
    assert [[r["id"] for r in g] for g in groups] == [[rows[0]["id"]], [rows[1]["id"], rows[4]["id"]],
                                                      [rows[2]["id"]], [rows[3]["id"]], [rows[5]["id"]]]
    near = similar_items(store, rows[1]["id"], limit=3, floor=0.5)
    assert [s.item["id"] for s in near] == [rows[4]["id"]] and near[0].similarity > 0.9
    assert similar_items(store, rows[5]["id"]) == []  # no embedding stored


class HashEmbedder:
    """Deterministic unit vectors from a hash of the text (no model)."""

    name, version, dim = "hash/embedder (test)", "1", 384

    def embed(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 32) -> np.ndarray:
        rows = [np.random.default_rng(abs(hash((kind, t))) % 2**32).normal(size=self.dim) for t in texts]
        out = np.array(rows, dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_classification_keeps_the_embeddings_it_computed_and_search_fills_the_rest(store: Store) -> None:
    from watcher.search.similar import embed_missing

    embedder = HashEmbedder()
    now = datetime(2026, 6, 1, tzinfo=UTC)
    gating = replace(untuned_head(), rule_weight=np.full(5, 3.0, np.float32))  # rules beyond ±3 decide
    report = classify_pending(store, lambda: HybridClassifier(embedder_factory=lambda: embedder, head=gating,
                                                              model_name="hash"), now)
    model = vector_model(embedder)
    # the model is consulted only where the rules leave a theme open: those items' embeddings are kept
    assert report.classified == 40 and 0 < store.vectors.count(model) == report.model_consulted < 40
    kept = next(i for i in archive(40) if store.vectors.get(i.id) is not None)
    name, vector = store.vectors.get(kept.id) or ("", np.zeros(0))
    assert name == "hash/embedder" and float(vector @ embedder.embed([kept.classification_text()])[0]) > 0.999
    assert embed_missing(store, embedder) == 40 - report.model_consulted and store.vectors.count(model) == 40


def test_rules_only_classification_stores_no_embedding(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    store.upsert_items([item_to_row(i) for i in archive(5)], now=NOW)
    classify_pending(store, HybridClassifier, datetime(2026, 6, 1, tzinfo=UTC))
    assert store.vectors.count() == 0


# -- the real model ------------------------------------------------------------------------------------------------
@pytest.mark.cpu_path
@pytest.mark.model
def test_an_english_question_finds_the_french_item(store: Store) -> None:
    from classifiers.decide.hybrid import ModelSettings, model_embedder
    from watcher.search.similar import embed_missing, search_similar

    # no real capture speaks of reprocessing single-use devices: this one title is written by hand, among 40 real items
    reconstructed = Item(id="reconstructed:dmuu", source="jorf", url="https://www.legifrance.gouv.fr/x",
                         title="Arrêté relatif à l'expérimentation du retraitement des dispositifs médicaux à usage "
                               "unique dans les établissements de santé", summary="")
    store.upsert_items([item_to_row(reconstructed)], now=NOW)
    embedder = model_embedder(ModelSettings())  # the shipped model, fine-tuned by the bundled head's adapter
    assert "+lora-" in embedder.version
    assert embed_missing(store, embedder) == 41 and embed_missing(store, embedder) == 0
    hits = search_similar(store, embedder, "reprocessing of single-use medical devices", limit=3)
    assert hits[0].item["id"] == "reconstructed:dmuu"


def test_the_two_stage_scan_finds_what_the_exact_scan_finds() -> None:
    from sqlite_utils import Database

    from store.schema import migrations
    from store.vectors import VectorIndex

    db = Database(memory=True)
    migrations.apply(db)
    rng = np.random.default_rng(5)
    centres = unit(rng, 40)
    vectors = centres[rng.integers(0, 40, 3000)] + 0.08 * rng.normal(size=(3000, 384)).astype(np.float32)
    exact, staged = VectorIndex(db, use_extension=False), VectorIndex(db, use_extension=False, prefilter_from=1000)
    exact.save(((f"i{n}", v) for n, v in enumerate(vectors)), model=MODEL)
    found = same = 0
    for q in vectors[:50] + 0.05 * rng.normal(size=(50, 384)).astype(np.float32):
        truth = [h.item_id for h in exact.nearest(q, model=MODEL, limit=10)]
        got = [h.item_id for h in staged.nearest(q, model=MODEL, limit=10)]
        found += len(set(truth) & set(got))
        same += truth[0] == got[0]
    assert staged._basis is not None and exact._basis is None
    assert same == 50 and found >= 0.95 * 500


def test_the_sqlite_vec_path_ranks_like_the_numpy_scan() -> None:
    """This Python's sqlite3 cannot load extensions; pysqlite3 (the same SQLite, built with them) can."""
    sqlite = pytest.importorskip("pysqlite3.dbapi2")
    pytest.importorskip("sqlite_vec")
    from sqlite_utils import Database

    from store.schema import migrations
    from store.vectors import VectorIndex

    db = Database(sqlite.connect(":memory:"))
    migrations.apply(db)
    index = VectorIndex(db)
    assert index.sql and not VectorIndex(db, use_extension=False).sql
    rng = np.random.default_rng(6)
    vectors = unit(rng, 300)
    index.save(((f"i{n}", v) for n, v in enumerate(vectors)), model=MODEL)
    index.save([("other", vectors[3])], model="other/model")
    by_id = {f"i{n}": v for n, v in enumerate(vectors)}
    for q in vectors[:20] + 0.1 * unit(rng, 20):
        sql, numpy = index.nearest_sql(q, model=MODEL, limit=5), index.nearest(q, model=MODEL, limit=5)
        assert sql[0].item_id == numpy[0].item_id and len(sql) == 5
        # the SQL path quantises the query to int8 as well: its cosines agree with the exact ones to ~0.01
        unit_q = q / np.linalg.norm(q)
        assert all(abs(h.similarity - float(by_id[h.item_id] @ unit_q)) < 0.02 for h in sql)
    assert [h.item_id for h in index.nearest_sql(vectors[3], model=MODEL, limit=2, exclude=["i3"])][0] != "i3"
