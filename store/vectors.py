"""Item embeddings kept in the archive, and nearest-neighbour search over them (search by meaning).

Each item's embedding (the classifier computes it anyway) is stored once in ``item_embeddings`` (migration
``m008_model_embeddings``) as **int8**: the unit vector scaled so its largest component is ±127, 384 bytes for
multilingual-e5-small. Cosine similarity does not depend on the scale, so int8 costs almost nothing in ranking
(measured in ``benchmarks/bench_similar.py``) and is the format of sqlite-vec's ``vec_int8``.

Two ways to search:

- **numpy** (what :meth:`VectorIndex.nearest` uses): the stored vectors are read once into a float32 matrix (new rows
  are appended on the next query, by ``rowid``) and every query is one matrix-vector product over it. From
  ``PREFILTER_FROM`` rows on, the scan runs in two stages: a product over the vectors projected on their
  ``PREFILTER_DIMS`` main directions (an SVD of a sample, computed once) picks ``PREFILTER_CANDIDATES`` candidates,
  which are then ranked by their exact cosine: a quarter of the memory traffic per query.
- **sqlite-vec** (PyPI ``sqlite-vec``), loaded onto the store's connection when its driver can load extensions
  (``VectorIndex.sql`` is then true): ``vec_distance_cosine(vec_int8(embedding), vec_int8(?))`` works in any SQL on
  that connection (Datasette, ad-hoc queries) and :meth:`VectorIndex.nearest_sql` ranks with it. It is not the
  default: its brute-force SQL scan is several times slower than the two-stage numpy scan on a large archive
  (``benchmarks/bench_similar.py``; figures in docs/semantic.md).

Only embeddings of one model are compared (``model`` column): a query embedded by another model finds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlite_utils import Database

TABLE = "item_embeddings"
PREFILTER_FROM = 20_000
PREFILTER_DIMS = 96
PREFILTER_CANDIDATES = 400


def quantize(vector: np.ndarray) -> bytes:
    """int8 bytes of ``vector`` scaled so that its largest component is ±127 (the direction is what counts)."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    peak = float(np.max(np.abs(v))) if v.size else 0.0
    return np.round(v * (127.0 / peak if peak else 0.0)).astype(np.int8).tobytes()


def dequantize(blob: bytes) -> np.ndarray:
    """The unit float32 vector of an int8 blob."""
    v = np.frombuffer(blob, dtype=np.int8).astype(np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm else v


def load_sqlite_vec(conn: Any) -> bool:
    """Load sqlite-vec onto ``conn`` (a ``sqlite3`` connection, or one of a compatible driver such as pysqlite3);
    False when the package is missing or the connection cannot load extensions."""
    try:
        import sqlite_vec
    except ImportError:
        return False
    try:
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.enable_load_extension(False)
    except Exception:  # noqa: BLE001 - Python built without extension loading, a driver's own errors: scan in numpy
        return False
    return True


@dataclass(frozen=True)
class Hit:
    item_id: str
    similarity: float  # cosine, in [-1, 1]


class VectorIndex:
    """The embeddings of the archive's items: save, get, and the nearest items to a vector."""

    def __init__(self, db: Database, *, use_extension: bool = True, prefilter_from: int = PREFILTER_FROM):
        self.db = db
        self.prefilter_from = prefilter_from
        self._basis: np.ndarray | None = None  # (dim, PREFILTER_DIMS) main directions, once the matrix is large
        self._reduced = np.zeros((0, 0), dtype=np.float32)
        self.sql = use_extension and load_sqlite_vec(db.conn)  # vec_* SQL functions on this connection
        self._ids: list[str] = []
        self._known: set[str] = set()
        self._matrix: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self._rowid: int = 0
        self._model: str = ""

    def save(self, vectors: Iterable[tuple[str, np.ndarray]], *, model: str,
             hashes: Mapping[str, str] | None = None) -> int:
        """Store (item id, vector) pairs computed by ``model`` (``hashes``: the content hash each was computed from),
        replacing older ones; returns how many."""
        known = hashes or {}
        rows = [(item_id, model, int(np.asarray(v).size), quantize(v), known.get(item_id, ""))
                for item_id, v in vectors]
        with self.db.atomic():
            self.db.conn.executemany(f"insert or replace into {TABLE} (item_id, model, dim, embedding, content_hash)"
                                     " values (?, ?, ?, ?, ?)", rows)
        return len(rows)

    def get(self, item_id: str) -> tuple[str, np.ndarray] | None:
        """(model, unit vector) of an item, or None when it has no embedding."""
        row = self.db.execute(f"select model, embedding from {TABLE} where item_id = ?", [item_id]).fetchone()
        return (row[0], dequantize(row[1])) if row else None

    def count(self, model: str | None = None) -> int:
        if model is None:
            return int(self.db.execute(f"select count(*) from {TABLE}").fetchone()[0])
        return int(self.db.execute(f"select count(*) from {TABLE} where model = ?", [model]).fetchone()[0])

    def missing(self, item_ids: Sequence[str], model: str) -> list[str]:
        """The ids of ``item_ids`` without an embedding from ``model``."""
        have: set[str] = set()
        for start in range(0, len(item_ids), 500):
            chunk = list(item_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            have.update(r[0] for r in self.db.execute(
                f"select item_id from {TABLE} where model = ? and item_id in ({marks})", [model, *chunk]))
        return [i for i in item_ids if i not in have]

    def nearest(self, vector: np.ndarray, *, model: str, limit: int = 10,
                exclude: Iterable[str] = ()) -> list[Hit]:
        """The ``limit`` items whose embedding (from ``model``) is closest to ``vector``, most similar first."""
        skip = set(exclude)
        ids, matrix = self.matrix(model)
        if not ids:
            return []
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        want = min(len(ids), limit + len(skip))
        rows = self._candidates(matrix, q, want)
        sims = matrix[rows] @ q if rows is not None else matrix @ q
        top = np.argpartition(-sims, want - 1)[:want]
        ranked = top[np.argsort(-sims[top], kind="stable")]
        index = rows[ranked] if rows is not None else ranked
        return [Hit(ids[i], float(sims[r])) for i, r in zip(index, ranked, strict=True) if ids[i] not in skip][:limit]

    def _candidates(self, matrix: np.ndarray, q: np.ndarray, want: int) -> np.ndarray | None:
        """Rows worth an exact cosine (first stage of the two-stage scan), or None to scan every row exactly."""
        if len(matrix) < self.prefilter_from or want * 4 > PREFILTER_CANDIDATES:
            return None
        if self._basis is None:
            sample = matrix[:: max(1, len(matrix) // 10_000)]
            self._basis = np.ascontiguousarray(np.linalg.svd(sample, full_matrices=False)[2][:PREFILTER_DIMS].T)
            self._reduced = matrix @ self._basis
        elif len(self._reduced) < len(matrix):
            self._reduced = np.vstack([self._reduced, matrix[len(self._reduced):] @ self._basis])
        approx = self._reduced @ (q @ self._basis)
        return np.argpartition(-approx, PREFILTER_CANDIDATES - 1)[:PREFILTER_CANDIDATES]

    def nearest_sql(self, vector: np.ndarray, *, model: str, limit: int = 10,
                    exclude: Iterable[str] = ()) -> list[Hit]:
        """:meth:`nearest` computed in SQL by sqlite-vec (the query quantised to int8 too); needs ``self.sql``."""
        if not self.sql:
            raise RuntimeError("sqlite-vec is not loaded on this connection")
        skip = set(exclude)
        sql = (f"select item_id, 1 - vec_distance_cosine(vec_int8(embedding), vec_int8(?)) as similarity"
               f" from {TABLE} where model = ? order by similarity desc limit ?")
        rows = self.db.execute(sql, [quantize(vector), model, limit + len(skip)]).fetchall()
        return [Hit(r[0], float(r[1])) for r in rows if r[0] not in skip][:limit]

    def matrix(self, model: str) -> tuple[list[str], np.ndarray]:
        """Ids and unit float32 rows of every embedding from ``model``, cached: each call appends the rows stored
        since (``insert or replace`` gives a replaced row a new rowid; the cache is then rebuilt)."""
        if model != self._model:
            self.reset()
            self._model = model
        rows = self.db.execute(f"select rowid, item_id, embedding from {TABLE} where model = ? and rowid > ?"
                               " order by rowid", [model, self._rowid]).fetchall()
        if rows and self._ids and not self._known.isdisjoint(r[1] for r in rows):
            self.reset()
            return self.matrix(model)
        if rows:
            raw = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.int8).reshape(len(rows), -1)
            fresh = raw.astype(np.float32)
            fresh /= np.maximum(np.linalg.norm(fresh, axis=1, keepdims=True), 1e-12)
            self._matrix = fresh if not self._ids else np.vstack([self._matrix, fresh])
            self._ids.extend(r[1] for r in rows)
            self._known.update(r[1] for r in rows)
            self._rowid = int(rows[-1][0])
        return self._ids, self._matrix

    def reset(self) -> None:
        """Forget the cached matrix (it is rebuilt on the next numpy query)."""
        self._ids, self._known, self._rowid, self._model = [], set(), 0, ""
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._basis, self._reduced = None, np.zeros((0, 0), dtype=np.float32)
