"""The delivery ledger: who was told what, by which channel, and in which state each message is.

States of a ``deliveries`` row (one per item-or-digest x recipient x channel, keyed by a deterministic ``key``)::

    pending --claim--> sending --mark_sent--> sent
                          |---mark_failed--> failed --(next_attempt_at reached)--> claim again
                          |---mark_held----> held   (a person decides: requeue or mark sent)
                          '---(crash)------> stays 'sending'; recovered by the sender after a grace period
    pending/failed --cancel--> cancelled (every theme that matched was removed by a person before sending)

``delivery_items`` says which items each delivery carries: one row per (subscription, item), so an item reaches a
subscription at most once, ever. Digest matches wait there with no ``delivery_key`` until their digest is opened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from store.sql import chunks, marks, rows

STATES = ("pending", "sending", "sent", "failed", "held", "cancelled")

_DELIVERY_COLUMNS = ("key", "kind", "subscription", "recipient", "channel", "period", "item_id", "state",
                     "attempts", "created_at", "updated_at", "message_id")


class DeliveriesMixin:
    """Ledger verbs of the ``Store`` (which provides ``self.db`` and ``self.transaction()``)."""

    db: Database

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[None]: ...

    # -- subscriptions managed with ``watcher subscribe`` -------------------------------------------------------
    def save_subscription(self, name: str, spec: Mapping[str, Any], *, now: str) -> None:
        created = self.db.execute("select created_at from subscriptions where name = ?", [name]).fetchone()
        self.db.table("subscriptions").upsert(
            {"name": name, "spec": json.dumps(dict(spec), ensure_ascii=False, sort_keys=True),
             "created_at": created[0] if created else now, "updated_at": now},
            pk="name")

    def delete_subscription(self, name: str) -> bool:
        cursor = self.db.execute("delete from subscriptions where name = ?", [name])
        return cursor.rowcount > 0

    def stored_subscriptions(self) -> list[dict[str, Any]]:
        rows = self.db.execute("select name, spec, created_at, updated_at from subscriptions order by name")
        return [{"name": r[0], "spec": json.loads(r[1]), "created_at": r[2], "updated_at": r[3]} for r in rows]

    # -- planning -----------------------------------------------------------------------------------------------
    def alert_candidates(self, limit: int = 50_000) -> tuple[int, list[dict[str, Any]]]:
        """Theme rows written since the last planning (the oldest ``limit`` queued), with what filters and the
        baseline need; and the queue id to drain up to.

        A queued theme that no longer exists (removed by a person) does not join, so it is never a candidate.
        """
        upto = self.db.execute("select coalesce(max(id), 0) from (select id from alert_queue order by id limit ?)",
                               [limit]).fetchone()[0]
        sql = ("select distinct t.item_id, t.theme, t.score, t.origin, i.source, i.nature, i.lang, i.published, "
               "i.first_seen from alert_queue q join item_themes t on t.item_id = q.item_id and t.theme = q.theme "
               "join items i on i.id = t.item_id where q.id <= ? order by q.id")
        return upto, rows(self.db.execute(sql, [upto]))

    def subscription_starts(self, names: Sequence[str], now: str, *, record: bool = True) -> dict[str, str]:
        """When each subscription began; what was stored before is not news to it. A subscription stored with
        ``watcher subscribe`` began when it was stored; one from a config file, when the planner first saw it
        (``now``), except on the very first planning of the archive, where every such subscription is as old as
        the archive (``""``: only the age of the items then decides). Nothing is written if not ``record``."""
        known = dict(self.db.execute("select name, started_at from subscription_starts").fetchall())
        stored = dict(self.db.execute("select name, created_at from subscriptions").fetchall())
        fresh = now if known else ""
        starts: dict[str, str] = {n: str(known.get(n, stored.get(n, fresh)) or "") for n in names}
        if record and any(n not in known for n in names):
            with self.db.atomic():
                self.db.conn.executemany("insert or ignore into subscription_starts (name, started_at) values (?, ?)",
                                         [(n, starts[n]) for n in names if n not in known])
        return starts

    def first_fetches(self) -> dict[str, str]:
        """When each source was first fetched without failure (what came then was already there)."""
        sql = "select source, min(started_at) from fetch_log where outcome != 'failed' group by source"
        return {r[0]: r[1] for r in self.db.execute(sql)}

    def theme_rows_since(self, themes: Sequence[str], since: str, subscription: str) -> list[dict[str, Any]]:
        """Theme rows (as ``alert_candidates`` gives them) of items whose legal date (if undated: first storing)
        is ``since`` or later, that ``subscription`` never got: what ``deliver --since`` may send in one digest."""
        sql = ("select t.item_id, t.theme, t.score, t.origin, i.source, i.nature, i.lang, i.published, "
               "i.first_seen from item_themes t join items i on i.id = t.item_id "
               f"where t.theme in ({marks(len(themes))}) and (i.legal_date >= ? or (i.legal_date = '' and i.first_seen >= ?)) "
               "and not exists (select 1 from delivery_items d "
               "where d.subscription = ? and d.item_id = t.item_id) order by i.legal_date, t.item_id")
        return rows(self.db.execute(sql, [*themes, since, since, subscription]))

    def matched_pairs(self, item_ids: Sequence[str]) -> set[tuple[str, str]]:
        """(subscription, item) pairs already matched once: they never match again."""
        out: set[tuple[str, str]] = set()
        for chunk in chunks(list(dict.fromkeys(item_ids))):
            sql = f"select subscription, item_id from delivery_items where item_id in ({marks(len(chunk))})"
            out.update((r[0], r[1]) for r in self.db.execute(sql, list(chunk)))
        return out

    def record_matches(self, upto: int, matches: Sequence[Mapping[str, Any]],
                       deliveries: Sequence[Mapping[str, Any]]) -> int:
        """Store new matches and instant deliveries and drain the queue, in one transaction.

        Returns the number of deliveries created (an existing key is left as it is: that is the idempotency).
        """
        match_sql = ("insert or ignore into delivery_items (subscription, item_id, theme, score, cadence, "
                     "matched_at, delivery_key) values (:subscription, :item_id, :theme, :score, :cadence, "
                     ":matched_at, :delivery_key)")
        with self.transaction():
            created = self.add_deliveries(deliveries)
            self.db.conn.executemany(match_sql, [dict(m) for m in matches])
            self.db.execute("delete from alert_queue where id <= ?", [upto])
        return created

    def add_deliveries(self, deliveries: Sequence[Mapping[str, Any]]) -> int:
        """Add ledger rows (``key`` and the other ``deliveries`` columns; ``attempts`` 0 and the rest "" when not
        given); a key already there is left as it is. Returns how many were created. Runs inside the caller's
        transaction when there is one (the incidents write theirs with the incident)."""
        if not deliveries:
            return 0
        cols = ", ".join(_DELIVERY_COLUMNS)
        names = ", ".join(f":{c}" for c in _DELIVERY_COLUMNS)
        before = self.db.conn.total_changes
        values = [{c: d.get(c, 0 if c == "attempts" else "") for c in _DELIVERY_COLUMNS} for d in deliveries]
        self.db.conn.executemany(f"insert or ignore into deliveries ({cols}) values ({names})", values)
        return self.db.conn.total_changes - before

    def unassigned_matches(self, subscription: str, until: str) -> list[dict[str, Any]]:
        """Digest matches of a subscription not yet put in a digest, matched at or before ``until``."""
        sql = ("select item_id, theme, score, matched_at from delivery_items where subscription = ? "
               "and delivery_key is null and withdrawn = 0 and matched_at <= ? order by matched_at, item_id")
        return rows(self.db.execute(sql, [subscription, until]))

    def open_digests(self, digests: Sequence[tuple[Mapping[str, Any], str, Sequence[str], float]]) -> int:
        """Open digest deliveries, each given as (delivery row, until, themes, min_score), in one transaction.

        For each: matches waiting since before ``until`` whose item no longer has any of ``themes`` at
        ``min_score`` (a person removed them) are withdrawn; if some remain, the delivery is created and they are
        put in it. Returns how many digests were opened (none if nothing waits or the key already exists).
        """
        with self.transaction():
            return sum(self._open_digest(d, u, t, m) for d, u, t, m in digests)

    def _open_digest(self, delivery: Mapping[str, Any], until: str, themes: Sequence[str], min_score: float) -> int:
        sub = delivery["subscription"]
        waiting = "subscription = ? and delivery_key is null and withdrawn = 0 and matched_at <= ?"
        # a match made by a followed act ("act:...") does not depend on themes: never withdrawn for want of one
        self.db.execute(f"update delivery_items set withdrawn = 1 where {waiting} and theme not like 'act:%' and "
                        f"not exists (select 1 from "
                        f"item_themes t where t.item_id = delivery_items.item_id and t.theme in ({marks(len(themes))}) and "
                        f"t.score >= ?)", [sub, until, *themes, min_score])
        if not self.db.execute(f"select 1 from delivery_items where {waiting} limit 1", [sub, until]).fetchone():
            return 0
        if not self.add_deliveries([delivery]):
            return 0
        self.db.execute(f"update delivery_items set delivery_key = ? where {waiting}", [delivery["key"], sub, until])
        return 1

    def digest_exists(self, key: str) -> bool:
        return self.db.execute("select 1 from deliveries where key = ?", [key]).fetchone() is not None

    # -- sending ------------------------------------------------------------------------------------------------
    def due_deliveries(self, now: str, *, kinds: Sequence[str] | None = None,
                       limit: int | None = None) -> list[dict[str, Any]]:
        where = "(state = 'pending' or (state = 'failed' and next_attempt_at <= ?))"
        args: list[Any] = [now]
        if kinds:
            where += f" and kind in ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        return list(self.db.table("deliveries").rows_where(where, args, order_by="created_at, key", limit=limit))

    def stale_sending(self, before: str) -> list[dict[str, Any]]:
        """Rows left in 'sending' since before ``before``: their process died between sending and recording."""
        return list(self.db.table("deliveries").rows_where("state = 'sending' and sending_at <= ?", [before],
                                                     order_by="sending_at, key"))

    def claim_delivery(self, key: str, *, now: str, message_id: str, stale_before: str | None = None) -> bool:
        """Mark a due row 'sending' (attempts + 1) before the send. False if another process has it or it is done.

        With ``stale_before``, a row stuck in 'sending' since before that time may be claimed again (recovery).
        """
        sql = ("update deliveries set state = 'sending', attempts = attempts + 1, sending_at = ?, updated_at = ?, "
               "message_id = ? where key = ? and (state = 'pending' or (state = 'failed' and next_attempt_at <= ?)")
        args: list[Any] = [now, now, message_id, key, now]
        if stale_before is not None:
            sql += " or (state = 'sending' and sending_at <= ?)"
            args.append(stale_before)
        return self.db.execute(sql + ")", args).rowcount == 1

    def mark_sent(self, key: str, *, now: str) -> None:
        self._set(key, "sent", now, sent_at=now, next_attempt_at=None)

    def mark_failed(self, key: str, *, now: str, error: str, next_attempt_at: str) -> None:
        self._set(key, "failed", now, last_error=error, next_attempt_at=next_attempt_at)

    def mark_held(self, key: str, *, now: str, reason: str) -> None:
        self._set(key, "held", now, last_error=reason, next_attempt_at=None)

    def cancel_delivery(self, key: str, *, now: str, reason: str) -> None:
        self._set(key, "cancelled", now, last_error=reason, next_attempt_at=None)

    def _set(self, key: str, state: str, now: str, **values: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        self.db.execute(f"update deliveries set state = ?, updated_at = ?, {sets} where key = ?",
                        [state, now, *values.values(), key])

    def requeue_deliveries(self, *, now: str, keys: Sequence[str] = (), state: str = "held") -> int:
        """Put held (or failed) rows back to 'pending', e.g. after a person fixed an address or a password."""
        sql = "update deliveries set state = 'pending', next_attempt_at = null, attempts = 0, updated_at = ? " \
              "where state = ?"
        args: list[Any] = [now, state]
        if keys:
            sql += f" and key in ({','.join('?' * len(keys))})"
            args.extend(keys)
        return self.db.execute(sql, args).rowcount

    def confirm_sent(self, key: str, *, now: str) -> bool:
        """A person checked a held row's channel and saw the message arrive."""
        cursor = self.db.execute("update deliveries set state = 'sent', sent_at = ?, updated_at = ? "
                                 "where key = ? and state in ('held', 'sending')", [now, now, key])
        return cursor.rowcount == 1

    # -- reading ------------------------------------------------------------------------------------------------
    def get_delivery(self, key: str) -> dict[str, Any] | None:
        rows = list(self.db.table("deliveries").rows_where("key = ?", [key]))
        return rows[0] if rows else None

    def deliveries(self, state: str | None = None, limit: int | None = 100) -> list[dict[str, Any]]:
        where, args = ("state = ?", [state]) if state else (None, [])
        return list(self.db.table("deliveries").rows_where(where, args, order_by="created_at desc, key", limit=limit))

    def delivery_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute("select state, count(*) from deliveries group by state")}

    def delivery_item_ids(self, key: str, subscription: str) -> list[str]:
        sql = ("select item_id from delivery_items where subscription = ? and delivery_key = ? and withdrawn = 0 "
               "order by matched_at, item_id")
        return [r[0] for r in self.db.execute(sql, [subscription, key])]

    def alert_items(self, item_ids: Sequence[str]) -> list[dict[str, Any]]:
        """What a message shows of each item, in the order asked (missing ids are skipped)."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(list(item_ids)):
            cursor = self.db.execute("select id, source, url, title, summary, published, legal_date, lang, nature, "
                                     f"nature_raw, authority, identifiers from items where id in ({marks(len(chunk))})", list(chunk))
            found.update((row["id"], {**row, "identifiers": json.loads(row["identifiers"] or "{}")})
                         for row in rows(cursor))
        return [found[i] for i in item_ids if i in found]

    def themes_of_items(self, item_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The current themes of each item, best first."""
        out: dict[str, list[dict[str, Any]]] = {i: [] for i in item_ids}
        for chunk in chunks(list(item_ids)):
            cursor = self.db.execute("select item_id, theme, score, reason, origin from item_themes "
                                     f"where item_id in ({marks(len(chunk))}) order by score desc, theme", list(chunk))
            for row in rows(cursor):
                out[row["item_id"]].append(row)
        return out
