"""Two facets of the items page.

- By month (``_facet_month=published``): ``2026-06``, ``2026-05``... newest first, each a link that filters on
  ``published__startswith=2026-06``. Datasette's own date facet lists single days sorted by count.
- By theme (``{"theme": "themes"}`` in metadata): counts read from the ``themes`` JSON array of each matching item
  (its values are distinct, so no de-duplication pass over whole rows as Datasette's array facet does); choosing one
  adds ``_theme=<id>``, which ``watcher.web.plugin`` turns into an indexed lookup in ``item_themes`` instead of a
  JSON scan of every item.
"""

from __future__ import annotations

from typing import Any

from datasette.database import QueryInterrupted
from datasette.facets import Facet
from datasette.utils import escape_sqlite, path_with_added_args, path_with_removed_args


class _CountingFacet(Facet):
    """What both facets share: one count query per configured column under Datasette's facet time limit (a column
    whose query times out is reported as such, the others are still shown), each value a link that toggles it."""

    async def suggest(self) -> list[dict[str, Any]]:
        return []  # offered through metadata only

    def count_sql(self, column: str) -> str:
        raise NotImplementedError

    def choice(self, column: str, value: str) -> tuple[dict[str, str], bool]:
        """The query argument that selects ``value``, and whether it is selected now."""
        raise NotImplementedError

    async def facet_results(self) -> tuple[list[dict[str, Any]], list[str]]:
        results: list[dict[str, Any]] = []
        timed_out: list[str] = []
        for source_and_config in self.get_configs():
            config, source = source_and_config["config"], source_and_config["source"]
            column = config.get("column") or config["simple"]
            try:
                rows = await self.ds.execute(self.database, self.count_sql(column), self.params, truncate=False,
                                             custom_time_limit=self.ds.setting("facet_time_limit_ms"))
            except QueryInterrupted:
                timed_out.append(column)
                continue
            results.append({"name": column, "type": self.type, "results": self._values(column, rows.rows),
                            "hideable": source != "metadata",
                            "toggle_url": path_with_removed_args(self.request, {f"_facet_{self.type}": column}),
                            "truncated": len(rows) > self.get_facet_size()})
        return results, timed_out

    def _values(self, column: str, rows: list[Any]) -> list[dict[str, Any]]:
        values = []
        for row in rows[: self.get_facet_size()]:
            value = str(row["value"])
            change, selected = self.choice(column, value)
            path = (path_with_removed_args(self.request, change) if selected
                    else path_with_added_args(self.request, change))
            values.append({"value": value, "label": value, "count": row["count"],
                           "toggle_url": self.ds.absolute_url(self.request, path), "selected": selected})
        return values


class MonthFacet(_CountingFacet):
    type = "month"

    def count_sql(self, column: str) -> str:
        return (f"select substr({escape_sqlite(column)}, 1, 7) as value, count(*) as count from ({self.sql}) "
                f"where {escape_sqlite(column)} glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]*' "
                f"group by value order by value desc limit {self.get_facet_size() + 1}")

    def choice(self, column: str, value: str) -> tuple[dict[str, str], bool]:
        return {f"{column}__startswith": value}, self.request.args.get(f"{column}__startswith") == value


class ThemeFacet(_CountingFacet):
    type = "theme"

    def count_sql(self, column: str) -> str:
        return (f"select j.value as value, count(*) as count from ({self.sql}) as inner_rows, "
                f"json_each(inner_rows.{escape_sqlite(column)}) j group by j.value order by count desc, value "
                f"limit {self.get_facet_size() + 1}")

    def choice(self, column: str, value: str) -> tuple[dict[str, str], bool]:
        return {"_theme": value}, value in self.request.args.getlist("_theme")
