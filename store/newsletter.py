"""Newsletter verbs of the Store: the week's candidates, drafts edited under optimistic versioning, the subscriber
list, and the public archive of published issues.

Every edit of a draft names the ``version`` it was made on. The edit and the version bump happen in one
transaction, and only if the draft is still at that version and still a draft: an editor working on a stale page
gets ``False`` back (the caller turns it into a conflict message), never a silent overwrite.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlite_utils import Database

_CANDIDATES = """
select i.id, i.source, i.url, i.title, i.summary, i.published, i.lang, i.nature, i.authority, i.first_seen,
       t.theme, t.score, t.reason, t.origin
from items i join item_themes t on t.item_id = i.id
where coalesce(i.published, i.first_seen) >= ? and coalesce(i.published, i.first_seen) < ? and t.score >= ?
order by i.id, t.score desc, t.theme
"""


def _rows(cursor: Any) -> list[dict[str, Any]]:
    cols = [d[0] for d in cursor.description]
    return [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]


class NewsletterMixin:
    """Newsletter verbs of the ``Store`` (which provides ``self.db``)."""

    db: Database
    transaction: Callable[[], AbstractContextManager[None]]  # the Store's: one write transaction, BEGIN IMMEDIATE

    # -- building a draft ---------------------------------------------------------------------------------------
    def week_candidates(self, start: str, end: str, min_score: float) -> list[dict[str, Any]]:
        """Items published (or first seen, when the source gives no date) in [start, end) with at least one theme
        at ``min_score``; one row per item with its qualifying themes, best first, under ``themes``."""
        items: dict[str, dict[str, Any]] = {}
        for row in _rows(self.db.execute(_CANDIDATES, [start, end, min_score])):
            theme = {k: row.pop(k) for k in ("theme", "score", "reason", "origin")}
            items.setdefault(row["id"], {**row, "themes": []})["themes"].append(theme)
        return list(items.values())

    def identifiers_of(self, item_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {i: [] for i in item_ids}
        for start in range(0, len(item_ids), 500):
            chunk = list(item_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for item_id, scheme, value in self.db.execute(
                    f"select item_id, scheme, value from identifiers where item_id in ({marks}) order by scheme, value",
                    chunk):
                out[item_id].append((scheme, value))
        return out

    def fetch_failures(self, start: str, end: str) -> list[dict[str, Any]]:
        """Per source, the failed polls in [start, end) and the last error; plus sources failing right now."""
        sql = ("select s.name as source, s.consecutive_failures, s.last_success, "
               "(select count(*) from fetch_log f where f.source = s.name and f.outcome = 'failed' "
               " and f.started_at >= ? and f.started_at < ?) as failed_polls, "
               "(select f.error from fetch_log f where f.source = s.name and f.outcome = 'failed' "
               " and f.started_at >= ? and f.started_at < ? order by f.id desc limit 1) as last_error "
               "from sources s order by s.name")
        rows = _rows(self.db.execute(sql, [start, end, start, end]))
        return [r for r in rows if r["failed_polls"] or r["consecutive_failures"]]

    def create_draft(self, draft: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> int:
        """Store a new draft (version 1) and its entries in one transaction; returns its id."""
        with self.transaction():
            row = {**draft, "state": "draft", "version": 1,
                   "health_notes": json.dumps(list(draft.get("health_notes", [])), ensure_ascii=False)}
            draft_id = int(self.db.table("newsletter_drafts").insert(row).last_pk or 0)
            self.db.table("newsletter_entries").insert_all(
                [{**e, "draft_id": draft_id} for e in entries], pk=("draft_id", "item_id"))
        return draft_id

    # -- reading ------------------------------------------------------------------------------------------------
    def draft(self, draft_id: int) -> dict[str, Any] | None:
        rows = _rows(self.db.execute("select * from newsletter_drafts where id = ?", [draft_id]))
        if not rows:
            return None
        rows[0]["health_notes"] = json.loads(rows[0]["health_notes"] or "[]")
        return rows[0]

    def draft_for_week(self, week: str) -> dict[str, Any] | None:
        row = self.db.execute("select id from newsletter_drafts where week = ? order by id desc limit 1",
                              [week]).fetchone()
        return self.draft(row[0]) if row else None

    def drafts(self, limit: int = 50) -> list[dict[str, Any]]:
        return _rows(self.db.execute(
            "select d.id, d.week, d.title, d.state, d.version, d.updated_at, d.updated_by, d.published_at, "
            "(select count(*) from newsletter_entries e where e.draft_id = d.id and e.kept = 1) as kept, "
            "(select count(*) from newsletter_entries e where e.draft_id = d.id) as entries "
            "from newsletter_drafts d order by d.id desc limit ?", [limit]))

    def draft_entries(self, draft_id: int) -> list[dict[str, Any]]:
        """The draft's entries in newsletter order, each with what the page and the message show of its item."""
        return _rows(self.db.execute(
            "select e.item_id, e.theme, e.position, e.kept, e.abstract, e.rank, e.cluster, i.title, i.url, "
            "i.source, i.published, i.legal_date, i.nature, i.nature_raw, i.authority, i.lang, i.identifiers, t.score, "
            "t.reason, t.origin "
            "from newsletter_entries e join items i on i.id = e.item_id "
            "left join item_themes t on t.item_id = e.item_id and t.theme = e.theme "
            "where e.draft_id = ? order by e.position", [draft_id]))

    # -- editing (each edit names the version it was made on) ---------------------------------------------------
    def _bump(self, draft_id: int, version: int, now: str, editor: str) -> bool:
        cursor = self.db.execute(
            "update newsletter_drafts set version = version + 1, updated_at = ?, updated_by = ? "
            "where id = ? and version = ? and state = 'draft'", [now, editor, draft_id, version])
        return cursor.rowcount == 1

    def edit_draft(self, draft_id: int, version: int, *, now: str, editor: str, title: str | None = None,
                   introduction: str | None = None, abstracts: Mapping[str, str] | None = None) -> bool:
        """Change the title, the introduction and/or abstracts; False if the draft moved on since ``version``."""
        with self.transaction():
            if not self._bump(draft_id, version, now, editor):
                return False
            if title is not None:
                self.db.execute("update newsletter_drafts set title = ? where id = ?", [title, draft_id])
            if introduction is not None:
                self.db.execute("update newsletter_drafts set introduction = ? where id = ?", [introduction, draft_id])
            self.db.conn.executemany(
                "update newsletter_entries set abstract = ? where draft_id = ? and item_id = ?",
                [(text, draft_id, item_id) for item_id, text in (abstracts or {}).items()])
        return True

    def keep_entry(self, draft_id: int, version: int, item_id: str, kept: bool, *, now: str, editor: str) -> bool:
        """Shortlist (``kept``) or drop one entry; False if the draft moved on since ``version``."""
        with self.transaction():
            if not self._bump(draft_id, version, now, editor):
                return False
            self.db.execute("update newsletter_entries set kept = ? where draft_id = ? and item_id = ?",
                            [int(kept), draft_id, item_id])
        return True

    def move_entry(self, draft_id: int, version: int, item_id: str, step: int, *, now: str, editor: str) -> bool:
        """Swap an entry with its neighbour of the same theme (``step`` -1: up, +1: down). Moving the first one up
        or the last one down changes nothing but still counts as an edit. False if the draft moved on."""
        with self.transaction():
            if not self._bump(draft_id, version, now, editor):
                return False
            row = self.db.execute("select theme, position from newsletter_entries where draft_id = ? and item_id = ?",
                                  [draft_id, item_id]).fetchone()
            if row is None:
                return True
            compare, order = ("<", "desc") if step < 0 else (">", "asc")
            other = self.db.execute(
                f"select item_id, position from newsletter_entries where draft_id = ? and theme = ? "
                f"and position {compare} ? order by position {order} limit 1", [draft_id, row[0], row[1]]).fetchone()
            if other is not None:
                self.db.conn.executemany(
                    "update newsletter_entries set position = ? where draft_id = ? and item_id = ?",
                    [(other[1], draft_id, item_id), (row[1], draft_id, other[0])])
        return True

    def publish_draft(self, draft_id: int, version: int, issue: Mapping[str, Any],
                      items: Sequence[Mapping[str, Any]], *, now: str, editor: str) -> bool:
        """Freeze the draft as published and archive the issue (HTML, Markdown, its items) in one transaction.
        False if the draft moved on since ``version`` or is already published."""
        with self.transaction():
            if not self._bump(draft_id, version, now, editor):
                return False
            self.db.execute("update newsletter_drafts set state = 'published', published_at = ? where id = ?",
                            [now, draft_id])
            self.db.table("newsletter_issues").insert({**issue, "id": draft_id, "published_at": now})
            self.db.table("newsletter_issue_items").insert_all([{**i, "issue_id": draft_id} for i in items],
                                                               pk=("issue_id", "item_id"))
        return True

    def issue(self, issue_id: int) -> dict[str, Any] | None:
        rows = _rows(self.db.execute("select * from newsletter_issues where id = ?", [issue_id]))
        return rows[0] if rows else None

    def issues(self, limit: int = 50) -> list[dict[str, Any]]:
        return _rows(self.db.execute("select id, week, title, subject, published_at from newsletter_issues "
                                     "order by published_at desc, id desc limit ?", [limit]))

    # -- subscribers --------------------------------------------------------------------------------------------
    def add_subscribers(self, rows: Sequence[Mapping[str, Any]], *, now: str) -> int:
        """Add new addresses (an address already known keeps its state: an unsubscribed one stays out).
        Returns how many were added."""
        before = self.db.conn.total_changes
        self.db.conn.executemany(
            "insert or ignore into newsletter_subscribers (email, name, lang, token, state, origin, created_at) "
            "values (:email, :name, :lang, :token, 'active', :origin, :now)",
            [{"name": "", "lang": "fr", "origin": "", **r, "now": now} for r in rows])
        return self.db.conn.total_changes - before

    def subscribers(self, *, active_only: bool = True) -> list[dict[str, Any]]:
        where = "where state = 'active' " if active_only else ""
        return _rows(self.db.execute(f"select * from newsletter_subscribers {where}order by email"))

    def subscriber_by_token(self, token: str) -> dict[str, Any] | None:
        rows = _rows(self.db.execute("select * from newsletter_subscribers where token = ?", [token]))
        return rows[0] if rows else None

    def unsubscribe(self, *, now: str, token: str | None = None, email: str | None = None) -> bool:
        """Take one address off the list (by its unsubscribe token or its address); False if none matched."""
        column, value = ("token", token) if token else ("email", email)
        cursor = self.db.execute(f"update newsletter_subscribers set state = 'unsubscribed', unsubscribed_at = ? "
                                 f"where {column} = ? and state = 'active'", [now, value])
        return cursor.rowcount == 1

    def newsletter_deliveries(self, issue_id: int) -> list[dict[str, Any]]:
        return _rows(self.db.execute("select * from deliveries where kind = 'newsletter' and period = ? "
                                     "order by recipient", [str(issue_id)]))
