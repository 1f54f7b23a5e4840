"""Two writers started together: ``watcher fetch`` twice at the same moment on one fresh archive, N rounds.

    python -m benchmarks.bench_two_writers [--rounds 20] [--sources 4]

Each round: a fresh archive, one local ``ReplayServer`` serving the real 500-entry CNIL feed under ``--sources``
URLs (one ``[[source]]`` each, so ``sources x 500`` distinct items), and two ``python -m watcher fetch --force``
child processes started back to back (both also migrate the new archive: the original crash). Counted per round:

- crash: a child exiting non-zero or printing a traceback;
- lost: items expected and not in the archive;
- duplicated: an item stored twice (rows beyond the distinct ids) or a spurious new version of an unchanged item;
- waited: the child that said "another watcher run holds the archive ... waiting" (the lock did its work).

Goal (issue 11): 0 crashes, 0 lost, 0 duplicated over 20 rounds. Also used by ``tests/test_concurrency.py``.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks._util import REPO, child_env, machine, print_table, python_module, verdict
from watcher.replay import ReplayServer

FEED = REPO / "tests/fixtures/cnil/bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml"
ENTRIES = 500


@dataclass
class Round:
    codes: tuple[int, int]
    crashed: int  # processes that exited non-zero or printed a traceback
    expected: int
    stored: int
    distinct: int
    versions: int
    fetches: int
    waited: int
    stderr: str

    @property
    def lost(self) -> int:
        return self.expected - self.distinct

    @property
    def duplicated(self) -> int:
        return self.stored - self.distinct + self.versions


def write_config(folder: Path, server: ReplayServer, sources: int) -> Path:
    """A sources.toml with ``sources`` feed sources, each a URL of ``server`` serving the real CNIL feed."""
    lines = ['[settings]', 'contact = "tests@example.org"', f'database = "{folder / "watcher.db"}"',
             'host_delay = 0', '']
    for n in range(sources):
        url = f"https://feeds.example.test/cnil-{n}.xml"
        server.add(url, body=FEED.read_bytes(), headers={"Content-Type": "application/rss+xml"})
        lines += ['[[source]]', f'name = "cnil-{n}"', 'kind = "feed"', f'url = "{server.url_map(url)}"', '']
    path = folder / "sources.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def two_writers(folder: Path, server: ReplayServer, sources: int = 4) -> Round:
    """Start two ``watcher fetch --force`` on a fresh archive in ``folder`` at once; what they left behind."""
    config = write_config(folder, server, sources)
    args = python_module("watcher", "--config", str(config), "fetch", "--force")
    env = child_env({"WATCHER_DATABASE": str(folder / "watcher.db")})
    procs = [subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    stderr = "\n".join(err for _, err in outputs)
    with sqlite3.connect(folder / "watcher.db") as db:
        stored, distinct = db.execute("select count(*), count(distinct id) from items").fetchone()
        versions = db.execute("select count(*) from item_versions").fetchone()[0]
        fetches = db.execute("select count(*) from fetch_log where outcome = 'ok'").fetchone()[0]
    crashed = sum(proc.returncode != 0 or "Traceback" in err for proc, (_, err) in zip(procs, outputs, strict=True))
    return Round((procs[0].returncode, procs[1].returncode), crashed, sources * ENTRIES,
                 stored, distinct, versions, fetches, stderr.count("waiting up to"), stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--sources", type=int, default=4)
    options = parser.parse_args(argv)
    print(machine())
    rounds = []
    with ReplayServer() as server:
        for n in range(options.rounds):
            with tempfile.TemporaryDirectory(prefix="watcher-two-writers-") as folder:
                rounds.append(done := two_writers(Path(folder), server, options.sources))
            print(f"round {n + 1}: exit codes {done.codes}, crashed {done.crashed}, lost {done.lost}, "
                  f"duplicated {done.duplicated}, waited {done.waited}", flush=True)
            if done.crashed:
                print(done.stderr[-2000:])
    totals = [sum(getattr(r, k) for r in rounds) for k in ("crashed", "lost", "duplicated", "waited")]
    print_table(f"two writers started together, {options.rounds} rounds, {options.sources} x {ENTRIES} items",
                ["rounds", "crashes", "lost", "duplicated", "a writer waited"], [[len(rounds), *totals]])
    verdict("two writers started together 20 times: 0 crashes, 0 lost or duplicated items",
            f"{totals[0]} crashes, {totals[1]} lost, {totals[2]} duplicated in {len(rounds)} rounds",
            not any(totals[:3]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
