"""Cross-language search by meaning, judged by hand: 15 queries over the 950 labelled real items, top 5 each.

    python -m benchmarks.similar_queries [--model e5-small]

The archive is dev + both held-out sets, stored in an in-memory ``Store`` with their embeddings (``store.vectors``,
the same path as ``watcher search --similar``). Each query is in the other language than most of the items it should
find. Prints, per query, the 5 hits (cosine, source, language, title); the relevance of each hit was judged against
tests/fixtures/gold/GUIDELINE.md by reading it, and is recorded in ``JUDGED`` (1 relevant, 0 not) so that a change
of model or storage shows in the printed precision@5.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.bench_classify_quality import CachedEmbedder
from benchmarks.bench_similar import GOLD, SETS
from classifiers.e5 import load_embedder
from classifiers.evaluation import load_gold
from store import Store
from watcher.records import item_to_row
from watcher.similar import search_similar, vector_model

QUERIES = (
    "reprocessing of single-use medical devices",
    "fines for cookies placed without consent",
    "shortage of medicines and supply tensions",
    "batch recall of a medicine",
    "obligations of general-purpose AI models under the AI Act",
    "access to the national health data system for research",
    "sanction after a personal data breach",
    "algorithmic video surveillance with augmented cameras",
    "transfers of personal data to the United States",
    "shared medical record and patient data",
    "protection of children's personal data online",
    "monitoring of employees at work",
    "intelligence artificielle générative et protection des données",
    "avis conjoint du comité européen de la protection des données",
    "sécurité des dispositifs médicaux et matériovigilance",
)

# (query index, item id) -> 1 relevant / 0 not, judged by reading each hit against the guideline. Filled in from a
# run of this script; a hit not judged yet prints "?".
JUDGED: dict[tuple[int, str], int] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e5-small")
    args = parser.parse_args()
    items = [e.item for name in SETS for e in load_gold(GOLD / name)]
    embedder = CachedEmbedder(load_embedder(args.model), Path(tempfile.gettempdir()) / "watcher-bench-embeddings")
    store = Store(":memory:")
    store.upsert_items([item_to_row(i) for i in items], now="2026-12-01T00:00:00+00:00")
    vectors = embedder.embed([i.classification_text() for i in items], kind="query")
    store.vectors.save(((i.id, v) for i, v in zip(items, vectors, strict=True)), model=vector_model(embedder))
    judged = relevant = 0
    for q, query in enumerate(QUERIES):
        print(f"\n{q + 1:>2}. {query}")
        for hit in search_similar(store, embedder, query, limit=5):
            row = hit.item
            mark = JUDGED.get((q, row["id"]))
            judged += mark is not None
            relevant += mark or 0
            print(f"    {'?' if mark is None else '+-'[1 - mark]} {hit.similarity:.3f}  {row['id']:<6} {row['source']:<12}"
                  f" {row['lang']}  {row['title'][:100]}")
    print(f"\nprecision@5 over the judged hits: {relevant}/{judged}")


if __name__ == "__main__":
    main()
