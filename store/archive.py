"""Read verbs for the researchers' archive (Datasette plugin pages and Atom feeds)."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

_FEED_COLUMNS = "i.id, i.source, i.url, i.title, i.summary, i.published, i.updated_at, i.first_seen, i.nature, i.themes"


class ArchiveMixin:
    """Archive verbs of the ``Store`` (which provides ``self.db``)."""

    db: Database

    def theme_feed(self, theme: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest items carrying ``theme``, newest first (by publication date, then by arrival)."""
        cursor = self.db.execute(
            f"select {_FEED_COLUMNS} from items i join item_themes t on t.item_id = i.id where t.theme = ? "
            "order by coalesce(i.published, i.first_seen) desc, i.id limit ?", [theme, limit])
        cols = [d[0] for d in cursor.description]
        return [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]

    def known_themes(self) -> list[str]:
        return [r[0] for r in self.db.execute("select distinct theme from item_themes order by theme")]
