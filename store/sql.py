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


def empty_defaults(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """The NOT NULL text columns of ``table`` whose schema default is a string literal, with that value: what a row
    that does not name them must hold."""
    out: dict[str, str] = {}
    for _cid, name, _type, notnull, default, _pk in conn.execute(f"pragma table_info({table})"):
        if notnull and isinstance(default, str) and len(default) >= 2 and default[0] == default[-1] == "'":
            out[name] = default[1:-1].replace("''", "'")
    return out
