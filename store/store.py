"""The Store: domain verbs over ``sqlite_utils.Database``. The rest of watcher never writes SQL."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from store.deliveries import DeliveriesMixin
from store.incidents import IncidentsMixin
from store.schema import migrations

_BATCH = 500
_ITEM_COLUMNS = ("id", "source", "url", "title", "summary", "text", "published", "legal_date", "lang", "nature",
                 "nature_raw", "authority", "rubric", "identifiers", "tags", "extra", "content_hash", "version",
                 "first_seen", "last_seen", "updated_at")
_UPDATED_COLUMNS = tuple(c for c in _ITEM_COLUMNS if c not in ("id", "first_seen"))
_INSERT_ITEM = f"insert into items ({', '.join(_ITEM_COLUMNS)}) values ({', '.join('?' * len(_ITEM_COLUMNS))})"
_UPDATE_ITEM = f"update items set {', '.join(c + ' = ?' for c in _UPDATED_COLUMNS)} where id = ?"
_item_values = itemgetter(*_ITEM_COLUMNS)
_updated_values = itemgetter(*_UPDATED_COLUMNS)
_VERSION_SELECT = "id, version, content_hash, updated_at, title, summary, text, nature, identifiers"
_KEEP_VERSION = (f"insert or ignore into item_versions (item_id, version, content_hash, seen_at, title, summary, text, "
                 f"nature, identifiers) select {_VERSION_SELECT} from items where id = ?")


@dataclass
class UpsertResult:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def seen(self) -> int:
        return len(self.new) + len(self.changed) + self.unchanged


def _chunks(seq: Sequence[Any], size: int = _BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


class Store(DeliveriesMixin, IncidentsMixin):
    """The archive. ``Store(path)`` opens (and migrates) a SQLite file; ``Store(":memory:")`` is for tests.

    Items arrive as plain mappings (see ``watcher.models.Item`` converted by the pipeline) so that this package
    depends on nothing else of watcher.
    """

    def __init__(self, path: str | Path = ":memory:", *, migrate: bool = True):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        # execute_plugins=False: the archive's connection is not altered by whatever sqlite-utils plugins happen to
        # be installed (and scanning every installed distribution's entry points for them took ~17 ms a process)
        self.db = Database(conn, execute_plugins=False)
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        if migrate:
            self.migrate()

    # -- schema -------------------------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        pending = [m.name for m in migrations.pending(self.db)]
        migrations.apply(self.db)
        return pending

    def applied_migrations(self) -> list[str]:
        return [m.name for m in migrations.applied(self.db)]

    def close(self) -> None:
        self.db.close()

    # -- items --------------------------------------------------------------------------------------------------
    def upsert_items(self, rows: Iterable[Mapping[str, Any]], now: str) -> UpsertResult:
        """Insert new items, version changed ones, touch unchanged ones. One transaction per call.

        Each row needs ``id`` and ``content_hash``; ``identifiers``/``tags``/``extra`` may be dicts or lists.
        A row whose id is already stored with the same content hash is "unchanged"; with another hash the item
        keeps its id, its ``version`` goes up and the previous content stays in ``item_versions``.
        """
        result = UpsertResult()
        batch = {r["id"]: r for r in rows}  # a source listing the same id twice keeps the last
        with self.db.atomic():
            for chunk in _chunks(list(batch.values())):
                self._upsert_chunk(chunk, now, result)
        return result

    def _upsert_chunk(self, chunk: Sequence[Mapping[str, Any]], now: str, result: UpsertResult) -> None:
        ids = [r["id"] for r in chunk]
        marks = ",".join("?" * len(ids))
        known = {
            row[0]: (row[1], row[2])
            for row in self.db.execute(f"select id, content_hash, version from items where id in ({marks})", ids)
        }
        inserts, updates, touched = [], [], []
        for r in chunk:
            row = _item_row(r, now)
            previous = known.get(row["id"])
            if previous is None:
                row["version"] = 1
                inserts.append(row)
                result.new.append(row["id"])
            elif previous[0] != row["content_hash"]:
                row["version"] = previous[1] + 1
                updates.append(row)
                result.changed.append(row["id"])
            else:
                touched.append((now, row["id"]))
                result.unchanged += 1
        conn = self.db.conn
        if inserts:
            # the new rows are those above the largest rowid before the insert (one writer, one transaction)
            last = conn.execute("select coalesce(max(rowid), 0) from items").fetchone()[0]
            conn.executemany(_INSERT_ITEM, map(_item_values, inserts))
            conn.execute("insert into items_fts (rowid, title, summary, text) select rowid, title, summary, text "
                         "from items where rowid > ?", [last])
        if updates:
            # the superseded content is kept in item_versions before the item takes the new one
            conn.executemany(_KEEP_VERSION, [(row["id"],) for row in updates])
            conn.executemany(_UPDATE_ITEM, [_updated_values(row) + (row["id"],) for row in updates])
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
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            out.extend(_decode(r) for r in self.db.table("items").rows_where(f"id in ({marks})", list(chunk)))
        order = {i: n for n, i in enumerate(ids)}
        return sorted(out, key=lambda r: order[r["id"]])

    def versions(self, item_id: str) -> list[dict[str, Any]]:
        """Every content the item has had, oldest first; the last one is the current content."""
        older = list(self.db.table("item_versions").rows_where("item_id = ?", [item_id], order_by="version"))
        current = self.db.execute(f"select {_VERSION_SELECT} from items where id = ?", [item_id]).fetchall()
        keys = ("item_id", "version", "content_hash", "seen_at", "title", "summary", "text", "nature", "identifiers")
        return older + [dict(zip(keys, row, strict=True)) for row in current]

    def count_items(self, source: str | None = None) -> int:
        if source is None:
            return self.db.table("items").count
        return self.db.execute("select count(*) from items where source = ?", [source]).fetchone()[0]

    def find_by_identifier(self, scheme: str, value: str) -> list[str]:
        sql = "select item_id from identifiers where scheme = ? and value = ?"
        return [r[0] for r in self.db.execute(sql, [scheme, value])]

    def search_ids(self, match: str, limit: int = 20) -> list[str]:
        """Ids of the items whose title, summary or text match the FTS5 expression ``match``, best first (the
        caller builds ``match``: ``watcher.search`` quotes what people type)."""
        sql = ("select items.id from items_fts join items on items.rowid = items_fts.rowid "
               "where items_fts match ? order by items_fts.rank limit ?")
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
        existing = {r["name"] for r in self.db.table("sources").rows}
        new = [{"name": n, "kind": k, "consecutive_failures": 0}
               for n, k in kinds.items() if n not in existing]
        if new:
            self.db.table("sources").insert_all(new)

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
        """Each source's state, with ``items_total`` counted from the archive (not stored: it would drift)."""
        cur = self.db.execute("select sources.*, (select count(*) from items where items.source = sources.name) "
                              "as items_total from sources order by name")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def fetch_log(self, source: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, args = ("source = ?", [source]) if source else (None, [])
        return list(self.db.table("fetch_log").rows_where(where, args, order_by="id desc", limit=limit))

    # -- themes -------------------------------------------------------------------------------------------------
    def items_to_classify(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Items never classified, or whose content changed since they were."""
        sql = ("select items.* from items left join classifications c on c.item_id = items.id "
               "where c.item_id is null or c.content_hash != items.content_hash order by items.rowid")
        if limit:
            sql += f" limit {int(limit)}"
        return [_decode(dict(zip([d[0] for d in cur.description], row, strict=True)))
                for cur in [self.db.execute(sql)] for row in cur.fetchall()]

    def save_themes(self, item_id: str, content_hash: str, tags: Sequence[Mapping[str, Any]], *, now: str,
                    model: str, model_version: str, scope_reason: str | None = None) -> None:
        """Replace the model/rule themes of one item; human corrections (origin 'human') are kept."""
        with self.db.atomic():
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
        with self.db.atomic():
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
        self.db.execute("""update items set themes = coalesce((select json_group_array(theme) from
                           (select theme from item_themes where item_id = ? order by theme)), '[]')
                           where id = ?""", [item_id, item_id])

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

    def untagged_in_scope(self, limit: int = 100) -> list[dict[str, Any]]:
        sql = ("select items.id, items.source, items.title, items.published, c.scope_reason from items "
               "join classifications c on c.item_id = items.id where c.in_scope_untagged = 1 "
               "order by items.published desc limit ?")
        cur = self.db.execute(sql, [limit])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


_ROW_DEFAULTS = {**dict.fromkeys(("source", "url", "title", "summary", "text", "published", "lang", "nature",
                                   "authority", "rubric", "content_hash")), "legal_date": "", "nature_raw": ""}
_JSON_EMPTY = {"identifiers": "{}", "tags": "[]", "extra": "{}"}
_to_json = json.JSONEncoder(ensure_ascii=False, default=str).encode  # built once: json.dumps(**kw) builds one a call


def _item_row(r: Mapping[str, Any], now: str) -> dict[str, Any]:
    row = {**_ROW_DEFAULTS, **r}
    for key, empty in _JSON_EMPTY.items():
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
