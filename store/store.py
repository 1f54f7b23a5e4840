"""The Store: domain verbs over ``sqlite_utils.Database``. The rest of watcher never writes SQL."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlite_utils import Database

from store import counts
from store.archive import ArchiveMixin
from store.deliveries import DeliveriesMixin
from store.errors import StoreError, storage_errors, translated_methods
from store.incidents import IncidentsMixin
from store.links import LinksMixin
from store.lock import DEFAULT_WAIT, writer_lock
from store.newsletter import NewsletterMixin
from store.schema import migrations
from store.sql import chunks, columns, empty_defaults, marks, rows
from store.web import WebMixin

if TYPE_CHECKING:
    from store.vectors import VectorIndex

_JSON_COLUMNS = {"identifiers": "{}", "tags": "[]", "extra": "{}"}  # stored as JSON text, and their empty value
_SET_BY_STORE = ("version", "first_seen", "last_seen", "updated_at")
_COUNTED = counts.COUNTED_COLUMNS  # the columns the kept counts read (store.counts)
_DERIVED = ("themes",)  # kept in step with item_themes by the store (``_sync_theme_column``), never written directly
_VERSION_FROM_ITEM = {"item_id": "id", "seen_at": "updated_at"}  # item_versions column -> items column


class _ItemSql:
    """The statements that write items, built from the columns the schema gives the ``items`` and
    ``item_versions`` tables (one column list: the schema's)."""

    def __init__(self, conn: sqlite3.Connection):
        self.columns = tuple(c for c in columns(conn, "items") if c not in _DERIVED)
        updated = tuple(c for c in self.columns if c not in ("id", "first_seen"))
        self.insert = f"insert into items ({', '.join(self.columns)}) values ({marks(len(self.columns))})"
        self.update = f"update items set {', '.join(c + ' = ?' for c in updated)} where id = ?"
        # itemgetter of two or more columns returns a tuple (the schema has 19); none: an archive without items
        self.values: Callable[[Mapping[str, Any]], tuple[Any, ...]] = itemgetter(*self.columns or ("", ""))
        self.updated_values: Callable[[Mapping[str, Any]], tuple[Any, ...]] = itemgetter(*updated or ("", ""))
        self.defaults: dict[str, str | None] = {
            **dict.fromkeys(c for c in self.columns if c not in (*_JSON_COLUMNS, *_SET_BY_STORE)),
            **{c: v for c, v in empty_defaults(conn, "items").items() if c in self.columns and c not in _JSON_COLUMNS}}
        # the archive keeps counts (m009_counts) that every write of items moves (store.counts)
        self.counts_kept = bool(conn.execute("select 1 from sqlite_master where name = ?", [counts.TABLE]).fetchone())
        self.version_columns = columns(conn, "item_versions")
        self.version_select = ", ".join(_VERSION_FROM_ITEM.get(c, c) for c in self.version_columns)
        self.keep_version = (f"insert or ignore into item_versions ({', '.join(self.version_columns)}) "
                             f"select {self.version_select} from items where id = ?")


@dataclass
class UpsertResult:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def seen(self) -> int:
        return len(self.new) + len(self.changed) + self.unchanged


RANK_WINDOW = 5_000  # a full-text search ranks its matches stored last, every match when it has no more


def ranked_matches_sql(match: str, limit: str) -> str:
    """SQL of the ``limit`` best matches (``match_rowid``, ``match_rank``: FTS5's bm25, lower is better; the newest
    first among equals) of the FTS5 expression ``match`` (both SQL expressions, e.g. ``?``) among the
    ``RANK_WINDOW`` matches stored last. FTS5 walks its index backwards, scores those matches only and stops: the
    cost of a search does not grow with the archive, and a search with fewer matches ranks them all."""
    return (f"select * from (select rowid as match_rowid, rank as match_rank from items_fts where items_fts match "
            f"{match} order by rowid desc limit {RANK_WINDOW}) order by match_rank, match_rowid desc limit {limit}")


BUSY_TIMEOUT_MS = 30_000  # how long a statement waits for SQLite's own lock before "database is locked"


@translated_methods
class Store(DeliveriesMixin, NewsletterMixin, ArchiveMixin, IncidentsMixin, LinksMixin, WebMixin):
    """The archive. ``Store(path)`` opens (and migrates) a SQLite file; ``Store(":memory:")`` is for tests;
    ``Store.open_readonly(path)`` is for the commands that only read.

    Concurrency: one writer at a time, by design. A command that writes holds ``writer_lock()`` (an advisory lock
    on ``<archive>.lock``, see ``store.lock``); migrations take it themselves. Readers need no lock: the archive is
    in WAL mode, so they read the last committed state while a writer writes. Each write transaction begins
    ``IMMEDIATE`` and waits up to ``BUSY_TIMEOUT_MS`` for SQLite's lock, so a reader or a foreign writer (e.g.
    Datasette) never makes a write fail half way.

    Every public method raises ``StoreError`` (naming the file, saying what to do) instead of a raw SQLite error.
    Items arrive as plain mappings (see ``watcher.models.Item`` converted by the pipeline) so that this package
    depends on nothing else of watcher.
    """

    def __init__(self, path: str | Path = ":memory:", *, migrate: bool = True, lock_wait: float = DEFAULT_WAIT,
                 on_wait: Callable[[str], None] | None = None, readonly: bool = False):
        self.path = str(path)
        self.lock_wait, self.on_wait, self.readonly = lock_wait, on_wait, readonly
        with storage_errors(self.path):
            self.db = Database(self._connect(), execute_plugins=False)
            self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self.db.execute("PRAGMA foreign_keys=ON")
            if not readonly:
                self._prepare(migrate)
            self._sql = _ItemSql(self.db.conn)

    def _prepare(self, migrate: bool) -> None:
        """WAL journal, then the pending migrations. Turning a new archive to WAL needs SQLite's exclusive lock,
        which a busy timeout does not always wait for: when it must be done (a new archive), it is done under the
        writer lock, like the migrations."""
        if self.path != ":memory:":
            if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                with self.writer_lock():
                    self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        if migrate:
            self.migrate()

    def _connect(self) -> sqlite3.Connection:
        # execute_plugins=False (above): the archive's connection is not altered by whatever sqlite-utils plugins
        # happen to be installed (nor slowed by scanning every installed distribution's entry points for them)
        if self.readonly:
            return self._connect_readonly()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

    def _connect_readonly(self) -> sqlite3.Connection:
        """``mode=ro``; in a read-only folder where SQLite cannot create the WAL's -shm file (no writer can write
        there either), ``immutable=1``: the file is read as it is, without any locking."""
        if not Path(self.path).is_file():
            raise StoreError(self.path, "no archive here yet; run `watcher fetch` (or `watcher migrate`) first")
        uri = f"file:{quote(str(Path(self.path).resolve()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("select count(*) from sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            conn.close()
            cannot = "unable to open" in str(exc) or "readonly" in str(exc)  # no -shm can be made beside it
            if not cannot or _writable(Path(self.path).parent):
                raise
            conn = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
        return conn

    @classmethod
    def open_readonly(cls, path: str | Path) -> Store:
        """The archive opened for reading only (``mode=ro``): never migrates, never writes, never waits for the
        writer lock; works on a read-only file or folder. A missing archive or an unreadable one is a
        ``StoreError``."""
        store = cls(path, readonly=True)
        if not store._sql.columns:
            raise StoreError(store.path, "not a watcher archive yet (no items table); run `watcher migrate` first")
        return store

    def writer_lock(self, *, wait: float | None = None,
                    on_wait: Callable[[str], None] | None = None) -> AbstractContextManager[None]:
        """Hold this archive's writer lock (see ``store.lock.writer_lock``): wait up to ``wait`` seconds (the
        store's ``lock_wait`` by default; 0 = raise ``ArchiveBusy`` at once) if another process holds it."""
        return writer_lock(self.path, wait=self.lock_wait if wait is None else wait, on_wait=on_wait or self.on_wait)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, begun IMMEDIATE (it takes SQLite's write lock first, waiting up to the busy
        timeout, so it never fails half way on a lock); a nested block is a savepoint. All or nothing."""
        if self.db.conn.in_transaction:
            with self.db.atomic():
                yield
            return
        with storage_errors(self.path):
            self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        try:  # a full file system fails here, at COMMIT, when SQLite writes the journal: the message names it
            with storage_errors(self.path):
                self.db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        with suppress(sqlite3.Error):  # SQLite may have rolled back already (disk full, I/O error)
            self.db.conn.rollback()

    # -- schema -------------------------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply the pending migrations, holding the writer lock while there are some."""
        if not migrations.pending(self.db):
            return []
        with self.writer_lock():
            pending = [m.name for m in migrations.pending(self.db)]  # another run may have applied them meanwhile
            migrations.apply(self.db)
        if "_sql" in self.__dict__:
            self._sql = _ItemSql(self.db.conn)
        return pending

    def rebuild_fts(self) -> str:
        """Rebuild the full-text index of the items from the items themselves (they are the index's content):
        FTS5's own ``rebuild`` when the index can still be opened; when it cannot (its pages are garbage), the
        index's tables are taken out of the schema, the file is vacuumed (which drops their pages) and the index is
        created again from its recorded definition. Returns how it was done."""
        with self.writer_lock():
            try:
                with self.transaction():
                    self.db.execute("insert into items_fts(items_fts) values('rebuild')")
                    self.db.execute("insert into items_fts(items_fts) values('integrity-check')")
                return "rebuilt in place"
            except (StoreError, sqlite3.DatabaseError):
                pass
            with storage_errors(self.path):
                self._recreate_fts()
            return "recreated (its damaged pages were dropped)"

    def _recreate_fts(self) -> None:
        conn = self.db.conn
        create = conn.execute("select sql from sqlite_master where name = 'items_fts'").fetchone()[0]
        conn.execute("PRAGMA writable_schema = ON")
        try:  # SQLite's documented way out when a table cannot even be dropped; VACUUM then forgets its pages
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("delete from sqlite_master where name = 'items_fts' or (type = 'table' and name in "
                         "('items_fts_data', 'items_fts_idx', 'items_fts_docsize', 'items_fts_config', "
                         "'items_fts_content'))")
            conn.execute("COMMIT")
        finally:
            conn.execute("PRAGMA writable_schema = OFF")
        self.db.close()
        self.db = Database(self._connect(), execute_plugins=False)  # the schema read again, without the index
        self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self.db.execute("VACUUM")
        with self.transaction():
            self.db.execute(create)
            self.db.execute("insert into items_fts(items_fts) values('rebuild')")

    def applied_migrations(self) -> list[str]:
        return [m.name for m in migrations.applied(self.db)]

    def close(self) -> None:
        self.db.close()

    @functools.cached_property
    def vectors(self) -> VectorIndex:
        """The items' embeddings (search by meaning): see ``store.vectors`` (imported here: it needs numpy, which
        the commands that never search by meaning need not load)."""
        from store.vectors import VectorIndex

        return VectorIndex(self.db)

    # -- items --------------------------------------------------------------------------------------------------
    def upsert_items(self, rows: Iterable[Mapping[str, Any]], now: str) -> UpsertResult:
        """Insert new items, version changed ones, touch unchanged ones. One transaction per call.

        Each row needs ``id`` and ``content_hash``; ``identifiers``/``tags``/``extra`` may be dicts or lists.
        A row whose id is already stored with the same content hash is "unchanged"; with another hash the item
        keeps its id, its ``version`` goes up and the previous content stays in ``item_versions``.
        """
        result = UpsertResult()
        batch = {r["id"]: r for r in rows}  # a source listing the same id twice keeps the last
        with self.transaction():
            for chunk in chunks(list(batch.values())):
                self._upsert_chunk(chunk, now, result)
        return result

    def _upsert_chunk(self, chunk: Sequence[Mapping[str, Any]], now: str, result: UpsertResult) -> None:
        ids = [r["id"] for r in chunk]
        sql = self._sql
        counted = sql.counts_kept
        select = f"id, content_hash, version{', ' + ', '.join(_COUNTED) if counted else ''}"
        known = {row[0]: row for row in self.db.execute(f"select {select} from items where id in "
                                                        f"({marks(len(ids))})", ids)}
        inserts, updates, touched = [], [], []
        delta: Counter[counts.Key] = Counter()
        for r in chunk:
            row = _item_row(r, now, sql.defaults)
            previous = known.get(row["id"])
            if previous is None:
                row["version"] = 1
                inserts.append(row)
                result.new.append(row["id"])
            elif previous[1] != row["content_hash"]:
                row["version"] = previous[2] + 1
                updates.append(row)
                result.changed.append(row["id"])
                if counted:  # the item's counts move from its old values to its new ones, its themes unchanged
                    old = dict(zip(_COUNTED, previous[3:], strict=True))
                    delta.update(counts.contribution(row, old["themes"]))
                    delta.subtract(counts.contribution(old))
            else:
                touched.append((now, row["id"]))
                result.unchanged += 1
        conn = self.db.conn
        if counted and inserts:
            delta.update(counts.of_new_rows(inserts))
        counts.apply(conn, delta)
        if inserts:
            # the new rows are those above the largest rowid before the insert (one writer, one transaction)
            last = conn.execute("select coalesce(max(rowid), 0) from items").fetchone()[0]
            conn.executemany(sql.insert, map(sql.values, inserts))
            conn.execute("insert into items_fts (rowid, title, summary, text) select rowid, title, summary, text "
                         "from items where rowid > ?", [last])
        if updates:
            # the superseded content is kept in item_versions before the item takes the new one
            conn.executemany(sql.keep_version, [(row["id"],) for row in updates])
            conn.executemany(sql.update, [sql.updated_values(row) + (row["id"],) for row in updates])
            conn.executemany("delete from identifiers where item_id = ?", [(row["id"],) for row in updates])
        self._index_identifiers(inserts + updates)
        if touched:
            conn.executemany("update items set last_seen = ? where id = ?", touched)

    def _index_identifiers(self, rows: Sequence[Mapping[str, Any]]) -> None:
        pairs = [(row["id"], scheme, str(value)) for row in rows for scheme, value in row["_identifiers"].items()]
        if pairs:
            self.db.conn.executemany("insert or replace into identifiers (item_id, scheme, value) values (?, ?, ?)",
                                     pairs)

    def get_item(self, item_id: str) -> dict[str, Any] | None:
        rows = list(self.db.table("items").rows_where("id = ?", [item_id]))
        return _decode(rows[0]) if rows else None

    def items(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for chunk in chunks(list(ids)):
            out.extend(_decode(r) for r in self.db.table("items").rows_where(f"id in ({marks(len(chunk))})",
                                                                             list(chunk)))
        order = {i: n for n, i in enumerate(ids)}
        return sorted(out, key=lambda r: order[r["id"]])

    def versions(self, item_id: str) -> list[dict[str, Any]]:
        """Every content the item has had, oldest first; the last one is the current content."""
        older = list(self.db.table("item_versions").rows_where("item_id = ?", [item_id], order_by="version"))
        current = self.db.execute(f"select {self._sql.version_select} from items where id = ?", [item_id])
        return older + [dict(zip(self._sql.version_columns, row, strict=True)) for row in current]

    def count_items(self, source: str | None = None) -> int:
        if source is None:
            return self.db.table("items").count
        return self.db.execute("select count(*) from items where source = ?", [source]).fetchone()[0]

    def find_by_identifier(self, scheme: str, value: str) -> list[str]:
        sql = "select item_id from identifiers where scheme = ? and value = ?"
        return [r[0] for r in self.db.execute(sql, [scheme, value])]

    def search_ids(self, match: str, limit: int = 20) -> list[str]:
        """Ids of the items whose title, summary or text match the FTS5 expression ``match``, best first (FTS5's
        bm25) among the ``RANK_WINDOW`` matches stored last (the caller builds ``match``:
        ``watcher.search.fulltext`` quotes what people type)."""
        sql = (f"select items.id from ({ranked_matches_sql('?', '?')}) m join items on items.rowid = m.match_rowid "
               "order by m.match_rank, m.match_rowid desc")
        return [r[0] for r in self.db.execute(sql, [match, limit])]

    def items_with_identifiers(self, pairs: Sequence[tuple[str, str]], limit: int = 20) -> list[tuple[str, bool]]:
        """(item id, True if the item IS the act, False if it cites it) for each (scheme, value); citations are
        found in ``cites_<scheme>`` (comma-joined values). Acts first, then the newest citing items."""
        found: dict[str, bool] = {}
        for scheme, value in pairs:
            for row in self.db.execute("select item_id from identifiers where scheme = ? and value = ?",
                                       [scheme, value]):
                found[row[0]] = True
        for scheme, value in pairs:
            sql = ("select identifiers.item_id from identifiers join items on items.id = identifiers.item_id "
                   "where scheme = ? and (value = ? or ',' || value || ',' like ?) "
                   "order by items.legal_date desc limit ?")
            for row in self.db.execute(sql, [f"cites_{scheme}", value, f"%,{value},%", limit]):
                found.setdefault(row[0], False)
        return list(found.items())

    def search(self, query: str, limit: int = 20) -> list[dict[str, Any]]:
        return [_decode(r) for r in self.db.table("items").search(query, limit=limit)]

    # -- sources ------------------------------------------------------------------------------------------------
    def source_state(self, name: str) -> dict[str, Any]:
        rows = list(self.db.table("sources").rows_where("name = ?", [name]))
        return rows[0] if rows else {"name": name, "consecutive_failures": 0}

    def ensure_sources(self, kinds: Mapping[str, str]) -> None:
        """A row for each configured source not yet known (idempotent: ``insert ... on conflict do nothing``)."""
        with self.transaction():
            self.db.conn.executemany("insert into sources (name, kind, consecutive_failures) values (?, ?, 0) "
                                     "on conflict (name) do nothing", list(kinds.items()))

    def record_success(self, name: str, *, now: str, etag: str | None, last_modified: str | None,
                       cursor: str | None) -> None:
        self.db.table("sources").upsert(
            {"name": name, "etag": etag, "last_modified": last_modified, "cursor": cursor,
             "last_attempt": now, "last_success": now, "consecutive_failures": 0},
            pk="name",
        )

    def record_failure(self, name: str, *, now: str, error: str) -> int:
        state = self.source_state(name)
        failures = int(state.get("consecutive_failures") or 0) + 1
        self.db.table("sources").upsert(
            {"name": name, "last_attempt": now, "last_error": error, "last_error_at": now,
             "consecutive_failures": failures},
            pk="name",
        )
        return failures

    def log_fetch(self, entry: Mapping[str, Any]) -> None:
        self.db.table("fetch_log").insert(dict(entry))

    def sources_health(self) -> list[dict[str, Any]]:
        """Each source's state, with ``items_total`` counted from the archive (not stored: it would drift) and
        ``last_outcome`` / ``last_warning``: the outcome and the warnings or error of its latest fetch."""
        return rows(self.db.execute(
            "select sources.*, (select count(*) from items where items.source = sources.name) as items_total, "
            "last.outcome as last_outcome, last.error as last_warning from sources left join fetch_log last on "
            "last.id = (select id from fetch_log f where f.source = sources.name order by started_at desc, id desc "
            "limit 1) order by name"))

    def fetch_log(self, source: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, args = ("source = ?", [source]) if source else (None, [])
        return list(self.db.table("fetch_log").rows_where(where, args, order_by="id desc", limit=limit))

    # -- themes -------------------------------------------------------------------------------------------------
    def items_to_classify(self, page_size: int = 256) -> Iterator[list[dict[str, Any]]]:
        """Items never classified, or whose content changed since they were, in archive order, as pages of at most
        ``page_size`` rows read one at a time (keyset paging on rowid: classifying a page between two reads
        neither skips nor repeats an item)."""
        sql = ("select items.rowid as _rowid, items.* from items left join classifications c on c.item_id = items.id "
               "where (c.item_id is null or c.content_hash != items.content_hash) and items.rowid > ? "
               "order by items.rowid limit ?")
        after = 0
        while page := rows(self.db.execute(sql, [after, page_size])):
            after = page[-1].pop("_rowid")
            for row in page[:-1]:
                del row["_rowid"]
            yield [_decode(row) for row in page]

    def save_themes(self, item_id: str, content_hash: str, tags: Sequence[Mapping[str, Any]], *, now: str,
                    model: str, model_version: str, scope_reason: str | None = None) -> None:
        """Replace the model/rule themes of one item; human corrections (origin 'human') are kept."""
        with self.transaction():
            self.db.execute("delete from item_themes where item_id = ? and origin != 'human'", [item_id])
            human = {r[0] for r in self.db.execute(
                "select theme from item_themes where item_id = ? and origin = 'human'", [item_id])}
            removed = self.removed_themes(item_id)
            rows = [{**t, "item_id": item_id, "classified_at": now} for t in tags
                    if t["theme"] not in human and t["theme"] not in removed]
            if rows:
                self.db.table("item_themes").insert_all(rows, pk=("item_id", "theme"), replace=True)
            self._sync_theme_column(item_id)
            self.db.table("classifications").upsert(
                {"item_id": item_id, "content_hash": content_hash, "model": model, "model_version": model_version,
                 "classified_at": now, "in_scope_untagged": int(bool(scope_reason) and not rows and not human),
                 "scope_reason": scope_reason or ""},
                pk="item_id",
            )

    def themes_of(self, item_id: str) -> list[dict[str, Any]]:
        return list(self.db.table("item_themes").rows_where("item_id = ?", [item_id], order_by="score desc"))

    def add_label(self, item_id: str, theme: str, action: str, *, now: str, author: str = "", note: str = "") -> None:
        """A person's correction: 'add' or 'remove' a theme. It always wins over the model for this item."""
        if action not in ("add", "remove"):
            raise ValueError(f"action must be 'add' or 'remove', not {action!r}")
        with self.transaction():
            self.db.table("labels").insert({"item_id": item_id, "theme": theme, "action": action, "author": author,
                                      "created_at": now, "note": note})
            self.db.execute("delete from item_themes where item_id = ? and theme = ?", [item_id, theme])
            if action == "add":
                self.db.table("item_themes").insert(
                    {"item_id": item_id, "theme": theme, "score": 1.0, "reason": f"confirmed by {author or 'a person'}",
                     "origin": "human", "model": "", "model_version": "", "classified_at": now},
                    pk=("item_id", "theme"), replace=True)
            self.db.execute("update classifications set in_scope_untagged = 0 where item_id = ?", [item_id])
            self._sync_theme_column(item_id)

    def _sync_theme_column(self, item_id: str) -> None:
        """``items.themes`` from ``item_themes``, and the kept counts moved from the item's old themes to its new."""
        before = self.db.execute(f"select {', '.join(_COUNTED)} from items where id = ?", [item_id]).fetchone()
        self.db.execute("""update items set themes = coalesce((select json_group_array(theme) from
                           (select theme from item_themes where item_id = ? order by theme)), '[]')
                           where id = ?""", [item_id, item_id])
        if before is None or not self._sql.counts_kept:
            return
        after = self.db.execute("select themes from items where id = ?", [item_id]).fetchone()[0]
        if after != before[0]:
            old = dict(zip(_COUNTED, before, strict=True))
            delta = counts.contribution(old, after)
            delta.subtract(counts.contribution(old))
            counts.apply(self.db.conn, delta)

    def removed_themes(self, item_id: str) -> set[str]:
        latest: dict[str, str] = {}
        for r in self.db.table("labels").rows_where("item_id = ?", [item_id], order_by="id"):
            latest[r["theme"]] = r["action"]
        return {t for t, a in latest.items() if a == "remove"}

    def labelled_items(self) -> list[dict[str, Any]]:
        """Every corrected item with its final human themes (for ``watcher train``)."""
        finals: dict[str, dict[str, str]] = {}
        for r in self.db.table("labels").rows_where(order_by="id"):
            finals.setdefault(r["item_id"], {})[r["theme"]] = r["action"]
        out = []
        for item in self.items(list(finals)):
            current = {t["theme"] for t in self.themes_of(item["id"]) if t["origin"] != "human"}
            decided = finals[item["id"]]
            themes = (current | {t for t, a in decided.items() if a == "add"}) - {
                t for t, a in decided.items() if a == "remove"}
            out.append({**item, "themes": sorted(themes)})
        return out

    def theme_counts(self) -> Counter[str]:
        return Counter({r[0]: r[1] for r in self.db.execute("select theme, count(*) from item_themes group by theme")})

    def last_classification(self) -> dict[str, Any] | None:
        """The model and version of the most recent classification (says when the model had failed), or None."""
        rows = list(self.db.table("classifications").rows_where(
            select="model, model_version, classified_at", order_by="classified_at desc", limit=1))
        return rows[0] if rows else None

    def untagged_in_scope(self, limit: int = 100) -> list[dict[str, Any]]:
        sql = ("select items.id, items.source, items.title, items.published, c.scope_reason from items "
               "join classifications c on c.item_id = items.id where c.in_scope_untagged = 1 "
               "order by items.published desc limit ?")
        return rows(self.db.execute(sql, [limit]))


_to_json = json.JSONEncoder(ensure_ascii=False, default=str).encode  # built once: json.dumps(**kw) builds one a call


def _writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder``, tried (``os.access`` answers yes to root even where it lacks
    the capability to write)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


ARCHIVE_MODE = 0o600  # subscribers' addresses and unsubscribe tokens: the owner only (SQLite gives -wal/-shm the same)


def _create_private(path: str) -> None:
    """Create a new archive file readable by its owner only (SQLite would create it 0644 under the usual umask);
    an existing archive keeps the mode its operator gave it."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ARCHIVE_MODE))


def _item_row(r: Mapping[str, Any], now: str, defaults: Mapping[str, str | None]) -> dict[str, Any]:
    row = {**defaults, **r}
    for key, empty in _JSON_COLUMNS.items():
        value = row.get(key)
        if not isinstance(value, str):
            row[key] = _to_json(value) if value else empty
    ids = r.get("identifiers")
    row["_identifiers"] = ids if isinstance(ids, Mapping) else json.loads(ids or "{}")  # for the index, not a column
    row["first_seen"] = row["last_seen"] = row["updated_at"] = now
    return row


def _decode(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("identifiers", "tags", "extra", "themes"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out
