"""kill -9 of `watcher deliver` at random points over 2,000 e-mails: duplicates (by Message-ID) and lost messages.

2,000 instant alerts (500 real CNIL titles x 4 subscribers) are planned in a fresh archive. `python -m watcher
deliver` is started, and once the SMTP server has received a first message from it, it is killed with SIGKILL
after a random delay (0 to --max-delay seconds); this is repeated --kills times. A last run, an hour later (past
``stale_after``), recovers the interrupted sends and sends the rest. The SMTP server is aiosmtpd in its own process;
it writes each message's Message-ID to a file before answering 250, so what arrived is known exactly.

Printed: for each kill, the messages that had arrived, whether a row was left 'sending' and whether that message
had already arrived (inside the window between DATA's final dot and the ledger's record: it is re-sent with the
same Message-ID, a duplicate receivers drop); then duplicates and lost messages. ``--code DIR`` runs the deliver
children from another checkout (e.g. a clone of an earlier commit) to compare.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from aiosmtpd.controller import Controller

from benchmarks._util import REPO, child_env, machine, verdict

FEED = REPO / "tests/fixtures/cnil/bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml"
T0 = datetime(2026, 6, 16, 18, 0, tzinfo=UTC)
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


class RecordingHandler:
    """Appends each message's Message-ID to a file, flushed before the 250 goes back."""

    def __init__(self, path: str) -> None:
        self.out = open(path, "ab", buffering=0)  # noqa: SIM115 - open for the server's whole life

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = MESSAGE_ID.search(envelope.original_content or envelope.content)
        self.out.write((found.group(1) if found else b"<none>") + b"\n")
        return "250 OK"


def serve(port: int, path: str, ready: Any) -> None:
    controller = Controller(RecordingHandler(path), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    threading.Event().wait()


@contextmanager
def smtp_server(port: int, path: Path) -> Iterator[None]:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    process = ctx.Process(target=serve, args=(port, str(path), ready), daemon=True)
    process.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the SMTP server did not start")
        yield
    finally:
        process.terminate()
        process.join()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(folder: Path, port: int, subscribers: int) -> Path:
    subs = "".join(f'[[subscription]]\nname = "s{n}"\nperson = "Avocat {n}"\nemail = "avocat{n}@cabinet.example"\n'
                   f'themes = ["health-data"]\nchannel = "mail"\n' for n in range(subscribers))
    path = folder / "sources.toml"
    path.write_text('[settings]\ndatabase = "watcher.db"\npublic_url = "https://archive.example.org"\n'
                    '[[source]]\nname = "cnil"\nkind = "feed"\nurl = "http://127.0.0.1:9/feed"\n'
                    f'[channel.mail]\nkind = "email"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "plain"\n'
                    f'from = "veille@cabinet.example"\ntimeout = 10\n{subs}', encoding="utf-8")
    return path


def seed_and_plan(path: Path, items: int) -> int:
    from store import Store
    from watcher.config import load_config
    from watcher.notify import plan_deliveries
    from watcher.notify.service import load_alerts

    config = load_config(path)
    store = Store(config.database)
    stamp = "2026-06-16T17:00:00Z"
    nodes = list(ElementTree.parse(FEED).getroot().iter("item"))[:items]
    rows = [{"id": f"cnil:{n}", "source": "cnil", "url": node.findtext("link") or "", "lang": "fr",
             "title": node.findtext("title") or "", "summary": node.findtext("description") or "",
             "published": stamp, "nature": "article", "content_hash": f"h{n}"} for n, node in enumerate(nodes)]
    store.upsert_items(rows, stamp)
    with store.db.atomic():
        for row in rows:
            store.save_themes(row["id"], row["content_hash"], [{
                "theme": "health-data", "score": 0.9, "reason": "mots-clés", "origin": "model", "model": "bench",
                "model_version": "1"}], now=stamp, model="bench", model_version="1")
    planned = plan_deliveries(store, load_alerts(config), T0)
    store.close()
    return planned


def arrived(log: Path) -> list[str]:
    return log.read_bytes().decode().split() if log.exists() else []


def left_sending(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("select message_id from deliveries where state = 'sending'")]


def deliver(path: Path, now: datetime, code: Path) -> subprocess.Popen[bytes]:
    env = child_env({"PYTHONPATH": str(code)})
    return subprocess.Popen([sys.executable, "-m", "watcher", "deliver", "--config", str(path), "--now",
                             now.isoformat()], cwd=path.parent, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def kill_once(path: Path, log: Path, code: Path, rng: random.Random, max_delay: float) -> bool:
    """One run killed after a random delay once it has started sending; False if it finished first."""
    before = len(arrived(log))
    child = deliver(path, T0, code)
    while len(arrived(log)) == before and child.poll() is None:
        time.sleep(0.002)
    time.sleep(rng.uniform(0, max_delay))
    if child.poll() is not None:
        return False
    child.send_signal(signal.SIGKILL)
    child.wait()
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--max-delay", type=float, default=0.5, help="longest random delay before a kill, s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose watcher the children run")
    args = parser.parse_args()
    print(f"machine: {machine()}; children run {args.code}")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder, port = Path(tmp), free_port()
        log, path = folder / "arrived.txt", write_config(folder, port, args.subscribers)
        planned = seed_and_plan(path, args.items)
        print(f"planned {planned} e-mails")
        with smtp_server(port, log):
            run(args, rng, path, log, folder / "watcher.db", planned)


def run(args: argparse.Namespace, rng: random.Random, path: Path, log: Path, db: Path, planned: int) -> None:
    kills, stuck_before, window, harmless = 0, set[str](), 0, 0
    print(f"{'kill':>4} {'arrived':>8}  row left 'sending' by this kill")
    for n in range(1, args.kills + 1):
        if not kill_once(path, log, args.code, rng, args.max_delay):
            print(f"run {n} finished before its kill: every message was sent")
            break
        kills += 1
        got, stuck = set(arrived(log)), set(left_sending(db))
        new, stuck_before = stuck - stuck_before, stuck
        inside = len(new & got)
        window, harmless = window + inside, harmless + len(new) - inside
        what = "none" if not new else "had arrived (a duplicate to come)" if inside else "had not arrived"
        print(f"{n:>4} {len(got):>8}  {what}")
    started = time.perf_counter()
    last = deliver(path, T0 + timedelta(hours=1), args.code)
    last.wait()
    print(f"recovery run: exit {last.returncode} in {time.perf_counter() - started:.1f} s")
    counts = Counter(arrived(log))
    with sqlite3.connect(db) as conn:
        expected = {r[0] for r in conn.execute("select message_id from deliveries")}
        states = dict(conn.execute("select state, count(*) from deliveries group by state").fetchall())
    duplicates = sum(c - 1 for c in counts.values())
    lost = len(expected - set(counts))
    print(f"kills: {kills}; e-mails: {planned} planned, {len(expected)} in the ledger ({states}); received "
          f"{sum(counts.values())} messages, {len(counts)} distinct Message-IDs")
    print(f"kills that left a row 'sending': {window + harmless} of {kills}; its message had arrived (the kill "
          f"landed between DATA's final dot and the ledger's record): {window}")
    print(f"duplicates (same Message-ID twice): {duplicates}; lost: {lost}")
    verdict(f"kill -9 x {kills} over {planned} e-mails: 0 lost", f"{lost} lost", lost == 0)
    verdict(f"kill -9 x {kills} over {planned} e-mails: 0 duplicates (goal)", f"{duplicates} duplicates",
            duplicates == 0)


if __name__ == "__main__":
    main()
