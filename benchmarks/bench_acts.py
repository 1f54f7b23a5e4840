"""Time per item of `watcher acts`: the acts a real text names, with their official URLs (goal: <= 1 ms per item).

The items are the real titles and summaries of the hand-checked table (tests/fixtures/acts/acts_table.jsonl) and of
the gold sets (tests/fixtures/gold/*.jsonl): what `acts_in` costs in process (extraction + URL), without the
process start of the command, which is printed apart (one `watcher acts` run).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from benchmarks._util import (
    REPO,
    bench_parser,
    child_env,
    machine,
    print_table,
    python_module,
    repeats,
    verdict,
)

GOAL_MS = 1.0


def texts() -> list[str]:
    out = [json.loads(line)["text"] for line in (REPO / "tests/fixtures/acts/acts_table.jsonl").open(encoding="utf-8")]
    for path in sorted((REPO / "tests/fixtures/gold").glob("*.jsonl")):
        for line in path.open(encoding="utf-8"):
            row = json.loads(line)
            out.append(" — ".join(x for x in (row.get("title", ""), row.get("summary", "")) if x))
    return out


def measure(items: Sequence[str], rounds: int) -> list[float]:
    from watcher.legal.acts import acts_in

    for text in items:  # warm: compiled patterns, first calls
        acts_in(text)
    per_item = []
    for _ in range(rounds):
        start = time.perf_counter()
        for text in items:
            acts_in(text)
        per_item.append((time.perf_counter() - start) / len(items) * 1000)
    return per_item


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__, quick="one measured round", repeat="measured rounds over all the items")
    args = parser.parse_args(argv)
    items = texts()
    rounds = repeats(args)
    print(f"bench_acts: {len(items)} real titles and summaries, {rounds} round(s); {machine()}")
    per_item = measure(items, rounds)
    from watcher.legal.acts import acts_in

    named = sum(1 for t in items if acts_in(t))
    start = time.perf_counter()
    subprocess.run(python_module("watcher", "acts", "décret n° 2025-895 et règlement (UE) 2016/679"), cwd=REPO,
                   env=child_env(), check=True, capture_output=True)
    process = time.perf_counter() - start
    median = statistics.median(per_item)
    print_table("acts_in per item", ["items", "naming an act", "median ms/item", "max ms/item", "items/s",
                                     "one `watcher acts` process s"],
                [[len(items), named, f"{median:.4f}", f"{max(per_item):.4f}", f"{1000 / median:,.0f}",
                  f"{process:.2f}"]])
    verdict(f"acts per item <= {GOAL_MS:g} ms", f"{median:.4f} ms/item (median of {rounds})", median <= GOAL_MS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
