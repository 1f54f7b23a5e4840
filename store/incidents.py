"""Operations incidents (a source failing, empty, off its selectors or silent) and the facts they are judged on.

An incident is opened once per (source, kind) and closed when the source heals; each change may carry a ledger
delivery (the message to the admin), written in the same transaction, so a message is owed exactly when the
incident changed state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

_INCIDENT_COLUMNS = "id, source, kind, opened_at, closed_at, detail, open_key, close_key"


class IncidentsMixin:
    """Incident verbs of the ``Store`` (which provides ``self.db`` and the ledger's ``add_deliveries``)."""

    db: Database

    if TYPE_CHECKING:
        def add_deliveries(self, deliveries: Sequence[Mapping[str, Any]]) -> int: ...

    def open_incidents(self) -> list[dict[str, Any]]:
        return self._incidents("closed_at is null", [])

    def incidents(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._incidents("1", [], limit=limit)

    def incident_of_delivery(self, key: str) -> dict[str, Any] | None:
        rows = self._incidents("open_key = ? or close_key = ?", [key, key], limit=1)
        return rows[0] if rows else None

    def open_incident(self, source: str, kind: str, *, now: str, detail: str,
                      delivery: Mapping[str, Any] | None) -> bool:
        """Open an incident unless one of this (source, kind) is open; False if it was already open."""
        with self.db.atomic():
            cursor = self.db.execute(
                "insert or ignore into incidents (source, kind, opened_at, detail, open_key) values (?, ?, ?, ?, ?)",
                [source, kind, now, detail, delivery["key"] if delivery else None])
            if cursor.rowcount != 1:
                return False
            if delivery:
                self.add_deliveries([delivery])
        return True

    def close_incident(self, incident_id: int, *, now: str, delivery: Mapping[str, Any] | None) -> bool:
        with self.db.atomic():
            cursor = self.db.execute("update incidents set closed_at = ?, close_key = ? where id = ? and closed_at "
                                     "is null", [now, delivery["key"] if delivery else None, incident_id])
            if cursor.rowcount != 1:
                return False
            if delivery:
                self.add_deliveries([delivery])
        return True

    def recent_fetches(self, source: str, limit: int = 10) -> list[dict[str, Any]]:
        """The last fetches of a source, newest first: outcome, items seen, error."""
        cursor = self.db.execute("select started_at, outcome, items_seen, items_new, error from fetch_log "
                                 "where source = ? order by id desc limit ?", [source, limit])
        cols = [d[0] for d in cursor.description]
        return [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]

    def last_new_item(self, source: str) -> str | None:
        """When the source last brought an item not seen before (its newest ``first_seen``)."""
        row = self.db.execute("select max(first_seen) from items where source = ?", [source]).fetchone()
        return row[0] if row else None

    def _incidents(self, where: str, args: list[Any], limit: int | None = None) -> list[dict[str, Any]]:
        if not self.db.table("incidents").exists():  # an archive opened read only, before m008_ops_incidents
            return []
        sql = f"select {_INCIDENT_COLUMNS} from incidents where {where} order by id desc"
        cursor = self.db.execute(sql + (f" limit {int(limit)}" if limit else ""), args)
        cols = [d[0] for d in cursor.description]
        return [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]
