"""Links between items through the acts they are or name (tables of ``m009_legal_links``).

``act_mentions`` says which acts each item IS or names; ``links`` ties an item naming an act to the archived item
that IS it. What a mention or a link is, and how a date-only act is told apart, is decided by
``watcher.legal.links``; this module only stores and reads it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlite_utils import Database

from store.sql import chunks, marks, rows

_MENTION_COLUMNS = ("item_id", "scheme", "value", "role", "kind", "context")
_LINK_COLUMNS = ("from_id", "to_id", "kind", "scheme", "value", "reason", "created_at")
_ITEM_COLUMNS = "id, source, url, title, summary, text, nature, identifiers, content_hash, legal_date, published"


class LinksMixin:
    """Link verbs of the ``Store`` (which provides ``self.db`` and ``self.transaction()``)."""

    db: Database
    transaction: Callable[[], AbstractContextManager[None]]

    # -- linking ------------------------------------------------------------------------------------------------
    def items_to_link(self, page_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Items never linked, or whose content changed since, as pages (keyset paging on rowid)."""
        sql = (f"select items.rowid as _rowid, {', '.join('items.' + c for c in _ITEM_COLUMNS.split(', '))} "
               "from items left join link_state s on s.item_id = items.id where (s.item_id is null or "
               "s.content_hash != items.content_hash) and items.rowid > ? order by items.rowid limit ?")
        after = 0
        while page := rows(self.db.execute(sql, [after, page_size])):
            after = page[-1]["_rowid"]
            for row in page:
                del row["_rowid"]
                row["identifiers"] = json.loads(row["identifiers"] or "{}")
            yield page

    def save_mentions(self, item_hashes: Mapping[str, str], mentions: Sequence[Mapping[str, Any]]) -> None:
        """Replace the mentions of these items (``item_hashes``: id -> content hash they were read from), drop the
        links they made, and mark them linked; one transaction."""
        ids = list(item_hashes)
        with self.transaction():
            for chunk in chunks(ids):
                self.db.execute(f"delete from act_mentions where item_id in ({marks(len(chunk))})", list(chunk))
                self.db.execute(f"delete from links where from_id in ({marks(len(chunk))})", list(chunk))
            self.db.conn.executemany(
                f"insert or ignore into act_mentions ({', '.join(_MENTION_COLUMNS)}) values "
                f"({marks(len(_MENTION_COLUMNS))})", [tuple(m.get(c, "") for c in _MENTION_COLUMNS) for m in mentions])
            self.db.conn.executemany("insert or replace into link_state (item_id, content_hash) values (?, ?)",
                                     list(item_hashes.items()))

    def mentions_of(self, pairs: Sequence[tuple[str, str]], role: str) -> list[dict[str, Any]]:
        """Mentions with ``role`` ('is' or 'cites') of these (scheme, value) acts, with the item's title, source,
        url and legal date."""
        out: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(pairs))
        for chunk in chunks(unique, 400):
            # the wanted acts as a VALUES table joined on the (scheme, value, role) index
            pairs_sql = ", ".join("(?, ?)" for _ in chunk)
            args = [x for pair in chunk for x in pair]
            out.extend(rows(self.db.execute(
                f"with wanted(scheme, value) as (values {pairs_sql}) "
                "select m.item_id, m.scheme, m.value, m.role, m.kind, m.context, i.title, i.source, i.url, "
                "i.legal_date from wanted w join act_mentions m indexed by idx_act_mentions_scheme_value_role "
                "on m.scheme = w.scheme and m.value = w.value and m.role = ? join items i on i.id = m.item_id",
                [*args, role])))
        return out

    def save_links(self, links: Sequence[Mapping[str, Any]]) -> int:
        """Insert links (an existing (from, to) pair keeps its first kind); returns how many were new."""
        if not links:
            return 0
        before = self.db.conn.total_changes
        with self.transaction():
            self.db.conn.executemany(
                f"insert or ignore into links ({', '.join(_LINK_COLUMNS)}) values ({marks(len(_LINK_COLUMNS))})",
                [tuple(link.get(c, "") for c in _LINK_COLUMNS) for link in links])
        return self.db.conn.total_changes - before

    def add_link_themes(self, rows_: Sequence[Mapping[str, Any]]) -> int:
        """Themes that flow along links (origin 'link'): added only where the item has no row for that theme yet
        and no person removed it; a person's correction always wins. Returns rows added."""
        added = 0
        with self.transaction():
            for row in rows_:
                removed = self.db.execute(
                    "select action from labels where item_id = ? and theme = ? order by id desc limit 1",
                    [row["item_id"], row["theme"]]).fetchone()
                if removed and removed[0] == "remove":
                    continue
                cursor = self.db.execute(
                    "insert or ignore into item_themes (item_id, theme, score, reason, origin, model, model_version, "
                    "classified_at) values (?, ?, ?, ?, 'link', '', '', ?)",
                    [row["item_id"], row["theme"], row["score"], row["reason"], row["classified_at"]])
                if cursor.rowcount:
                    added += 1
                    self.db.execute("""update items set themes = coalesce((select json_group_array(theme) from
                                       (select theme from item_themes where item_id = ? order by theme)), '[]')
                                       where id = ?""", [row["item_id"], row["item_id"]])
        return added

    def item_theme_rows(self, item_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The theme rows of each item (origin 'link' left out: themes flow one link, not along chains)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for chunk in chunks(list(dict.fromkeys(item_ids))):
            for row in rows(self.db.execute(
                    "select item_id, theme, score, origin from item_themes where origin != 'link' and "
                    f"item_id in ({marks(len(chunk))})", list(chunk))):
                out.setdefault(row["item_id"], []).append(row)
        return out

    def changed_deliveries(self, subscriptions: Sequence[str], since: str) -> list[dict[str, Any]]:
        """(subscription, item_id, version) of the items sent (or on their way) to these subscriptions whose
        content changed after they were matched: what an "updated" alert tells."""
        if not subscriptions:
            return []
        sql = ("select d.subscription, d.item_id, i.version from delivery_items d join items i on i.id = d.item_id "
               f"where d.subscription in ({marks(len(subscriptions))}) and d.delivery_key is not null and "
               "d.withdrawn = 0 and i.version > 1 and i.updated_at > d.matched_at and i.updated_at <= ? "
               "order by i.updated_at, d.item_id")
        return rows(self.db.execute(sql, [*subscriptions, since]))

    # -- reading ------------------------------------------------------------------------------------------------
    def act_url(self, scheme: str, value: str) -> str | None:
        """The page of the archived text that IS this act (a JO or CNIL text's own Légifrance page), or None."""
        row = self.db.execute("select i.url from act_mentions m join items i on i.id = m.item_id where "
                              "m.scheme = ? and m.value = ? and m.role = 'is' and i.url like 'https://%' "
                              "order by i.legal_date limit 1", [scheme, value]).fetchone()
        return row[0] if row else None

    def links_of(self, item_id: str) -> list[dict[str, Any]]:
        """The item's links both ways: ``direction`` 'to' (this item names the other) or 'from' (the other names
        this one), with the other item's id, title, source, url and legal date; in date order."""
        sql = ("select 'to' as direction, l.kind, l.scheme, l.value, l.reason, i.id, i.title, i.source, i.url, "
               "i.legal_date from links l join items i on i.id = l.to_id where l.from_id = ? union all "
               "select 'from', l.kind, l.scheme, l.value, l.reason, i.id, i.title, i.source, i.url, i.legal_date "
               "from links l join items i on i.id = l.from_id where l.to_id = ? order by legal_date, id")
        return rows(self.db.execute(sql, [item_id, item_id]))

    def links_among(self, item_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(from, to) of the links whose two ends are both in ``item_ids``."""
        ids = list(dict.fromkeys(item_ids))
        if len(ids) < 2:
            return []
        out: list[tuple[str, str]] = []
        for chunk in chunks(ids, 400):
            out.extend((r[0], r[1]) for r in self.db.execute(
                f"select from_id, to_id from links where from_id in ({marks(len(chunk))})", list(chunk)))
        wanted = set(ids)
        return [(a, b) for a, b in out if b in wanted]

    def act_page(self, pairs: Sequence[tuple[str, str]]) -> dict[str, list[dict[str, Any]]]:
        """For an act given by its (scheme, value) pairs: the items that ARE it (``acts``) and the items that name
        it or are linked to it (``citing``, with how), each once, in date order."""
        def select(role: str) -> list[dict[str, Any]]:
            found: dict[str, dict[str, Any]] = {}
            for row in self.mentions_of(pairs, role):
                found.setdefault(row["item_id"], row)
            return sorted(found.values(), key=lambda r: (r["legal_date"] or "", r["item_id"]))

        acts = select("is")
        citing = {r["item_id"]: r for r in select("cites")}
        for act in acts:
            for link in self.links_of(act["item_id"]):
                if link["direction"] == "from" and link["id"] not in citing:
                    citing[link["id"]] = {"item_id": link["id"], "title": link["title"], "source": link["source"],
                                          "url": link["url"], "legal_date": link["legal_date"],
                                          "kind": link["kind"]}
        for act in acts:
            citing.pop(act["item_id"], None)
        return {"acts": acts, "citing": sorted(citing.values(), key=lambda r: (r["legal_date"] or "", r["item_id"]))}

    def items_naming(self, pairs: Sequence[tuple[str, str]], since: str = "") -> list[dict[str, Any]]:
        """Items that name one of these acts (mention 'cites', any kind) or are linked to an item that IS one,
        first stored at ``since`` or later: what an act's followers receive. Each with the act it names."""
        found: dict[str, dict[str, Any]] = {}
        for row in self.mentions_of(pairs, "cites"):
            found.setdefault(row["item_id"], row)
        acts = {r["item_id"]: r for r in self.mentions_of(pairs, "is")}
        for chunk in chunks(list(acts), 400):
            for from_id, to_id, kind in self.db.execute(
                    f"select from_id, to_id, kind from links where to_id in ({marks(len(chunk))})", list(chunk)):
                act = acts[to_id]
                found.setdefault(from_id, {"item_id": from_id, "scheme": act["scheme"], "value": act["value"],
                                           "kind": kind})
        if not found:
            return []
        out: list[dict[str, Any]] = []
        for chunk in chunks(list(found), 400):
            out.extend(rows(self.db.execute(
                f"select id as item_id, source, nature, lang, published, first_seen from items where id in "
                f"({marks(len(chunk))}) and first_seen >= ?", [*chunk, since])))
        return [{**found[r["item_id"]], **r} for r in out]
