"""Search that takes what people type: ``décret 2025-895``, ``l'IA``, ``n° 78-17``, ``"données de santé"``,
``(RGPD)``, a NOR. Never an SQL error.

- Words are matched as words, accents and case ignored (the archive's FTS5 index uses ``unicode61
  remove_diacritics 2``): each chunk the person typed becomes one quoted FTS5 phrase, so punctuation inside it
  (``2025-895``, ``l'IA``, ``2016/679``) only separates the words of that phrase, and nothing typed is ever read as
  FTS5 syntax (``AND``, ``NEAR``, ``*``, ``:``, parentheses, quotes). Text in double quotes is one phrase. ``n°`` /
  ``nº`` carry no meaning for matching and are dropped.
- An identifier in the query (``décret 2025-895``, ``loi 78-17``, ``2016/679``, ``SAN-2023-006``, a NOR, a JORFTEXT
  or CNILTEXT id) also finds, through the ``identifiers`` table, the items that ARE that act (listed first) and
  those that CITE it (``cites_<scheme>``), even when their text does not spell it the same way.

``search(store, text)`` is what ``watcher search`` prints; ``register_sql_functions(conn)`` gives Datasette (or any
SQLite connection) ``watcher_fts(text)`` and ``watcher_acts(text)`` for the same behaviour in SQL.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from store.store import ranked_matches_sql
from watcher.legal import identifiers as ids

_QUOTES = str.maketrans({"“": '"', "”": '"', "«": '"', "»": '"', "„": '"'})
_CHUNK = re.compile(r'"([^"]*)"|([^\s"]+)')
_NUMERO = re.compile(r"\bn\s?[°º]", re.I)
_WORD = re.compile(r"\w", re.U)
# identifiers typed bare, without the kind of act before them: each may be any of these schemes
_KINDS = {"loi": "loi", "decret": "decret", "ordonnance": "ordonnance", "deliberation": "deliberation"}
_NUMBERED = re.compile(r"(?:\b(?P<kind>lois?|d[ée]crets?|ordonnances?|d[ée]lib[ée]rations?)\s+(?:n\s?[°º]\s*)?)?"
                       r"(?<![\w/-])(?P<num>\d{2,4}-\d{1,5})(?![\w/-])", re.I)
_ASCII = str.maketrans("éèêÉÈÊ", "eeeeee")
_BARE: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"(?<![\w/-])(\d{1,4}/\d{1,4})(?![\w/-])"), ("eu_regulation", "eu_directive")),
    (re.compile(r"\b((?:SAN|MED|MEDP|SANP)-\d{4}-\d{2,4})\b", re.I), ("deliberation",)),
    (re.compile(r"\b([A-Z]{4}\d{7}[A-Z])\b", re.I), ("nor",)),
    (re.compile(r"\b(JORFTEXT\d{12})\b", re.I), ("jorftext",)),
    (re.compile(r"\b(CNILTEXT\d{12})\b", re.I), ("cnil",)),
)
_UPPER = frozenset({"nor", "jorftext", "cnil", "deliberation"})
# words typed alone that nearly every item holds: they select nothing and weigh nothing in bm25 (their idf is ~0),
# but matching them costs FTS5 a walk through a list of a million items. Dropped when other words remain; kept
# inside a quoted phrase ("données de santé"), where they say what is adjacent.
_FILLERS = frozenset({"de", "du", "des", "la", "le", "les", "l", "d", "et", "à", "au", "aux", "en", "un", "une",
                      "pour", "par", "sur", "dans", "the", "of", "and", "to", "in", "for", "on"})


class SearchStore(Protocol):
    def search_ids(self, match: str, limit: int) -> list[str]: ...
    def items_with_identifiers(self, pairs: Sequence[tuple[str, str]], limit: int) -> list[tuple[str, bool]]: ...
    def items(self, ids: Sequence[str]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Query:
    text: str
    match: str  # the FTS5 expression ('' when the text has no word)
    acts: tuple[tuple[str, str], ...]  # (scheme, value) of each identifier found in the text


def fts_expression(text: str) -> str:
    """``text`` as an FTS5 query of quoted phrases, one per chunk (all must match), without the filler words typed
    alone (``de``, ``la``, ``the``...) when other words remain; '' if it has no word."""
    plain = _NUMERO.sub(" ", (text or "").translate(_QUOTES))
    if plain.count('"') % 2:
        plain = plain.replace('"', " ")
    phrases: list[str] = []
    fillers: list[str] = []
    for quoted, bare in _CHUNK.findall(plain):
        chunk = quoted or bare
        if _WORD.search(chunk):
            phrase = '"' + chunk.replace('"', '""') + '"'
            (fillers if not quoted and chunk.lower() in _FILLERS else phrases).append(phrase)
    return " ".join(phrases or fillers)


def acts(text: str) -> tuple[tuple[str, str], ...]:
    """The identifiers in ``text``: those with their kind (``décret n° 2025-895`` -> decret), then bare numbers
    and ids under every scheme they could be (``2025-895`` -> decret, loi, ordonnance, deliberation)."""
    found: dict[tuple[str, str], None] = {(i.scheme, i.value): None for i in ids.find_all(text or "")}
    typed_values = {value for _, value in found}
    for match in _NUMBERED.finditer(text or ""):
        kind = (match.group("kind") or "").lower().translate(_ASCII).rstrip("s")
        if match.group("num") not in typed_values:
            schemes: tuple[str, ...] = (_KINDS[kind],) if kind else ("decret", "loi", "ordonnance", "deliberation")
            found.update(((scheme, match.group("num")), None) for scheme in schemes)
    for pattern, schemes in _BARE:
        for match in pattern.finditer(text or ""):
            value = match.group(1)
            if value in typed_values or value.upper() in typed_values:
                continue
            for scheme in schemes:
                found[(scheme, value.upper() if scheme in _UPPER else value)] = None
    return tuple(found)


def parse(text: str) -> Query:
    return Query(text=text, match=fts_expression(text), acts=acts(text))


def search(store: SearchStore, text: str, limit: int = 20) -> list[dict[str, Any]]:
    """Items for ``text``: those that are an act named in it, then those citing it, then full-text matches
    (best first); each once, at most ``limit``."""
    query = parse(text)
    ranked: dict[str, None] = {}
    if query.acts:
        hits = store.items_with_identifiers(query.acts, limit)
        ranked.update((item_id, None) for item_id, own in hits if own)
        ranked.update((item_id, None) for item_id, own in hits if not own)
    if query.match and len(ranked) < limit:
        ranked.update((item_id, None) for item_id in store.search_ids(query.match, limit))
    return store.items(list(ranked)[:limit])


def result_line(row: Mapping[str, Any]) -> str:
    """One result as ``watcher search`` prints it: id, legal date, source, themes, title (tab-separated)."""
    themes = ",".join(row.get("themes") or []) or "-"
    title = " ".join(str(row.get("title") or "").split())
    return "\t".join((row["id"], row.get("legal_date") or "-", row["source"], themes, title[:140]))


def _acts_json(text: str | None) -> str:
    return json.dumps([list(pair) for pair in acts(text or "")])


def register_sql_functions(conn: sqlite3.Connection) -> None:
    """``watcher_fts(text)`` (the FTS5 expression) and ``watcher_acts(text)`` (a JSON array of [scheme, value])
    on ``conn``, e.g. from a Datasette ``prepare_connection`` hook; ``escape_fts`` is replaced by
    ``watcher_fts`` so that Datasette's own ``?_search=`` reads the text the same way."""
    conn.create_function("watcher_fts", 1, lambda text: fts_expression(text or ""), deterministic=True)
    # an empty FTS5 query is a syntax error; the empty phrase '""' matches nothing, quietly
    conn.create_function("escape_fts", 1, lambda text: fts_expression(text or "") or '""', deterministic=True)
    conn.create_function("watcher_acts", 1, _acts_json, deterministic=True)


# The same search as ``search`` in one SQL statement (a Datasette canned query, parameter :q): the acts named, the
# items citing them, then the full-text matches best first (FTS5's bm25, as ``Store.search_ids`` ranks them).
SEARCH_SQL = f"""with acts as (select json_extract(value, '$[0]') as scheme, json_extract(value, '$[1]') as value
    from json_each(watcher_acts(:q))),
hits as (
    select i.item_id, 0 as tier, 0.0 as score from identifiers i join acts a on i.scheme = a.scheme
        and i.value = a.value
    union all
    select i.item_id, 1, 0.0 from identifiers i join acts a on i.scheme = 'cites_' || a.scheme
        and (i.value = a.value or ',' || i.value || ',' like '%,' || a.value || ',%')
    union all
    select items.id, 2, m.match_rank from ({ranked_matches_sql("escape_fts(:q)", "200")}) m
        join items on items.rowid = m.match_rowid
)
select items.id, items.legal_date, items.source, items.nature, items.themes, items.title, items.url
from items join (select item_id, min(tier) as tier, min(score) as score from hits group by item_id) h
    on h.item_id = items.id
order by h.tier, case when h.tier = 2 then h.score end, case when h.tier = 2 then items.rowid end desc,
    items.legal_date desc limit 200"""
