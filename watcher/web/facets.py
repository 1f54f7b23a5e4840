"""The items page's counts, and its search ranked by relevance, at a million items.

Facets of the items page:

- By month (``_facet_month=published``): ``2026-06``, ``2026-05``... newest first, each a link that filters on
  ``published__startswith=2026-06``. Datasette's own date facet lists single days sorted by count.
- By theme (``{"theme": "themes"}`` in metadata): choosing one adds ``_theme=<id>``, which ``watcher.web.plugin``
  turns into an indexed lookup in ``item_themes`` instead of a JSON scan of every item.
- By source, kind of act, authority and language: Datasette's column facets.

Where the counts come from (``ArchiveDatabase``, the archive's Datasette database, reads each counting query of
the items page and answers it from the cheapest exact source):

- the whole archive or one theme (no filter, or only ``_theme=<id>``): the counts the store keeps
  (``store.counts``), read from a few hundred rows instead of counting every item;
- a search alone (``?_search=``): the number of matches is counted up to ``SEARCH_COUNT_CAP`` and shown as
  "≥ 10,000" past it; each facet counts the ``SEARCH_FACET_SAMPLE`` matches stored last, and when the search has
  more matches than that its counts are lower bounds, shown as such ("≥ 12");
- anything else (a search within a theme, a source filter...): counted by SQLite as Datasette does.

Ranking: a search without a sort chosen by the visitor lists its best matches by relevance (FTS5's bm25, ``order
by rank`` inside the FTS query with the page's limit). A search alone ranks the ``store.store.RANK_WINDOW`` (5,000)
matches stored last
(every match when it has no more; FTS5 scores only those, so its cost does not grow with the archive); a search
with other filters ranks every match. A ranked page is the ``_size`` best (at most ``max_returned_rows``), with no
next page; sorting by a column (e.g. the date) lists every match page by page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from datasette.database import Database, QueryInterrupted, Results
from datasette.facets import Facet
from datasette.utils import escape_sqlite, path_with_added_args, path_with_removed_args

from store.store import ranked_matches_sql

SEARCH_COUNT_CAP = 10_000
SEARCH_FACET_SAMPLE = 2_000
KEPT_COLUMNS = frozenset({"source", "nature", "authority", "lang"})  # Datasette's column facets read from the counts
# the clause Datasette writes for ?_search= (datasette.filters.search_filters, fts_table and fts_pk of metadata.json)
SEARCH_CLAUSE = "rowid in (select rowid from items_fts where items_fts match escape_fts(:search))"
# the clause the plugin adds to a search alone with no sort chosen: true, and a sign that it is ranked by relevance
RANKED_CLAUSE = "1 /* watcher: by relevance */"
_THEME_CLAUSE = re.compile(r"exists \(select 1 from item_themes t where t\.item_id = items\.id "
                           r"and t\.theme = :(watcher_theme_\d+) limit 1\)"
                           r"|items\.id in \(select t\.item_id from item_themes t where t\.theme = :(watcher_theme_\d+)\)")
RARE = 50  # a theme held by fewer than 1 item in RARE is read from its own list of items (theme_clause)
# the clause of Datasette's next-page cursor on the items' default order (legal_date desc, then id): the facets
# of a page further down count the whole selection, as its row count does (not only the rows after the cursor)
_CURSOR = re.compile(r"\(legal_date < :p\d+ or legal_date is null or \(legal_date = :p\d+ and \(\(id > :p\d+\)\)\)\)"
                     r"|\(legal_date is null and \(\(id > :p\d+\)\)\)"
                     r"|\(legal_date <= :p\d+ and \(legal_date < :p\d+ or id > :p\d+\)\)")
# the same cursor as SQLite can walk the date index from (legal_date is NOT NULL in the schema, m008): a page far
# down starts at the cursor instead of filtering every newer item
_WALKABLE_CURSOR = re.compile(r"\(legal_date < :(p\d+) or legal_date is null or \(legal_date = :\1 and "
                              r"\(\(id > :(p\d+)\)\)\)\)")
_SPACE = re.compile(r"\s+")
_SELECT = re.compile(r"select (?P<columns>.+?) from items (?:where (?P<where>.+?) )?"
                     r"order by legal_date desc limit (?P<limit>\d+)")
_COUNT = re.compile(r"select count\(\*\) from items(?: where (?P<where>.+?))?")
_COLUMN_FACET = re.compile(r"select (?P<column>\w+) as value, count\(\*\) as count from \( select .+? from items"
                           r"(?: where (?P<where>.+?))? \) where (?P=column) is not null group by (?P=column) "
                           r"order by count desc, value limit (?P<limit>\d+)")
_INNER = re.compile(r"select .+? from items(?: where (?P<where>.+?))?")


def theme_clause(name: str, *, rare: bool = False) -> str:
    """The filter of ``?_theme=`` (parameter ``name``):

    - a theme held by many items: a correlated EXISTS on ``item_themes``' primary key, so that the page's rows come
      from walking the date index until a page matches (an IN list would first collect and sort every matching
      item). ``limit 1`` keeps it a correlated lookup: without it, SQLite 3.38+ (Datasette's, through pysqlite3)
      turns the EXISTS into a join behind a Bloom filter that first reads every item of the theme (400 ms instead
      of 20 ms for a page of 50 at 1,000,000 items);
    - a ``rare`` theme (fewer than 1 item in ``RARE``, or none): the theme's own list of items, sorted (walking
      the date index would pass most of the archive before finding a page, or all of it for an empty theme)."""
    if rare:
        return f"items.id in (select t.item_id from item_themes t where t.theme = :{name})"
    return f"exists (select 1 from item_themes t where t.item_id = items.id and t.theme = :{name} limit 1)"


async def theme_sizes(db: Any, themes: list[str]) -> dict[str, bool]:
    """{theme: whether it is rare} from the kept counts ({} when the archive keeps none: every theme as common)."""
    marks = ", ".join(f":t{n}" for n in range(len(themes)))
    try:
        rows = await Database.execute(db, f"select scope, n from item_counts where facet = 'total' and value = '' "
                                          f"and scope in ('', {marks})", {f"t{n}": t for n, t in enumerate(themes)})
    except Exception as exc:
        if "no such table" in str(exc):
            return {}
        raise
    sizes = {row[0]: row[1] for row in rows.rows}
    archive = sizes.get("", 0)
    return {theme: sizes.get(theme, 0) * RARE < archive for theme in themes}


class AtLeast(int):
    """A count known to be at least this much: reads "≥ 10,000" in the page (JSON gives the number)."""

    def __format__(self, spec: str) -> str:
        return "≥ " + int.__format__(self, spec)

    def __str__(self) -> str:
        return f"≥ {int(self)}"


@dataclass(frozen=True)
class Scope:
    """What the WHERE of a query of the items page selects, as far as counting is concerned."""

    themes: tuple[str, ...] = ()  # parameter names of the ?_theme= clauses
    search: bool = False
    ranked: bool = False
    rest: tuple[str, ...] = field(default=())  # any other clause

    @property
    def kept(self) -> bool:
        """Answered by the kept counts: the whole archive or one theme."""
        return not self.search and not self.rest and len(self.themes) <= 1

    @property
    def search_alone(self) -> bool:
        return self.search and not self.themes and not self.rest


def scope_of(where: str | None) -> Scope:
    """Split a WHERE (Datasette joins its clauses with `` and ``) into the clauses this module knows."""
    text = (where or "").strip()
    search = SEARCH_CLAUSE in text
    ranked = RANKED_CLAUSE in text
    text = _CURSOR.sub(" ", text.replace(SEARCH_CLAUSE, " ").replace(RANKED_CLAUSE, " "))
    themes = tuple(a or b for a, b in _THEME_CLAUSE.findall(text))
    text = _THEME_CLAUSE.sub(" ", text)
    rest = tuple(part.strip() for part in re.split(r"\band\b", text) if part.strip())
    return Scope(themes=themes, search=search, ranked=ranked, rest=rest)


def scope_name(scope: Scope, params: Any) -> str:
    """The scope of the kept counts: '' (the whole archive) or the theme chosen."""
    return str(params[scope.themes[0]]) if scope.themes else ""


def newest_matches(limit: int) -> str:
    """The rowids of the ``limit`` matches of ``:search`` stored last (FTS5 walks its index backwards and stops)."""
    return (f"select rowid as watcher_rowid from items_fts where items_fts match escape_fts(:search) "
            f"order by rowid desc limit {limit}")


def sample_sql(expression: str) -> str:
    """``expression`` (over ``items``) of the ``SEARCH_FACET_SAMPLE`` matches of ``:search`` stored last."""
    return (f"select {expression} as value from items join ({newest_matches(SEARCH_FACET_SAMPLE)}) m "
            "on items.rowid = m.watcher_rowid")


class ArchiveDatabase(Database):
    """The archive as Datasette sees it: the counting and ranking queries of the items page answered as the module
    docstring says; every other query as Datasette wrote it."""

    async def execute(self, sql: str, params: Any = None, truncate: bool = False, custom_time_limit: int | None = None,
                      page_size: int | None = None, log_sql_errors: bool = True) -> Results:
        sql = _WALKABLE_CURSOR.sub(r"(legal_date <= :\1 and (legal_date < :\1 or id > :\2))", sql)
        plain = _SPACE.sub(" ", sql).strip()
        try:
            if match := _COUNT.fullmatch(plain):
                answer = await self._count(scope_of(match["where"]), params)
            elif match := _COLUMN_FACET.fullmatch(plain):
                answer = await self._column_facet(match["column"], scope_of(match["where"]), params,
                                                  int(match["limit"]))
            elif match := _SELECT.fullmatch(plain):
                answer = await self._ranked(match["columns"], scope_of(match["where"]), params, int(match["limit"]),
                                            truncate=truncate, custom_time_limit=custom_time_limit)
            else:
                answer = None
        except MissingCounts:
            answer = None
        if answer is not None:
            return answer
        return await super().execute(sql, params, truncate=truncate, custom_time_limit=custom_time_limit,
                                     page_size=page_size, log_sql_errors=log_sql_errors)

    async def kept(self, sql: str, params: Any) -> Results:
        """A query of ``item_counts``; ``MissingCounts`` on an archive not migrated to ``m009_counts`` yet."""
        try:
            return await super().execute(sql, params, log_sql_errors=False)
        except Exception as exc:
            if "no such table" in str(exc):
                raise MissingCounts from exc
            raise

    async def _count(self, scope: Scope, params: Any) -> Results | None:
        if scope.kept:
            rows = await self.kept("select coalesce(sum(n), 0) as count from item_counts where scope = :scope "
                                   "and facet = 'total' and value = ''", {"scope": scope_name(scope, params)})
            return rows
        if scope.search_alone:
            rows = await super().execute(f"select count(*) from (select 1 from items_fts where items_fts match "
                                         f"escape_fts(:search) limit {SEARCH_COUNT_CAP + 1})", params)
            n = rows.rows[0][0]
            return _one(AtLeast(SEARCH_COUNT_CAP) if n > SEARCH_COUNT_CAP else n, rows)
        return None

    async def _column_facet(self, column: str, scope: Scope, params: Any, limit: int) -> Results | None:
        if column not in KEPT_COLUMNS:
            return None
        return await counted(self, column, column, scope, params, limit)

    async def _ranked(self, columns: str, scope: Scope, params: Any, limit: int, **options: Any) -> Results | None:
        """The page of a search ranked by relevance: the ``limit - 1`` best (Datasette asks one more to know
        whether there is a next page: a ranked page has none)."""
        if not (scope.ranked and scope.search):
            return None
        size = max(limit - 1, 1)
        if not scope.themes and not scope.rest:
            ranked = ranked_matches_sql("escape_fts(:search)", str(size))
            sql = (f"select {columns} from items join ({ranked}) m on items.rowid = m.match_rowid "
                   "order by m.match_rank, m.match_rowid desc")
        else:
            where = " and ".join([*(theme_clause(name) for name in scope.themes), *scope.rest])
            sql = (f"select {columns} from items join (select rowid as watcher_rowid, rank as watcher_rank from "
                   "items_fts where items_fts match escape_fts(:search)) m on items.rowid = m.watcher_rowid "
                   f"where {where} order by m.watcher_rank limit {size}")
        return await super().execute(sql, params, **options)


class MissingCounts(Exception):
    """The archive has no kept counts (not migrated yet): count as Datasette does."""


def _one(value: Any, like: Results) -> Results:
    return Results([(value,)], False, like.description)


async def counted(db: Any, facet: str, expression: str, scope: Scope, params: Any, limit: int, *,
                  newest_first: bool = False, array: bool = False) -> Results | None:
    """The ``limit`` most frequent values of ``facet`` (or the newest, ``newest_first``) with their counts, as rows
    ``(value, count)``: kept counts for the whole archive or a theme, the most relevant matches of a search alone
    (lower bounds when the search has more), None for anything else (the caller counts)."""
    order = "value desc" if newest_first else "count desc, value"
    if scope.kept:
        sql = (f"select value, n as count from item_counts where scope = :scope and facet = :facet and n > 0 "
               f"order by {order} limit {limit}")
        return await db.kept(sql, {"scope": scope_name(scope, params), "facet": facet})
    if scope.search_alone:
        # an array column (themes) counts each of its values
        values = "sample, json_each(sample.value) j" if array else "sample"
        value = "j.value" if array else "value"
        rows = await Database.execute(
            db, f"with sample as materialized ({sample_sql(expression)}) select {value} as value, count(*) as count, "
                f"(select count(*) from sample) as seen from {values} where {value} is not null group by 1 "
                f"order by {order} limit {limit}", params, custom_time_limit=db.ds.setting("facet_time_limit_ms"))
        full = any(row["seen"] >= SEARCH_FACET_SAMPLE for row in rows.rows)
        out = [{"value": row["value"], "count": AtLeast(row["count"]) if full else row["count"]} for row in rows.rows]
        return Results(out, False, [("value",), ("count",)])
    return None


class _CountingFacet(Facet):
    """What both facets share: one count query per configured column under Datasette's facet time limit (a column
    whose query times out is reported as such, the others are still shown), each value a link that toggles it."""

    newest_first = False  # values by count (else the newest first: months)

    async def suggest(self) -> list[dict[str, Any]]:
        return []  # offered through metadata only

    def count_sql(self, column: str) -> str:
        raise NotImplementedError

    def kept_facet(self, column: str) -> tuple[str, str]:
        """The name of this facet in the kept counts, and its value as an SQL expression over ``items``."""
        raise NotImplementedError

    def choice(self, column: str, value: str) -> tuple[dict[str, str], bool]:
        """The query argument that selects ``value``, and whether it is selected now."""
        raise NotImplementedError

    async def facet_results(self) -> tuple[list[dict[str, Any]], list[str]]:
        results: list[dict[str, Any]] = []
        timed_out: list[str] = []
        db = self.ds.get_database(self.database)
        match = _INNER.fullmatch(_SPACE.sub(" ", self.sql).strip())
        for source_and_config in self.get_configs():
            config, source = source_and_config["config"], source_and_config["source"]
            column = config.get("column") or config["simple"]
            try:
                rows = None
                if isinstance(db, ArchiveDatabase) and match:
                    facet, expression = self.kept_facet(column)
                    try:
                        rows = await counted(db, facet, expression, scope_of(match["where"]), self.params,
                                             self.get_facet_size() + 1, newest_first=self.newest_first,
                                             array=self.type == "theme")
                    except MissingCounts:
                        rows = None
                if rows is None:
                    rows = await self.ds.execute(self.database, self.count_sql(column), self.params, truncate=False,
                                                 custom_time_limit=self.ds.setting("facet_time_limit_ms"))
            except QueryInterrupted:
                timed_out.append(column)
                continue
            results.append({"name": column, "type": self.type, "results": self._values(column, rows.rows),
                            "hideable": source != "metadata",
                            "toggle_url": path_with_removed_args(self.request, {f"_facet_{self.type}": column}),
                            "truncated": len(rows.rows) > self.get_facet_size()})
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
    newest_first = True

    def count_sql(self, column: str) -> str:
        return (f"select substr({escape_sqlite(column)}, 1, 7) as value, count(*) as count from ({self.sql}) "
                f"where {escape_sqlite(column)} glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]*' "
                f"group by value order by value desc limit {self.get_facet_size() + 1}")

    def kept_facet(self, column: str) -> tuple[str, str]:
        # the kept months are those of legal_date; another column is counted
        if column != "legal_date":
            raise MissingCounts
        return "month", (f"case when {escape_sqlite(column)} glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]*' "
                         f"then substr({escape_sqlite(column)}, 1, 7) end")

    def choice(self, column: str, value: str) -> tuple[dict[str, str], bool]:
        return {f"{column}__startswith": value}, self.request.args.get(f"{column}__startswith") == value


class ThemeFacet(_CountingFacet):
    """Counts read from the ``themes`` JSON array of each matching item (its values are distinct, so no
    de-duplication pass over whole rows as Datasette's array facet does)."""

    type = "theme"

    def count_sql(self, column: str) -> str:
        return (f"select j.value as value, count(*) as count from ({self.sql}) as inner_rows, "
                f"json_each(inner_rows.{escape_sqlite(column)}) j group by j.value order by count desc, value "
                f"limit {self.get_facet_size() + 1}")

    def kept_facet(self, column: str) -> tuple[str, str]:
        if column != "themes":
            raise MissingCounts
        return "theme", "items.themes"

    def choice(self, column: str, value: str) -> tuple[dict[str, str], bool]:
        return {"_theme": value}, value in self.request.args.getlist("_theme")
