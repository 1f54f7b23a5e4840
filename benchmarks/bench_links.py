"""Linking items to the acts they are or name: a day of the JO (~150 texts) into an archive, and a whole 100,000-item
archive linked from scratch (goal: a JO day <= 1 s).

Items are generated from real titles (the JO texts, commentaries and news of tests/fixtures/gold): a JO day is 150
JO texts (own number or date), a third of which name an act of the archive's earlier days; the archive mixes JO
texts, CNIL délibérations and commentaries citing them, in the proportions of the gold sets.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._util import REPO, bench_parser, machine, print_table, verdict

GOAL_DAY_S = 1.0


def _titles() -> list[str]:
    out = []
    for path in sorted((REPO / "tests/fixtures/gold").glob("*.jsonl")):
        for line in path.open(encoding="utf-8"):
            out.append(json.loads(line)["title"])
    return out


def _jo(n: int, day: str, cites: str, rng: random.Random) -> dict:
    from watcher.models import Item
    from watcher.records import item_to_row

    number = f"{day[:4]}-{n + 100}"  # unique, as a décret number is
    title = f"Décret n° {number} du {int(day[8:])} juin {day[:4]} {rng.choice(TITLES)[:120]}"
    text = f"Vu le décret n° {cites} ; {rng.choice(TITLES)}" if cites else rng.choice(TITLES)
    return item_to_row(Item(id=f"jorf:JORFTEXT{n:012d}", source="jorf",
                            url=f"https://www.legifrance.gouv.fr/jorf/id/JORFTEXT{n:012d}", title=title, text=text,
                            published=datetime.fromisoformat(day + "T00:00:00+00:00"), nature="DECRET",
                            identifiers={"jorftext": f"JORFTEXT{n:012d}", "decret": number}))


def _post(n: int, cites: str, rng: random.Random) -> dict:
    from watcher.models import Item
    from watcher.records import item_to_row

    return item_to_row(Item(id=f"blog:{n}", source="blog", url=f"https://blog.example/{n}",
                            title=rng.choice(TITLES), summary=f"Le décret n° {cites} précise {rng.choice(TITLES)}",
                            published=datetime(2026, 6, 1, tzinfo=UTC)))


TITLES: list[str] = []


def archive(store, size: int, rng: random.Random) -> list[str]:  # type: ignore[no-untyped-def]
    """``size`` items: 60 % JO texts, 40 % commentaries; a third of each names an earlier JO text."""
    numbers: list[str] = []
    rows = []
    for n in range(size):
        cites = rng.choice(numbers) if numbers and rng.random() < 0.33 else ""
        if rng.random() < 0.6:
            row = _jo(n, "2025-06-12", cites, rng)
            numbers.append(row["identifiers"]["decret"])
        else:
            row = _post(n, cites or "2025-895", rng)
        rows.append(row)
        if len(rows) == 5000:
            store.upsert_items(rows, "2026-06-12T00:00:00Z")
            rows = []
    if rows:
        store.upsert_items(rows, "2026-06-12T00:00:00Z")
    return numbers


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__, quick="a 10,000-item archive instead of 100,000")
    parser.add_argument("--size", type=int, default=None)
    args = parser.parse_args(argv)
    size = args.size or (10_000 if args.quick else 100_000)
    TITLES.extend(_titles())
    from store import Store
    from watcher.legal.links import link_pending

    rng = random.Random(19)
    print(f"bench_links: archive of {size:,} items, then a JO day of 150 texts; {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-links-") as tmp:
        store = Store(Path(tmp) / "watcher.db")
        numbers = archive(store, size, rng)
        start = time.perf_counter()
        whole = link_pending(store, datetime(2026, 6, 12, tzinfo=UTC))
        whole_s = time.perf_counter() - start
        day = [_jo(size + n, "2026-06-13", rng.choice(numbers) if rng.random() < 0.33 else "", rng)
               for n in range(150)]
        store.upsert_items(day, "2026-06-13T00:00:00Z")
        start = time.perf_counter()
        daily = link_pending(store, datetime(2026, 6, 13, tzinfo=UTC))
        day_s = time.perf_counter() - start
        store.close()
    print_table("linking", ["what", "items", "mentions", "links", "seconds", "items/s"],
                [["whole archive", whole.items, whole.mentions, whole.links, f"{whole_s:.2f}",
                  f"{whole.items / whole_s:,.0f}"],
                 ["one JO day", daily.items, daily.mentions, daily.links, f"{day_s:.3f}",
                  f"{daily.items / day_s:,.0f}"]])
    verdict(f"a JO day (150 texts) linked <= {GOAL_DAY_S:g} s", f"{day_s:.3f} s ({daily.links} links)",
            day_s <= GOAL_DAY_S)
    print(f"whole archive of {size:,} items linked in {whole_s:.1f} s ({whole.links:,} links)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
