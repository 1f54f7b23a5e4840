"""Alerts at scale: 10,000 new items x 200 subscriptions.

    python -m benchmarks.bench_alerts [--items 10000] [--subscriptions 200]

Prints: planning time (who gets what: queue -> matches; then opening 200 daily digests), rendering and handing
the 200 digests to a local SMTP server (aiosmtpd on 127.0.0.1), their ratio to the targets (2 s and 10 s), and
RSS before / during / after sending (sampled every 50 digests) to show memory stays flat.
Item titles are the real CNIL feed titles of tests/fixtures, repeated with distinct ids.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from aiosmtpd.controller import Controller

from benchmarks._util import bench_parser, machine, verdict
from store import Store
from watcher.config.alerts import AlertsConfig, Cadence, ChannelConfig, Subscription
from watcher.notify import build_channel, plan_deliveries, send_due
from watcher.notify.deliver import Hooks
from watcher.notify.plan import plan_matches

FEED = Path(__file__).resolve().parents[1] / "tests/fixtures/cnil/bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml"
THEMES = [f"theme-{n:02d}" for n in range(40)]
SOURCES = [f"source-{n}" for n in range(10)]
NATURES = ["decret", "arrete", "loi", "deliberation-sanction", "article", "rappel"]  # watcher.legal.natures codes
SEEDED_AT = datetime(2026, 6, 16, 18, 0, tzinfo=UTC)
MORNING = datetime(2026, 6, 17, 6, 30, tzinfo=UTC)  # 08:30 in Paris


class CountingHandler:
    """Accepts every message and only counts them and their bytes."""

    def __init__(self, count: Any, size: Any) -> None:
        self.count, self.size = count, size

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.count.get_lock():
            self.count.value += 1
            self.size.value += len(envelope.content)
        return "250 OK"


def serve(port: int, count: Any, size: Any, ready: Any) -> None:
    """The SMTP server, in its own process like a real MTA (it would otherwise share our GIL)."""
    controller = Controller(CountingHandler(count, size), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    threading.Event().wait()


@contextmanager
def smtp_server(port: int) -> Iterator[tuple[Any, Any]]:
    ctx = multiprocessing.get_context("spawn")
    count, size, ready = ctx.Value("i", 0), ctx.Value("q", 0), ctx.Event()
    process = ctx.Process(target=serve, args=(port, count, size, ready), daemon=True)
    process.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the SMTP server did not start")
        yield count, size
    finally:
        process.terminate()
        process.join()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


def titles() -> list[str]:
    return [node.findtext("title") or "" for node in ElementTree.parse(FEED).getroot().iter("item")]


def seed(store: Store, count: int, rng: random.Random) -> None:
    pool, stamp = titles(), "2026-06-16T18:00:00Z"
    rows = [{"id": f"bench:{n}", "source": rng.choice(SOURCES), "url": f"https://example.org/items/{n}",
             "title": f"{pool[n % len(pool)]} ({n})", "published": stamp, "lang": rng.choice(["fr", "fr", "en"]),
             "nature": rng.choice(NATURES), "content_hash": f"h{n}"} for n in range(count)]
    store.upsert_items(rows, stamp)
    with store.db.atomic():
        for row in rows:
            tags = [{"theme": t, "score": round(rng.uniform(0.3, 1.0), 2), "reason": f"mots-clés de {t}",
                     "origin": "model", "model": "bench", "model_version": "1"}
                    for t in rng.sample(THEMES, rng.randint(1, 3))]
            store.save_themes(row["id"], row["content_hash"], tags, now=stamp, model="bench", model_version="1")


def subscriptions(count: int, rng: random.Random) -> tuple[Subscription, ...]:
    subs = []
    for n in range(count):
        subs.append(Subscription(
            name=f"sub-{n}", person=f"Avocat {n}", email=f"avocat{n}@cabinet.example", channel="mail",
            themes=frozenset(rng.sample(THEMES, rng.randint(1, 3))), min_score=rng.choice([0.5, 0.6, 0.7, 0.8]),
            sources=frozenset(rng.sample(SOURCES, 4)) if n % 2 else frozenset(),
            natures=frozenset({"decret", "arrete"}) if n % 5 == 0 else frozenset(),
            cadence=Cadence(kind="daily"), lang="en" if n % 4 == 0 else "fr"))
    return tuple(subs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = bench_parser(__doc__, quick="2,000 items x 40 subscriptions (no verdicts)")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--subscriptions", type=int, default=200)
    args = parser.parse_args()
    if args.quick:
        args.items, args.subscriptions = 2_000, 40
    print(f"machine: {machine()}")
    rng = random.Random(42)
    port = free_port()
    with smtp_server(port) as (received, size):
        run(args, rng, port, received, size)
    server_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"SMTP server process CPU (start-up included): {server_cpu.ru_utime + server_cpu.ru_stime:.2f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times suffer on a busy machine)")


def run(args: argparse.Namespace, rng: random.Random, port: int, received: Any, size: Any) -> None:
    """Seed, plan, open digests, send them; print the figures (and the verdicts at full size)."""
    channel = ChannelConfig(name="mail", kind="email", secret_vars={}, options={
        "host": "127.0.0.1", "port": port, "security": "plain", "from": "veille@cabinet.example"})
    alerts = AlertsConfig(channels={"mail": channel}, subscriptions=subscriptions(args.subscriptions, rng),
                          public_url="https://archive.example.org")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        started = time.perf_counter()
        seed(store, args.items, rng)
        print(f"seeded {args.items} items with themes in {time.perf_counter() - started:.2f} s (not measured)")
        rss_before = rss_mb()

        started, cpu = time.perf_counter(), time.process_time()
        matches_created = plan_matches(store, alerts, SEEDED_AT)
        matched = time.perf_counter() - started
        matches = store.db.execute("select count(*) from delivery_items").fetchone()[0]
        started = time.perf_counter()
        digests = plan_deliveries(store, alerts, MORNING)
        opened = time.perf_counter() - started
        planning, planning_cpu = matched + opened, time.process_time() - cpu
        print(f"who gets what: {matches} matches of {args.items} items x {args.subscriptions} subscriptions in "
              f"{matched:.2f} s, {digests} digests opened in {opened:.2f} s "
              f"-> {planning:.2f} s wall, {planning_cpu:.2f} s CPU (target 2 s, ratio {planning / 2:.2f}) "
              f"[{matches_created} instant]")

        samples: list[tuple[int, float]] = []
        hooks = Hooks(after_record=lambda key: samples.append((len(samples) + 1, rss_mb())))
        started, cpu = time.perf_counter(), time.process_time()
        report = send_due(store, replace(alerts), MORNING, {"mail": build_channel(channel)}, hooks=hooks)
        sending, sending_cpu = time.perf_counter() - started, time.process_time() - cpu
        rss_after = rss_mb()
        store.close()
    per_digest = matches / max(digests, 1)
    print(f"render + SMTP: {len(report.sent)} digests ({per_digest:.0f} items each on average, "
          f"{size.value / 1e6:.1f} MB) received {received.value} in {sending:.2f} s "
          f"({sending_cpu:.2f} s CPU in this process) -> {sending / max(len(report.sent), 1) * 1000:.1f} ms per "
          f"digest (target 10 s, ratio {sending / 10:.2f})")
    marks = [f"{n}:{mb:.0f}" for n, mb in samples if n % 50 == 0]
    print(f"RSS MB: before planning {rss_before:.0f}, while sending (digest:MB) {' '.join(marks)}, "
          f"after {rss_after:.0f}; peak {peak_mb():.0f}")
    if report.failed or report.held:
        print(f"WARNING: failed {len(report.failed)}, held {len(report.held)}")
    if (args.items, args.subscriptions) == (10_000, 200):
        growth = samples[-1][1] - samples[len(samples) // 2][1] if samples else 0.0
        verdict(f"who gets what for {args.items} items x {args.subscriptions} subscriptions <= 2 s",
                f"{planning:.2f} s wall, {planning_cpu:.2f} s CPU", planning <= 2)
        verdict(f"render and hand {digests} digests to a local SMTP server <= 10 s",
                f"{sending:.2f} s wall, {received.value} received", sending <= 10 and received.value == digests)
        verdict("memory flat while sending (RSS growth over the second half of the digests <= 10 MB)",
                f"{growth:+.0f} MB; {rss_before:.0f} MB before, {rss_after:.0f} MB after", growth <= 10)


if __name__ == "__main__":
    main()
