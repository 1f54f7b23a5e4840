"""Counts the archive keeps, so that a page showing whole-archive or whole-theme counts reads them instead of
counting a million rows at each request.

``item_counts (scope, facet, value, n)``: ``n`` items of ``scope`` have ``value`` for ``facet``.

- ``scope``: ``''`` for the whole archive, else a theme id (the items carrying that theme);
- ``facet``: ``total`` (value ``''``), ``theme`` (each of the item's themes: in a theme's scope, the themes that
  occur with it), ``source``, ``nature`` (kind of act), ``authority``, ``lang``, ``month`` (``YYYY-MM`` of the
  legal date, when it is a date);
- a NULL column is not counted (as Datasette's column facets do not list NULL); zero counts may remain as rows
  with ``n = 0`` (readers ask for ``n > 0``).

What an item counts for is read from its row alone (``items.themes``, the JSON array the store keeps in step with
``item_themes``, and its columns). The store keeps them in the same transaction as each write of items: an insert
adds the new rows' counts, a new version or a change of themes moves the item's counts from its old values to its
new ones (computed here, ``contribution`` / ``apply``: a few upserts per batch, not per row). A trigger subtracts
a deleted item (whoever deletes it). A bulk load that writes ``items`` with plain SQL recounts (``install``).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

TABLE = "item_counts"
COUNTED_COLUMNS = ("themes", "source", "nature", "authority", "lang", "legal_date")
MONTH_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]*"
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")  # the same test as MONTH_GLOB, on the first 7 characters
Key = tuple[str, str, str]  # (scope, facet, value)


# (facet, value of a row, whether the row counts for it), ``{r}`` standing for the row
_COLUMN_FACETS = (
    ("source", "{r}.source", "{r}.source is not null"),
    ("nature", "{r}.nature", "{r}.nature is not null"),
    ("authority", "{r}.authority", "{r}.authority is not null"),
    ("lang", "{r}.lang", "{r}.lang is not null"),
    ("month", "substr({r}.legal_date, 1, 7)", "{r}.legal_date glob '" + MONTH_GLOB + "'"),
)


def _contribution(row: str, sign: int) -> str:
    """The rows of ``item_counts`` one item row (``new`` or ``old`` in a trigger) counts for, each with ``sign`` as
    its count: every (scope, facet, value) for scope in '' and each of its themes."""
    facets = " ".join(f"union all select '{facet}', {value.format(r=row)} where {cond.format(r=row)}"
                      for facet, value, cond in _COLUMN_FACETS)
    return f"""select scope.value as scope, f.facet, f.value, {sign} as n
        from (select '' as value union all select value from json_each({row}.themes)) as scope,
             (select 'total' as facet, '' as value union all select 'theme', value from json_each({row}.themes)
              {facets}) as f
        where true"""


def _recount() -> str:
    """Every count computed from the rows of ``items`` (one GROUP BY per facet and scope): the backfill."""
    parts = ["select '', 'total', '', count(*) from items",
             "select '', 'theme', t.value, count(*) from items, json_each(items.themes) t group by t.value",
             "select s.value, 'total', '', count(*) from items, json_each(items.themes) s group by s.value",
             "select s.value, 'theme', t.value, count(*) from items, json_each(items.themes) s, "
             "json_each(items.themes) t group by s.value, t.value"]
    for facet, value, cond in _COLUMN_FACETS:
        v, c = value.format(r="items"), cond.format(r="items")
        parts.append(f"select '', '{facet}', {v}, count(*) from items where {c} group by 3")
        parts.append(f"select s.value, '{facet}', {v}, count(*) from items, json_each(items.themes) s where {c} "
                     "group by 1, 3")
    return " union all ".join(parts)


_UPSERT = (f"insert into {TABLE} (scope, facet, value, n) {{rows}} "
           "on conflict (scope, facet, value) do update set n = n + excluded.n")
CREATE_TABLE = f"""create table if not exists {TABLE} (
    scope text not null, facet text not null, value text not null, n integer not null,
    primary key (scope, facet, value)) without rowid"""
TRIGGERS = (
    f"""create trigger if not exists item_counts_delete after delete on items begin
        {_UPSERT.format(rows=_contribution('old', -1))}; end""",
)


def install(conn: sqlite3.Connection) -> None:
    """Create the table and its trigger, and count the items there now (the backfill, or the recount after a bulk
    load: one GROUP BY per facet over the archive, in the caller's transaction)."""
    conn.execute(CREATE_TABLE)
    conn.execute(f"delete from {TABLE}")
    conn.execute(f"insert into {TABLE} (scope, facet, value, n) {_recount()}")
    for trigger in TRIGGERS:
        conn.execute(trigger)


def of_new_rows(rows: Sequence[Mapping[str, Any]]) -> Counter[Key]:
    """What a batch of rows the store is inserting counts for (new items have no theme yet: the whole archive
    only), counted per facet over the batch (the same keys as ``contribution``, summed)."""
    out: Counter[Key] = Counter({("", "total", ""): len(rows)})
    for facet in ("source", "nature", "authority", "lang"):
        for value, n in Counter(row.get(facet) for row in rows).items():
            if value is not None:
                out["", facet, value] += n
    months = Counter(d[:7] for row in rows if isinstance(d := row.get("legal_date"), str) and _MONTH.match(d))
    out.update({("", "month", month): n for month, n in months.items()})
    return out


def contribution(row: Mapping[str, Any], themes: Sequence[str] | str | None = None) -> Counter[Key]:
    """What one item row counts for (each key once), with its ``themes`` (a list, or the JSON of the ``themes``
    column; by default the row's own): the same keys the SQL of this module counts."""
    if themes is None:
        themes = row.get("themes") or "[]"
    scopes = ["", *(json.loads(themes) if isinstance(themes, str) else themes)]
    values: list[tuple[str, str]] = [("total", "")] + [("theme", t) for t in scopes[1:]]
    for facet in ("source", "nature", "authority", "lang"):
        value = row.get(facet)
        if value is not None:
            values.append((facet, value))
    legal_date = row.get("legal_date")
    if isinstance(legal_date, str) and _MONTH.match(legal_date):
        values.append(("month", legal_date[:7]))
    return Counter((scope, facet, value) for scope in scopes for facet, value in values)


def apply(conn: sqlite3.Connection, delta: Mapping[Key, int]) -> None:
    """Add ``delta`` to the kept counts (in the caller's transaction)."""
    changes = [(scope, facet, value, n) for (scope, facet, value), n in delta.items() if n]
    if changes:
        conn.executemany(f"insert into {TABLE} (scope, facet, value, n) values (?, ?, ?, ?) "
                         "on conflict (scope, facet, value) do update set n = n + excluded.n", changes)


def total(conn: sqlite3.Connection, scope: str = "") -> int:
    """How many items ``scope`` holds ('' = the whole archive, else a theme)."""
    row = conn.execute(f"select n from {TABLE} where scope = ? and facet = 'total' and value = ''",
                       [scope]).fetchone()
    return int(row[0]) if row else 0
