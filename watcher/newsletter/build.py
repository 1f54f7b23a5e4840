"""A week's draft: the week's tagged items, each under its best theme, ranked, with items about the same act kept
together, and the source-health notes the editor should know about (never sent to readers).

Ranking inside a theme, most important first:
1. the kind of act (a law before a decree, a decree before an order, ..., a news post last: ``ACT_RANK``, over
   the codes of ``watcher.legal.natures``);
2. the source's authority (official journals first, then regulators, then law firms: ``source_authority``);
3. the confidence of the theme.
Items that share an identifier (NOR, ELI, JORFTEXT, CELEX, decree number...) are about the same act: they form a
cluster placed at its best member's rank, its members one after the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from watcher.config import SourceConfig
from watcher.legal import natures
from watcher.legal.normalize import iso
from watcher.util.errors import WatcherError
from watcher.util.partition import Partition

# kinds of act (codes of watcher.legal.natures; a CNIL délibération's sub-kind ranks as its parent) by weight
ACT_RANK: dict[str, int] = {
    "loi": 0, "ordonnance": 1, "decret": 2, "arrete": 3, "deliberation": 4, "decision": 5, "avis": 6,
    "information-securite": 6, "rappel": 6, "circulaire": 7, "rapport": 8,
}
OTHER_ACT = 9  # news, articles, anything else


@dataclass(frozen=True)
class Week:
    """An ISO week (``2026-W23``) and its bounds as UTC timestamps (Monday 00:00 to Monday 00:00, local time)."""

    label: str
    start: str
    end: str

    @classmethod
    def of(cls, label: str | None, now: datetime, tz: str) -> Week:
        zone = ZoneInfo(tz)
        if label:
            try:
                monday = date.fromisocalendar(int(label[:4]), int(label.split("W")[1]), 1)
            except (ValueError, IndexError):
                raise WatcherError(f"not an ISO week: {label!r} (expected e.g. 2026-W23)") from None
        else:
            today = now.astimezone(zone).date()
            monday = today - timedelta(days=today.weekday())
        year, number, _ = monday.isocalendar()
        start = datetime.combine(monday, datetime.min.time(), zone)
        end = datetime.combine(monday + timedelta(days=7), datetime.min.time(), zone)
        return cls(f"{year}-W{number:02d}", iso(start.astimezone(UTC)) or "", iso(end.astimezone(UTC)) or "")


def act_rank(nature: str | None) -> int:
    """The weight of a kind of act: a vocabulary code, or a source's raw value (``DECRET``, ``Sanction``)."""
    code = nature if nature in natures.BY_CODE else natures.resolve(nature or "") or ""
    entry = natures.BY_CODE.get(code)
    return ACT_RANK.get(entry.parent or entry.code, OTHER_ACT) if entry else OTHER_ACT


def source_authority(source: SourceConfig | None) -> int:
    """0: official journals (DILA dumps, EUR-Lex); 1: regulators' own sites; 2: law firms' blogs."""
    if source is None:
        return 1
    if source.kind.startswith("dila-") or "eur-lex" in source.url:
        return 0
    return 2 if source.kind == "wordpress" else 1


# schemes naming the act an item is (its NOR without the rectificatif letter, its Légifrance or EUR-Lex id, its
# number); an item citing one of these (``cites_decret``...) is about that act too. A JO issue (``jorfcont``) or a
# date is not an act's identity: items sharing them are not clustered.
ACT_SCHEMES = frozenset({"nor_base", "jorftext", "cnil", "eli", "celex", "ecli", "loi", "decret", "ordonnance",
                         "deliberation"})


def _act_keys(pairs: Sequence[tuple[str, str]]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(what the item is, what it cites), as (scheme, value) pairs of ``ACT_SCHEMES``."""
    own: set[tuple[str, str]] = set()
    cited: set[tuple[str, str]] = set()
    for scheme, joined in pairs:
        base = scheme.removeprefix("cites_")
        if base in ACT_SCHEMES:
            (cited if base != scheme else own).update((base, v.strip()) for v in str(joined).split(",") if v.strip())
    return own, cited


def clusters(identifiers: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, str]:
    """Each item's cluster (the smallest item id of it): items that are the same act, or where one cites the act
    another one is, transitively."""
    partition = Partition(identifiers)

    def join(a: str, b: str) -> None:  # the group is named by its smallest item id
        ra, rb = partition.root(a), partition.root(b)
        partition.join(max(ra, rb), min(ra, rb))

    keys = {item: _act_keys(pairs) for item, pairs in identifiers.items()}
    acts: dict[tuple[str, str], str] = {}
    for item, (own, _) in keys.items():
        for key in own:
            join(item, acts.setdefault(key, item))
    for item, (_, cited) in keys.items():
        for key in cited & acts.keys():
            join(item, acts[key])
    return {item: partition.root(item) for item in identifiers}


def rank_key(item: Mapping[str, Any], theme_score: float, sources: Mapping[str, SourceConfig]) -> tuple[int, int, float]:
    return act_rank(item.get("nature")), source_authority(sources.get(item["source"])), -theme_score


def order_entries(candidates: Sequence[Mapping[str, Any]], identifiers: Mapping[str, Sequence[tuple[str, str]]],
                  sources: Mapping[str, SourceConfig], theme_order: Sequence[str], shortlist: int) -> list[dict[str, Any]]:
    """Entries of a new draft, in newsletter order: themes in taxonomy order; inside a theme, clusters by their
    best member's rank, members by rank; the first ``shortlist`` of each theme kept, the others dropped."""
    cluster_of = clusters(identifiers)
    by_theme: dict[str, list[tuple[tuple[int, int, float], Mapping[str, Any], float]]] = {}
    for item, placed in _placed(candidates, cluster_of, sources):
        by_theme.setdefault(placed["theme"], []).append((rank_key(item, placed["score"], sources), item, placed["score"]))
    position_of_theme = {t: n for n, t in enumerate(theme_order)}
    entries: list[dict[str, Any]] = []
    for theme in sorted(by_theme, key=lambda t: (position_of_theme.get(t, len(position_of_theme)), t)):
        ranked = sorted(by_theme[theme], key=lambda r: (r[0], r[1]["id"]))
        lead: dict[str, tuple[tuple[int, int, float], str]] = {}
        for key, item, _ in ranked:
            lead.setdefault(cluster_of.get(item["id"], item["id"]), (key, item["id"]))
        ranked.sort(key=lambda r: (lead[cluster_of.get(r[1]["id"], r[1]["id"])], r[0], r[1]["id"]))
        for n, (key, item, score) in enumerate(ranked):
            entries.append({"item_id": item["id"], "theme": theme, "position": len(entries), "kept": int(n < shortlist),
                            "abstract": "", "rank": key[0] * 100 + key[1] * 10 + (1 - score),
                            "cluster": cluster_of.get(item["id"], item["id"])})
    return entries


def _placed(candidates: Sequence[Mapping[str, Any]], cluster_of: Mapping[str, str],
            sources: Mapping[str, SourceConfig]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """Each item with the theme it is listed under: its best one, unless its cluster's lead (best-ranked member)
    is listed under a theme the item also has -- then that one, so that the act's items stay together."""
    lead: dict[str, tuple[tuple[int, int, float], str]] = {}
    for item in candidates:
        best = item["themes"][0]
        key = (rank_key(item, best["score"], sources), best["theme"])
        cluster = cluster_of.get(item["id"], item["id"])
        lead[cluster] = min(lead.get(cluster, key), key)
    placed = []
    for item in candidates:
        wanted = lead[cluster_of.get(item["id"], item["id"])][1]
        placed.append((item, next((t for t in item["themes"] if t["theme"] == wanted), item["themes"][0])))
    return placed


def health_notes(failures: Sequence[Mapping[str, Any]]) -> list[str]:
    """One sentence per source that failed this week, for the editor's eyes only."""
    notes = []
    for row in failures:
        parts = [f"{row['source']}:"]
        if row.get("failed_polls"):
            parts.append(f"{row['failed_polls']} failed poll(s) this week")
        if row.get("consecutive_failures"):
            parts.append(f"failing now ({row['consecutive_failures']} in a row, last success "
                         f"{row.get('last_success') or 'never'})")
        if row.get("last_error"):
            parts.append(f"last error: {row['last_error']}")
        notes.append(" ".join(parts[:1]) + " " + "; ".join(parts[1:]))
    return notes
