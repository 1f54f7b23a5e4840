"""Search by meaning, across languages, over the embeddings kept in the archive (``store.vectors``).

- :func:`search_similar`: the items closest in meaning to any text ("reprocessing of single-use medical devices"
  finds the French items on « retraitement des dispositifs médicaux à usage unique »); the text is embedded as an
  E5 ``query`` like the items, so a question and an item compare in one space, whatever their language;
- :func:`similar_items`: the items closest to a stored item (no model needed: its embedding is in the archive), for
  the Datasette item page and the digest;
- :func:`group_same_event`: items about the same event from several sources (a CNIL release and a firm's post on it)
  grouped, for the digest;
- :func:`embed_missing`: embeddings for archived items classified before embeddings were kept.

Similarities are cosines of the embeddings the classifier computed: multilingual-e5-small fine-tuned for the themes
(the adapter in ``classifiers/data/head.npz``). In that space the nearest other item of the 950 labelled real items
sits at 0.76 (median; 0.61 for the 10 % least connected) and a random pair at 0.33, so the thresholds below were set
on it (how, and their values for the original model: docs/semantic.md). A model
retrained with ``watcher train`` moves the space: check them again (``benchmarks/similar_queries.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from store import Store
from store.vectors import Hit
from watcher.records import item_from_row

if TYPE_CHECKING:
    from classifiers.engine.e5 import Embedder

SAME_EVENT = 0.87  # cosine from which two items are taken to report the same event (see group_same_event)
SIMILAR_FLOOR = 0.60  # similar_items leaves out hits below this cosine (90 % of items keep a neighbour)


def vector_model(embedder: Embedder) -> str:
    """The name embeddings are stored under: the model itself (``intfloat/multilingual-e5-small``), not how it
    runs (bf16, fp32, ONNX... give vectors at cosine >= 0.999 to one another, so they are compared freely)."""
    return embedder.name.split(" ")[0]


@dataclass(frozen=True)
class Similar:
    item: dict[str, Any]  # the archived row
    similarity: float


def _rows(store: Store, hits: Sequence[Hit]) -> list[Similar]:
    rows = {r["id"]: r for r in store.items([h.item_id for h in hits])}
    return [Similar(rows[h.item_id], round(h.similarity, 4)) for h in hits if h.item_id in rows]


def embed_missing(store: Store, embedder: Embedder, *, batch_size: int = 64,
                  progress: Callable[[int], None] | None = None) -> int:
    """Embed the archived items that have no embedding from ``embedder``'s model yet; returns how many."""
    model = vector_model(embedder)
    ids = [r[0] for r in store.db.execute("select id from items order by rowid")]
    missing = store.vectors.missing(ids, model)
    for start in range(0, len(missing), batch_size):
        rows = store.items(missing[start : start + batch_size])
        texts = [item_from_row(r).classification_text() for r in rows]
        vectors = embedder.embed(texts, kind="query")
        store.vectors.save(zip((r["id"] for r in rows), vectors, strict=True), model=model,
                           hashes={r["id"]: r.get("content_hash") or "" for r in rows})
        if progress:
            progress(len(rows))
    return len(missing)


def search_similar(store: Store, embedder: Embedder, text: str, *, limit: int = 10) -> list[Similar]:
    """The archived items closest in meaning to ``text`` (any language), most similar first."""
    query = embedder.embed([text], kind="query")[0]
    return _rows(store, store.vectors.nearest(query, model=vector_model(embedder), limit=limit))


def similar_items(store: Store, item_id: str, *, limit: int = 5, floor: float = SIMILAR_FLOOR) -> list[Similar]:
    """The archived items closest to item ``item_id`` (from the stored embeddings; [] when it has none)."""
    stored = store.vectors.get(item_id)
    if stored is None:
        return []
    model, vector = stored
    hits = store.vectors.nearest(vector, model=model, limit=limit, exclude=[item_id])
    return _rows(store, [h for h in hits if h.similarity >= floor])


def same_event_of(store: Store) -> Callable[[Sequence[Mapping[str, Any]]], list[list[Mapping[str, Any]]]] | None:
    """:func:`group_same_event` bound to ``store``, for the digests (``notify.service.deliver``); None when the
    archive has no embeddings table (an archive opened without its migrations)."""
    if not store.db["item_embeddings"].exists():
        return None

    def group(items: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
        return group_same_event(items, store)

    return group


def group_same_event(items: Sequence[Mapping[str, Any]], store: Store, *,
                     threshold: float = SAME_EVENT) -> list[list[Mapping[str, Any]]]:
    """``items`` (rows with an ``id``) in groups about the same event: two items are linked when their stored
    embeddings have a cosine >= ``threshold``, and a group is a connected set of links. Groups keep the order of
    ``items`` (a group sits where its first item was); an item without an embedding stays alone.

    ``SAME_EVENT`` (0.87) comes from the cross-source pairs among the 950 labelled real items, in the fine-tuned
    space: the three pairs about one event sit at 0.930, 0.899 and 0.889 (an EDPB-EDPS joint opinion and its relay,
    the CNIL's 42 M EUR sanction and a law firm's post on it, an ANSM shortage notice and a pharmacists' union
    relaying it), the first pair about different events at 0.854 (an ANSM notice and a JO reimbursement list); a
    French and an English release on the same EDPB meeting, at 0.839, is missed."""
    vectors = {str(row["id"]): got[1] for row in items if (got := store.vectors.get(str(row["id"]))) is not None}
    ids = [str(row["id"]) for row in items]
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    have = [i for i, item_id in enumerate(ids) if item_id in vectors]
    if have:
        matrix = np.stack([vectors[ids[i]] for i in have])
        sims = matrix @ matrix.T
        for a, b in zip(*np.nonzero(np.triu(sims >= threshold, k=1)), strict=True):
            parent[root(have[int(a)])] = root(have[int(b)])
    groups: dict[int, list[Mapping[str, Any]]] = {}
    for i, row in enumerate(items):
        groups.setdefault(root(i), []).append(row)
    return list(groups.values())
