"""Read verbs for the researchers' archive (Datasette plugin pages and Atom feeds)."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from store import counts

RARE = 50  # a theme held by fewer than 1 item in RARE is read from its own list of items
_FEED_COLUMNS = ("i.id, i.source, i.url, i.title, i.summary, i.published, i.updated_at, i.first_seen, i.nature, i.themes, "
                 "i.identifiers")


class ArchiveMixin:
    """Archive verbs of the ``Store`` (which provides ``self.db``)."""

    db: Database

    def theme_feed(self, theme: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest items carrying ``theme``, by publication date (undated ones last). A theme many items carry
        is read from the date index until ``limit`` match, so it costs the same on a large archive (``limit 1``
        keeps the EXISTS a lookup per item: a newer SQLite would otherwise read every item of the theme into a
        Bloom filter first); a rare theme (by the kept counts) from its own list of items, sorted (the date index
        would be walked through most of the archive, all of it for a theme no item has)."""
        if self._rare_theme(theme):
            where = "i.id in (select t.item_id from item_themes t where t.theme = ?)"
        else:
            where = "exists (select 1 from item_themes t where t.item_id = i.id and t.theme = ? limit 1)"
        cursor = self.db.execute(f"select {_FEED_COLUMNS} from items i where {where} order by i.published desc "
                                 "limit ?", [theme, limit])
        cols = [d[0] for d in cursor.description]
        return [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]

    def _rare_theme(self, theme: str) -> bool:
        if not self.db[counts.TABLE].exists():
            return False
        return counts.total(self.db.conn, theme) * RARE < counts.total(self.db.conn)
