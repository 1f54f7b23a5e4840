"""A facet by month (``_facet_month=published``): ``2026-06``, ``2026-05``... newest first, each a link that
filters on ``published__startswith=2026-06``. Datasette's own date facet lists single days sorted by count."""

from __future__ import annotations

from typing import Any

from datasette.database import QueryInterrupted
from datasette.facets import Facet
from datasette.utils import escape_sqlite, path_with_added_args, path_with_removed_args


class MonthFacet(Facet):
    type = "month"

    async def suggest(self) -> list[dict[str, Any]]:
        return []  # offered through metadata only, on ISO date columns

    async def facet_results(self) -> tuple[list[dict[str, Any]], list[str]]:
        results: list[dict[str, Any]] = []
        timed_out: list[str] = []
        args = dict(self.get_querystring_pairs())
        for source_and_config in self.get_configs():
            config, source = source_and_config["config"], source_and_config["source"]
            column = config.get("column") or config["simple"]
            sql = (f"select substr({escape_sqlite(column)}, 1, 7) as value, count(*) as count from ({self.sql}) "
                   f"where {escape_sqlite(column)} glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]*' "
                   f"group by value order by value desc limit {self.get_facet_size() + 1}")
            try:
                rows = await self.ds.execute(self.database, sql, self.params, truncate=False,
                                             custom_time_limit=self.ds.setting("facet_time_limit_ms"))
            except QueryInterrupted:
                timed_out.append(column)
                continue
            selected_value = args.get(f"{column}__startswith")
            values = []
            for row in rows.rows[: self.get_facet_size()]:
                selected = selected_value == row["value"]
                change = {f"{column}__startswith": row["value"]}
                path = (path_with_removed_args(self.request, change) if selected
                        else path_with_added_args(self.request, change))
                values.append({"value": row["value"], "label": row["value"], "count": row["count"],
                               "toggle_url": self.ds.absolute_url(self.request, path), "selected": selected})
            results.append({"name": column, "type": self.type, "results": values, "hideable": source != "metadata",
                            "toggle_url": path_with_removed_args(self.request, {"_facet_month": column}),
                            "truncated": len(rows) > self.get_facet_size()})
        return results, timed_out


class ThemeFacet(Facet):
    """The items' themes (``{"theme": "themes"}`` in metadata): counts read from the ``themes`` JSON array of each
    matching item (its values are distinct, so no de-duplication pass over whole rows as Datasette's array facet
    does); choosing one adds ``_theme=<id>``, which ``watcher.web.plugin`` turns into an indexed lookup in
    ``item_themes`` instead of a JSON scan of every item."""

    type = "theme"

    async def suggest(self) -> list[dict[str, Any]]:
        return []

    async def facet_results(self) -> tuple[list[dict[str, Any]], list[str]]:
        results: list[dict[str, Any]] = []
        timed_out: list[str] = []
        chosen = set(self.request.args.getlist("_theme"))
        for source_and_config in self.get_configs():
            config, source = source_and_config["config"], source_and_config["source"]
            column = config.get("column") or config["simple"]
            sql = (f"select j.value as value, count(*) as count from ({self.sql}) as inner_rows, "
                   f"json_each(inner_rows.{escape_sqlite(column)}) j group by j.value order by count desc, value "
                   f"limit {self.get_facet_size() + 1}")
            try:
                rows = await self.ds.execute(self.database, sql, self.params, truncate=False,
                                             custom_time_limit=self.ds.setting("facet_time_limit_ms"))
            except QueryInterrupted:
                timed_out.append(column)
                continue
            values = []
            for row in rows.rows[: self.get_facet_size()]:
                value = str(row["value"])
                path = (path_with_removed_args(self.request, {"_theme": value}) if value in chosen
                        else path_with_added_args(self.request, {"_theme": value}))
                values.append({"value": value, "label": value, "count": row["count"],
                               "toggle_url": self.ds.absolute_url(self.request, path), "selected": value in chosen})
            results.append({"name": column, "type": self.type, "results": values, "hideable": source != "metadata",
                            "toggle_url": path_with_removed_args(self.request, {"_facet_theme": column}),
                            "truncated": len(rows) > self.get_facet_size()})
        return results, timed_out
