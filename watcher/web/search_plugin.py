"""Datasette plugin: the archive's search reads what people type the way ``watcher search`` does.

``?_search=`` on the items table goes through Datasette's ``escape_fts``, which this plugin replaces by
``watcher.search.fulltext.fts_expression`` (words as words, accents ignored, never an FTS syntax error); the canned query
``search`` (``/watcher/search?q=...``) adds the items that are or cite an act named in the query. Loaded by
``watcher serve`` with ``--plugins-dir`` (this folder).
"""

from __future__ import annotations

import sqlite3

from datasette import hookimpl

from watcher.search.fulltext import register_sql_functions


@hookimpl(trylast=True)  # after Datasette's own, so that its escape_fts is the one replaced
def prepare_connection(conn: sqlite3.Connection) -> None:
    register_sql_functions(conn)
