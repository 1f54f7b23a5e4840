"""Small helpers every part of the store shares: rows as dicts, batches of ids, item columns from the schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

BATCH = 500  # ids per ``in (...)`` list: well under SQLite's limit of bound parameters


def rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """Every row of ``cursor`` as a dict keyed by column name."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def chunks(seq: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    """``seq`` in consecutive slices of at most ``size``."""
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def marks(n: int) -> str:
    """``?,?,?``: ``n`` placeholders for an ``in (...)`` list."""
    return ",".join("?" * n)


def columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    """The columns of ``table`` as the schema (after its migrations) defines them, in order."""
    return tuple(row[1] for row in conn.execute(f"pragma table_info({table})"))


def column_defaults(conn: sqlite3.Connection, table: str) -> dict[str, Any]:
    """Each column of ``table`` and the value a row gets when it does not give one: the schema's default
    (``not_null_default=""`` gives ``""``), else None."""
    return {row[1]: _literal(row[4]) for row in conn.execute(f"pragma table_info({table})")}


def _literal(sql: str | None) -> Any:
    """The value of a column default as SQLite shows it: ``''`` or ``'x'``, a number, or NULL/None."""
    if sql is None or sql.upper() == "NULL":
        return None
    if sql[:1] == "'" and sql[-1:] == "'":
        return sql[1:-1].replace("''", "'")
    try:
        return int(sql)
    except ValueError:
        try:
            return float(sql)
        except ValueError:
            return sql
