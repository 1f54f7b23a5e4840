"""A scaled JORF backfill: 10k / 30k / 100k texts parsed and stored into a fresh archive with FTS.

    python -m benchmarks.bench_backfill [--quick] [--sizes 10000,30000,100000] [--large-every 500] [--batch 1000]

The texts are built in memory from the real JORFSIMPLE files of ``tests/fixtures/jorf``; only two real JORFTEXT
files exist there, so the mix is: the 1.4 KB nomination arrêté (``JORFTEXT000054246001``), with, every
``--large-every`` texts (default 500, i.e. 0.2 %), the 600 KB catastrophe-naturelle arrêté
(``JORFTEXT000054245373``); mean ~2.7 KB a text, the order of a real JO day (a hundred short texts, a big
annex-laden one now and then). Each copy gets a distinct JORFTEXT id and NOR (the bytes are rewritten in memory:
``JORFTEXT0000600xxxxx``, the NOR's year+number digits), and the rubric its original has in the real sommaire
(``JORFCONT000054245240``).

Each size runs in a fresh child process: ``dila_jorf.parse_text`` (parse), ``records.item_to_row`` (row: the
content hash), ``Store.upsert_items`` in batches of ``--batch`` texts (store: items, versions, identifiers
index, FTS5 triggers) into a new SQLite file. Goal: 30,000 texts in <= 60 s, and a cost that grows linearly.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks._util import (
    REPO,
    ChildRun,
    bench_parser,
    emit,
    machine,
    print_table,
    profiled,
    python_module,
    run_child,
    verdict,
)

JORF = REPO / "tests" / "fixtures" / "jorf"
SMALL = JORF / "jorfsimple_JORFTEXT000054246001_arrete_nomination_small.xml"
LARGE = JORF / "jorfsimple_JORFTEXT000054245373_arrete_catnat_large_600KB.xml"
SOMMAIRE = JORF / "jorfsimple_JORFCONT000054245240_sommaire_2026-06-13.xml"
SIZES = (10_000, 30_000, 100_000)
QUICK_SIZES = (1_000, 3_000, 10_000)
GOAL_N, GOAL_SECONDS = 30_000, 60.0
QUERY = "catastrophe naturelle"
FIRST_ID = 60_000_000  # JORFTEXT000060000000 and up: no clash with the real ids
_ID = re.compile(rb"<ID>(JORFTEXT\d{12})</ID>")
_NOR = re.compile(rb"<NOR>([A-Z]{4})(\d{2})(\d{5})([A-Z])</NOR>")


class Template:
    """One real JORFTEXT file and what must change in a copy: its id and its NOR (everywhere they occur)."""

    def __init__(self, path: Path):
        self.data = path.read_bytes()
        id_match, nor_match = _ID.search(self.data), _NOR.search(self.data)
        if id_match is None or nor_match is None:
            raise ValueError(f"{path.name}: no JORFTEXT id or NOR")
        self.jorftext = id_match.group(1)
        self.nor_prefix, self.nor_suffix = nor_match.group(1), nor_match.group(4)
        self.nor = b"".join(nor_match.group(1, 2, 3, 4))

    def copy(self, n: int) -> bytes:
        """Copy ``n``: ``JORFTEXT`` id ``FIRST_ID + n``, NOR with year ``26 - n // 100000`` and number ``n``."""
        new_id = b"JORFTEXT%012d" % (FIRST_ID + n)
        new_nor = self.nor_prefix + b"%02d%05d" % ((26 - n // 100_000) % 100, n % 100_000) + self.nor_suffix
        return self.data.replace(self.jorftext, new_id).replace(self.nor, new_nor)


def texts(count: int, large_every: int) -> Iterator[tuple[bytes, str]]:
    """(bytes, original id) of ``count`` distinct texts, the large one every ``large_every``."""
    small, large = Template(SMALL), Template(LARGE)
    for n in range(count):
        template = large if large_every and n % large_every == large_every - 1 else small
        yield template.copy(n), template.jorftext.decode()


# --- the child -----------------------------------------------------------------------------------------------

def child(count: int, db_path: str, large_every: int, batch: int) -> dict[str, Any]:
    """Parse and store ``count`` texts; the split timings, counts and sizes."""
    started = time.perf_counter()
    from store import Store
    from watcher.records import item_to_row
    from watcher.sources.dila_jorf import parse_sommaire, parse_text

    clock = {"import": time.perf_counter() - started, "build": 0.0, "parse": 0.0, "row": 0.0, "store": 0.0}
    rubrics = parse_sommaire(SOMMAIRE.read_bytes())
    store = Store(db_path)
    now, rows, new, stored_bytes = "2026-06-13T05:00:00Z", [], 0, 0
    mark = time.perf_counter()
    for xml, original in texts(count, large_every):
        t0 = time.perf_counter()
        item = parse_text(xml, rubrics.get(original, ""))
        t1 = time.perf_counter()
        rows.append(item_to_row(item))
        t2 = time.perf_counter()
        clock["build"] += t0 - mark
        clock["parse"] += t1 - t0
        clock["row"] += t2 - t1
        stored_bytes += len(xml)
        if len(rows) >= batch:
            new += _store(store, rows, now, clock)
        mark = time.perf_counter()
    if rows:
        new += _store(store, rows, now, clock)
    counts = {table: store.db.execute(f"select count(*) from {table}").fetchone()[0]
              for table in ("items", "items_fts", "identifiers", "item_versions")}
    peak_before_search = _vm_hwm_kb()
    t0 = time.perf_counter()
    page = len(store.search(QUERY, limit=20))  # one page of results, as the archive shows them
    clock["search"] = time.perf_counter() - t0
    hits = store.db.execute("select count(*) from items_fts where items_fts match ?", [QUERY]).fetchone()[0]
    store.close()
    return {"seconds": clock, "new": new, "counts": counts, "xml_bytes": stored_bytes, "search_hits": hits,
            "search_page": page, "peak_kb_before_search": peak_before_search,
            "db_bytes": sum(p.stat().st_size for p in Path(db_path).parent.glob(Path(db_path).name + "*"))}


def _vm_hwm_kb() -> int:
    """Peak resident set of this process so far (``VmHWM``), in KiB; 0 where /proc is missing."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def _store(store: Any, rows: list[dict[str, Any]], now: str, clock: dict[str, float]) -> int:
    t0 = time.perf_counter()
    result = store.upsert_items(rows, now)
    clock["store"] += time.perf_counter() - t0
    rows.clear()
    return len(result.new)


# --- the parent ----------------------------------------------------------------------------------------------

def measure(count: int, tmp: Path, large_every: int, batch: int) -> ChildRun:
    db = tmp / f"backfill-{count}.db"
    run = run_child(python_module("benchmarks.bench_backfill", "--child", str(count), str(db),
                                  "--large-every", str(large_every), "--batch", str(batch)))
    if run.result["new"] != count or run.result["counts"]["items_fts"] != count:
        raise RuntimeError(f"{count} texts: stored {run.result['new']} new, FTS {run.result['counts']}")
    for path in tmp.glob(db.name + "*"):
        path.unlink()
    return run


def table_rows(runs: dict[int, ChildRun]) -> list[list[object]]:
    out: list[list[object]] = []
    for count, run in runs.items():
        s = run.result["seconds"]
        work = s["parse"] + s["row"] + s["store"]
        out.append([f"{count:,}", run.wall, s["parse"], s["row"], s["store"], work,
                    1e6 * s["parse"] / count, 1e6 * s["row"] / count, 1e6 * s["store"] / count,
                    1e6 * work / count, count / run.wall, run.peak_mb, run.result["db_bytes"] / 2**20,
                    run.result["search_hits"], 1000 * s["search"]])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__, quick="1k / 3k / 10k texts")
    parser.add_argument("--sizes", help="comma-separated text counts (default 10000,30000,100000)")
    parser.add_argument("--large-every", type=int, default=500, help="one 600 KB text every N (0: never)")
    parser.add_argument("--batch", type=int, default=1000, help="texts per Store.upsert_items call")
    parser.add_argument("--profile", action="store_true", help="cProfile the smallest size in-process")
    parser.add_argument("--child", nargs=2, metavar=("COUNT", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        emit(child(int(args.child[0]), args.child[1], args.large_every, args.batch))
        return 0
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else QUICK_SIZES if args.quick else SIZES
    return run_benchmark(sizes, args.large_every, args.batch, args.profile)


def run_benchmark(sizes: Sequence[int], large_every: int, batch: int, profile: bool) -> int:
    mix = f"1 large (600 KB) every {large_every}, the rest small (1.4 KB)" if large_every else "small only"
    print(f"bench_backfill: {', '.join(f'{n:,}' for n in sizes)} JORF texts, {mix}; upsert batches of {batch}; "
          f"one fresh child process and SQLite file (WAL, FTS5) per size; {machine()}")
    runs: dict[int, ChildRun] = {}
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        run_child(python_module("benchmarks.bench_backfill", "--child", "50", str(Path(tmp) / "warm.db")))
        for count in sizes:
            runs[count] = measure(count, Path(tmp), large_every, batch)
    print_table("Backfill: parse (dila_jorf.parse_text) + row (item_to_row) + store (Store.upsert_items + FTS)",
                ["texts", "wall s", "parse s", "row s", "store s", "work s", "µs/text parse", "µs/text row",
                 "µs/text store", "µs/text work", "texts/s (wall)", "peak RSS MB", "DB MB", "FTS hits",
                 "search ms"], table_rows(runs))
    first, last = min(runs), max(runs)
    print_table("Per-text cost, largest size / smallest size (1.0 = linear)",
                ["stage", f"ratio {last:,}/{first:,}"], _ratios(runs[first], runs[last], first, last))
    any_run = next(iter(runs.values()))
    print(f"(imports {any_run.result['seconds']['import']:.2f} s; FTS hits = texts matching {QUERY!r}; search ms ="
          " Store.search of it, first page of 20 results)")
    goal_n = GOAL_N if GOAL_N in runs else None
    if goal_n:
        run = runs[goal_n]
        verdict(f"goal 2: backfill {goal_n:,} JORF texts (parse + store + FTS) <= {GOAL_SECONDS:g} s",
                f"{run.wall:.1f} s whole process ({1e6 * run.wall / goal_n:.0f} µs/text), per-text cost "
                f"{last:,}/{first:,} = {_total_ratio(runs[first], runs[last], first, last):.2f}",
                run.wall <= GOAL_SECONDS)
    else:
        print(f"(goal 2 is judged at {GOAL_N:,} texts; run without --quick or with --sizes including it)")
    if profile:
        _profile(min(sizes), large_every, batch)
    return 0


def _ratios(a: ChildRun, b: ChildRun, na: int, nb: int) -> list[list[object]]:
    sa, sb = a.result["seconds"], b.result["seconds"]
    rows: list[list[object]] = [[stage, (sb[stage] / nb) / (sa[stage] / na)] for stage in ("parse", "row", "store")]
    rows.append(["work (parse+row+store)", _total_ratio(a, b, na, nb)])
    rows.append(["whole process (wall)", (b.wall / nb) / (a.wall / na)])
    return rows


def _total_ratio(a: ChildRun, b: ChildRun, na: int, nb: int) -> float:
    def work(r: ChildRun) -> float:
        return float(sum(r.result["seconds"][k] for k in ("parse", "row", "store")))

    return (work(b) / nb) / (work(a) / na)


def _profile(count: int, large_every: int, batch: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-backfill-prof-") as tmp:
        _, text = profiled(lambda: child(count, str(Path(tmp) / "p.db"), large_every, batch), top=35,
                           sort="tottime")
    print(f"\ncProfile of {count:,} texts in-process, top 35 by own time:\n{text}")


if __name__ == "__main__":
    sys.exit(main())
