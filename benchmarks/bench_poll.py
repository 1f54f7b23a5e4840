"""A poll of every source when nothing changed: one conditional request per source, 304, no parsing.

    python -m benchmarks.bench_poll [--quick] [--sources 20] [--repeat 3]

Variant "feeds": ``--sources`` feed sources on one local ``ReplayServer``, each URL answering the real 500-item
CNIL feed (made distinct per URL) with an ``ETag``; the server answers 304 to a matching ``If-None-Match``. A first
child process stores everything; then each measured child process (a fresh interpreter on the same archive) runs
``pipeline.ingest`` over every source again: the requests per source are read from ``server.requests``, the
parses are counted (``FeedSource.read`` wrapped in the child). ``host_delay = 0``: the sources share one host,
so the default 1 s pacing would measure sleeping (with real sources on different hosts it costs nothing).

Variant "demo": the real ``sources.toml`` against the bundled demo recording (``ReplayServer(DEMO_RECORDING)``,
the sources whose host is recorded, as ``watcher demo`` does), second run; once as configured (``host_delay``
1 s: ``jorf`` and ``cnil-deliberations`` share echanges.dila.gouv.fr) and once with ``host_delay = 0``.

Goal: the second run of 20 sources in <= 1 s (judged on the poll itself, ``pipeline.ingest``; the whole process,
interpreter start and imports included, is shown beside it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._util import (
    REPO,
    ChildRun,
    bench_parser,
    emit,
    machine,
    median,
    print_table,
    python_module,
    repeats,
    run_child,
    verdict,
)

if TYPE_CHECKING:
    from watcher.replay import ReplayServer

GOAL_SOURCES, GOAL_SECONDS = 20, 1.0
SOURCES_TOML = REPO / "sources.toml"


@dataclass
class Poll:
    label: str
    sources: int
    runs: list[ChildRun]
    requests: Counter[str]  # server key -> requests, over the measured runs
    statuses: Counter[int]

    def child(self, key: str) -> float:
        return median([r.result[key] for r in self.runs])


# --- the child -----------------------------------------------------------------------------------------------

def child(config_path: str, db_path: str, base_url: str, host_delay: float | None, demo: bool) -> dict[str, Any]:
    """One run of every source, parses counted; ``base_url`` set = requests sent to a replay server."""
    started = time.perf_counter()
    from dataclasses import replace
    from datetime import UTC, datetime

    from store import Store
    from watcher.config import load_config
    from watcher.demo import recorded_sources
    from watcher.http import build_client
    from watcher.pipeline import ingest
    from watcher.replay import DEMO_RECORDING, load_recording
    from watcher.sources.feed import FeedSource

    parses = _count_parses(FeedSource)
    imported = time.perf_counter()
    config = load_config(config_path)
    if host_delay is not None:
        config = replace(config, settings=replace(config.settings, host_delay=host_delay))
    sources = recorded_sources(config.sources, load_recording(DEMO_RECORDING))[0] if demo else list(config.sources)
    store = Store(db_path)
    with build_client(config.settings, url_map=_mapper(base_url) if base_url else None) as http:
        t0 = time.perf_counter()
        reports = ingest(config, store, http, datetime.now(UTC), sources)
        polled = time.perf_counter() - t0
    store.close()
    return {"import_s": imported - started, "poll_s": polled, "parses": parses[0],
            "outcomes": dict(Counter(r.outcome for r in reports)), "seen": sum(r.seen for r in reports),
            "requests": sum(r.requests for r in reports),
            "per_source": {r.name: [r.outcome, r.requests, r.seen, r.new] for r in reports},
            "failed": {r.name: r.error for r in reports if r.outcome == "failed"}}


def _count_parses(kind: Any) -> list[int]:
    """Wrap ``kind.read`` (the feed parse) to count its calls; the counter is a one-element list."""
    counter = [0]
    original = kind.read

    def counting(self: Any, content: bytes, *, url: str) -> Any:
        counter[0] += 1
        return original(self, content, url=url)

    kind.read = counting
    return counter


def _mapper(base_url: str) -> Any:
    """``ReplayServer.url_map`` for a server in another process: ``https://h/p?q`` -> ``BASE/h/p?q``."""
    from urllib.parse import urlsplit

    def url_map(url: str) -> str:
        parts = urlsplit(url)
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        return f"{base_url}/{host}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")

    return url_map


# --- the parent ----------------------------------------------------------------------------------------------

def _feeds_config(path: Path, urls: Sequence[str], database: Path) -> None:
    lines = ["[settings]", 'contact = "bench@example.org"', f'database = "{database}"',
             "host_delay = 0  # one local host for every source", ""]
    for n, url in enumerate(urls, 1):
        lines += ["[[source]]", f'name = "feed-{n:02d}"', 'kind = "feed"', f'url = "{url}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _run(config: Path, db: Path, server: ReplayServer, *flags: str) -> ChildRun:
    run = run_child(python_module("benchmarks.bench_poll", "--child", str(config), str(db),
                                  "--base-url", server.base_url, *flags),
                    env={"WATCHER_DATABASE": str(db)})
    return run


def poll(label: str, server: ReplayServer, config: Path, db: Path, repeat: int, *flags: str) -> Poll:
    """First run (stores, not measured), then ``repeat`` measured second runs on the same archive."""
    first = _run(config, db, server, *flags)
    if first.result["seen"] == 0:
        raise RuntimeError(f"{label}: the first run stored nothing: {first.result}")
    server.requests.clear()  # no request is in flight: the children have exited
    runs = [_run(config, db, server, *flags) for _ in range(repeat)]
    requests = Counter(r.key for r in server.requests)
    statuses = Counter(r.status for r in server.requests)
    return Poll(label, sum(first.result["outcomes"].values()), runs, requests, statuses)


def feeds_variant(count: int, repeat: int, tmp: Path) -> Poll:
    from benchmarks.bench_ingest import FEED, rewrite
    from watcher.replay import ReplayServer

    data = FEED.read_bytes()
    with ReplayServer() as server:
        urls = [f"https://poll.bench.example/feed-{n:02d}.xml" for n in range(1, count + 1)]
        for n, url in enumerate(urls, 1):
            server.add(url, headers={"Content-Type": "application/rss+xml", "ETag": f'"bench-{n}"'},
                       body=rewrite(data, n))
        config, db = tmp / "feeds.toml", tmp / "feeds.db"
        _feeds_config(config, urls, db)
        return poll(f"{count} feeds, one host, host_delay=0", server, config, db, repeat)


def demo_variants(repeat: int, tmp: Path) -> list[Poll]:
    from watcher.replay import DEMO_RECORDING, ReplayServer

    out: list[Poll] = []
    with ReplayServer(DEMO_RECORDING) as server:
        for label, flags in (("demo sources.toml, host_delay as configured", ()),
                             ("demo sources.toml, host_delay=0", ("--host-delay", "0"))):
            db = tmp / f"demo-{len(out)}.db"
            out.append(poll(label, server, SOURCES_TOML, db, repeat, "--demo", *flags))
    return out


def per_run(p: Poll) -> tuple[float, float]:
    """(requests per source, robots.txt requests) in one measured run, from what the server saw."""
    n_runs = len(p.runs)
    robots = sum(v for k, v in p.requests.items() if k.endswith("robots.txt")) / n_runs
    return (sum(p.requests.values()) / n_runs - robots) / p.sources, robots


def rows(polls: Sequence[Poll]) -> list[list[object]]:
    out: list[list[object]] = []
    for p in polls:
        n_runs = len(p.runs)
        per_source, robots = per_run(p)
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(p.runs[-1].result["outcomes"].items()))
        statuses = ", ".join(f"{k}: {v // n_runs}" for k, v in sorted(p.statuses.items()))
        out.append([p.label, p.sources, median([r.wall for r in p.runs]), p.child("import_s"), p.child("poll_s"),
                    1000 * p.child("poll_s") / p.sources, per_source, robots, statuses,
                    p.runs[-1].result["parses"], outcomes, max(r.peak_mb for r in p.runs)])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__, quick="one measured second run per variant", repeat="measured second runs")
    parser.add_argument("--sources", type=int, default=GOAL_SOURCES, help="feed sources (default 20)")
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "DB"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--host-delay", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--demo", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        emit(child(args.child[0], args.child[1], args.base_url, args.host_delay, args.demo))
        return 0
    repeat = repeats(args)
    print(f"bench_poll: second run of every source, nothing changed (ETag -> 304); {repeat} measured run(s) per "
          f"variant, each a fresh process on the archive of the first run; {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp:
        polls = [feeds_variant(args.sources, repeat, Path(tmp)), *demo_variants(repeat, Path(tmp))]
    print_table("Second run, nothing changed (medians; requests per measured run)",
                ["variant", "sources", "wall s", "imports s", "poll s", "ms/source", "requests/source",
                 "robots.txt", "statuses", "parses", "outcomes", "peak RSS MB"], rows(polls))
    demo = polls[1]
    print_table(f"{demo.label}: per source (last run; requests as the source counts them) and per URL",
                ["source", "outcome", "requests", "seen", "new", "error"],
                [[name, *values, demo.runs[-1].result["failed"].get(name, "")]
                 for name, values in demo.runs[-1].result["per_source"].items()])
    print_table("", ["server key", "requests/run"],
                [[key, count / len(demo.runs)] for key, count in sorted(demo.requests.items())])
    feeds = polls[0]
    poll_s, wall = feeds.child("poll_s"), median([r.wall for r in feeds.runs])
    per_source = per_run(feeds)[0]
    verdict(f"goal 3: poll of {feeds.sources} unchanged sources <= {GOAL_SECONDS:g} s, one conditional request each, "
            "no parsing",
            f"{poll_s:.3f} s for the poll ({wall:.2f} s whole process), {per_source:g} request/source, "
            f"{feeds.runs[-1].result['parses']} parses",
            poll_s <= GOAL_SECONDS and per_source == 1 and feeds.runs[-1].result["parses"] == 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
