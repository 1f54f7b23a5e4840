"""The daemon at rest: CPU share and resident memory once its first polls are done (targets: <= 1 % of a core,
<= 150 MB without the model), then how it stops on SIGTERM; with --model, the model loaded for new items and
released after the idle time.

`python -m watcher daemon` runs on a fresh archive with --sources feed sources served by a local HTTP server (a
real CNIL feed envelope with no item, so nothing is classified and the model is never loaded). Once every source
has been polled, the daemon's own CPU time (/proc/PID/stat) is read over --idle seconds, and its resident set
(VmRSS, VmHWM). Then SIGTERM: exit status and time to exit. With --model one more source serves the real 6-item
CNIL feed: the daemon classifies them with the real model (settings ``model_idle = 30``), and the resident set is
read once they are classified and again after the model job released the model.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._util import REPO, child_env, machine, verdict
from watcher.replay import ReplayServer

EMPTY_FEED = REPO / "tests/fixtures/reconstructed/reconstructed_cnil_feed_0items.xml"
CNIL_FEED = REPO / "tests/fixtures/cnil/bmeret_cnil_feed_scraped-actualite_6items_2026-06-16.xml"
CNIL_URL = "http://cnil.test/rss.xml"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def memory_mb(pid: int) -> tuple[float, float]:
    values = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(values["VmRSS"].split()[0]) / 1024, int(values["VmHWM"].split()[0]) / 1024


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the model process, when loaded)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in found if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]


def write_config(folder: Path, server: ReplayServer, count: int, model: bool) -> Path:
    sources = "".join(f'[[source]]\nname = "feed-{n}"\nkind = "feed"\n'
                      f'url = "{server.url_map(f"http://feeds-{n}.test/rss.xml")}"\ninterval = "1h"\n'
                      for n in range(count))
    if model:
        sources += f'[[source]]\nname = "cnil"\nkind = "feed"\nurl = "{server.url_map(CNIL_URL)}"\ninterval = "1h"\n'
    path = folder / "sources.toml"
    path.write_text('[settings]\ndatabase = "watcher.db"\nhost_delay = 0.0\nrespect_robots = false\n'
                    'model_idle = 30.0\n' + sources, encoding="utf-8")
    return path


def count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return 0


def polled(db: Path) -> int:
    return count(db, "select count(distinct source) from fetch_log")


def model_cycle(daemon: subprocess.Popen[bytes], db: Path, started: float) -> None:
    """Wait for the 6 items to be classified (model loaded), then for the release (model_idle 30 s + the job)."""
    while count(db, "select count(*) from classifications") < 6:
        if daemon.poll() is not None or time.perf_counter() - started > 600:
            raise RuntimeError("the daemon stopped or did not classify")
        time.sleep(0.5)
    loaded, peak = memory_mb(daemon.pid)
    model = sum(memory_mb(pid)[0] for pid in children(daemon.pid))
    print(f"6 items classified {time.perf_counter() - started:.1f} s after start: daemon RSS {loaded:.0f} MB "
          f"(peak {peak:.0f} MB), model process(es) {children(daemon.pid)} {model:.0f} MB")
    state = db.with_name(db.name + ".daemon")
    waited = time.perf_counter()
    while json.loads(state.read_text() or "{}").get("model", {}).get("loaded", True):
        if time.perf_counter() - waited > 180:
            raise RuntimeError("the model was not released")
        time.sleep(1)
    released, _ = memory_mb(daemon.pid)
    left = [pid for pid in children(daemon.pid) if Path(f"/proc/{pid}").exists()]
    print(f"model released {time.perf_counter() - waited:.0f} s later: daemon RSS {released:.0f} MB, model "
          f"process(es) left: {left or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=12)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of rest measured")
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose watcher the daemon runs")
    parser.add_argument("--model", action="store_true", help="one source brings 6 new items: load, then release")
    args = parser.parse_args()
    print(f"machine: {machine()}; daemon from {args.code}")
    with tempfile.TemporaryDirectory() as tmp, ReplayServer() as server:
        for n in range(args.sources):
            server.add(f"http://feeds-{n}.test/rss.xml", body=EMPTY_FEED.read_bytes(),
                       headers={"content-type": "application/rss+xml", "etag": f'"e{n}"'})
        server.add(CNIL_URL, body=CNIL_FEED.read_bytes(), headers={"content-type": "application/rss+xml"})
        path = write_config(Path(tmp), server, args.sources, args.model)
        started = time.perf_counter()
        daemon = subprocess.Popen([sys.executable, "-m", "watcher", "--config", str(path), "daemon"], cwd=tmp,
                                  env=child_env({"PYTHONPATH": str(args.code)}), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            measure(daemon, Path(tmp) / "watcher.db", args, started)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()


def measure(daemon: subprocess.Popen[bytes], db: Path, args: argparse.Namespace, started: float) -> None:
    while polled(db) < args.sources + args.model:
        if daemon.poll() is not None or time.perf_counter() - started > 300:
            raise RuntimeError(f"the daemon stopped or did not poll every source (exit {daemon.returncode})")
        time.sleep(0.2)
    print(f"first polls of {args.sources + args.model} sources done {time.perf_counter() - started:.1f} s after start")
    if args.model:
        model_cycle(daemon, db, started)
    time.sleep(3)  # let the first jobs' last writes settle
    cpu0, wall0 = cpu_seconds(daemon.pid), time.perf_counter()
    time.sleep(args.idle)
    cpu, wall = cpu_seconds(daemon.pid) - cpu0, time.perf_counter() - wall0
    rss, peak = memory_mb(daemon.pid)
    share = cpu / wall * 100
    print(f"at rest for {wall:.0f} s: {cpu:.2f} s CPU = {share:.2f} % of a core; RSS {rss:.0f} MB (peak {peak:.0f} MB)")
    stop = time.perf_counter()
    daemon.send_signal(signal.SIGTERM)
    try:
        code = daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        code = None
    print(f"SIGTERM: exit status {code} after {time.perf_counter() - stop:.2f} s")
    verdict("daemon at rest <= 1 % of a core", f"{share:.2f} %", share <= 1)
    verdict("daemon at rest <= 150 MB resident without the model", f"{rss:.0f} MB (peak {peak:.0f})", rss <= 150)
    verdict("SIGTERM stops the daemon cleanly (exit 0)", f"exit {code}", code == 0)


if __name__ == "__main__":
    main()
