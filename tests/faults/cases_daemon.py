"""Fault cases of the daemon and of operations alerts: a source that keeps failing tells the admin once (by the
CLI and by the daemon), a second daemon is refused, SIGTERM stops the daemon and ``deliver`` cleanly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

from cases_delivery import T0, _archive, _mail_channel, _point_at, _states
from harness import ROOT, Outcome, case, cli, describe
from test_notify_support import SmtpSink, signalling_sink

from watcher.replay import ReplayServer

FEED = "http://feeds.test/cnil.xml"
ADMIN = '[admin]\nchannel = "mail"\nemail = "exploitation@cabinet-test.fr"\n'


def _failing_source(folder: Path, server: ReplayServer, port: int, interval: str = "6h") -> Path:
    path = folder / "sources.toml"
    path.write_text('[settings]\ndatabase = "watcher.db"\nhost_delay = 0.0\nrespect_robots = false\nretries = 0\n'
                    'failure_alert_after = 3\n'
                    f'[[source]]\nname = "cnil"\nkind = "feed"\nurl = "{server.url_map(FEED)}"\ninterval = "{interval}"\n'
                    + _mail_channel(port) + ADMIN, encoding="utf-8")
    return path


@case("source-failing-admin", "ops")
def source_failing_admin(folder: Path) -> Outcome:
    """A source answers 503 five times, then works (cron ``watcher run``): the admin gets one incident mail and
    one recovery mail."""
    with ReplayServer() as server, SmtpSink() as sink:
        for _ in range(5):
            server.add(FEED, status=503)
        server.add(FEED, body=(ROOT / "tests/fixtures/cnil/bmeret_cnil_feed_scraped-actualite_6items_2026-06-16.xml")
                   .read_bytes(), headers={"content-type": "application/rss+xml"})
        _failing_source(folder, server, sink.port)
        runs = [cli(folder, "run", "--force", "--no-notify") for _ in range(6)]
        deliver = cli(folder, "deliver")
        subjects = [" ".join(str(m["Subject"]).split()) for m in sink.messages]
        status = cli(folder, "status")
    opened = sum("Incident" in s for s in subjects)
    closed = sum("Rétabli" in s for s in subjects)
    return Outcome(all(r.clean(0, 1) for r in runs) and deliver.clean() and status.clean(), opened == 1,
                   opened == 1 and closed == 1, "deliveries: 2 sent" in status.output,
                   f"admin mails: {subjects}")


@case("daemon-second-and-sigterm", "ops")
def daemon_second_and_sigterm(folder: Path) -> Outcome:
    """A daemon polls a failing source and tells the admin; a second daemon on the archive is refused with the
    first one's pid; SIGTERM stops the first one cleanly (exit 0, lock released)."""
    sink = signalling_sink()
    with ReplayServer() as server, sink:
        server.add(FEED, status=503)
        path = _failing_source(folder, server, sink.port, interval="1s")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "watcher", "--config", str(path), "daemon"]
        first = subprocess.Popen(command, cwd=folder, env=env, stderr=subprocess.PIPE, text=True)
        try:
            started = first.stderr.readline() if first.stderr else ""
            told = sink.handler.arrived.wait(120)  # type: ignore[attr-defined]
            second = cli(folder, "daemon", timeout=60)
            first.send_signal(signal.SIGTERM)
            code = first.wait(timeout=120)
        finally:
            if first.poll() is None:
                first.kill()
        status = cli(folder, "status")
    refused = second.returncode == 1 and f"(pid {first.pid}); exiting" in second.output
    return Outcome(code == 0 and second.clean(1) and "watcher daemon:" in started, told, len(sink.messages) == 1,
                   refused and "daemon: not running" in status.output,
                   f"first exit {code}; second: {describe(second)}")


@case("deliver-sigterm", "ops")
def deliver_sigterm(folder: Path) -> Outcome:
    """``watcher deliver`` gets SIGTERM mid-batch (200 mails): the mail in flight is finished and recorded, the rest
    wait; the next run sends them; each arrives once."""
    sink = signalling_sink()
    with sink:
        path = _archive(folder, _mail_channel(0), count=200)
        _point_at(path, sink.port)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen([sys.executable, "-m", "watcher", "--config", str(path), "deliver", "--now",
                                  T0.isoformat()], cwd=folder, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        sink.handler.arrived.wait(120)  # type: ignore[attr-defined]
        child.send_signal(signal.SIGTERM)
        output = child.communicate(timeout=120)[0]
        with sqlite3.connect(folder / "watcher.db") as conn:
            sending = conn.execute("select count(*) from deliveries where state = 'sending'").fetchone()[0]
        last = cli(folder, "deliver", "--now", T0.isoformat())
        ids = Counter(sink.message_ids())
    clean = child.returncode == 0 and "Traceback" not in output and last.clean()
    return Outcome(clean, len(ids) == 200 and _states(folder) == {"sent": 200},
                   all(n == 1 for n in ids.values()), "stopped (SIGTERM)" in output and sending == 0,
                   f"exit {child.returncode}; {output.strip().splitlines()[0] if output.strip() else ''}")
