"""Fault cases of the delivery loop: SMTP hung, refusing the login, down then up, killed mid-batch; webhook 5xx/429.
Each runs ``watcher deliver`` (the real CLI) against real local servers and counts what arrived."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import ROOT, Outcome, case, cli, describe
from hostile_smtp import SilentServer, login_server
from test_notify_support import CNIL_BIG_FEED, HookServer, SmtpSink, cnil_items, free_port, seed, subscription

from store import Store

T0 = datetime(2026, 6, 16, 18, 0, tzinfo=UTC)
LATER = (T0 + timedelta(hours=1)).isoformat()
COUNT = 10
PASSWORD_VAR = "WATCHER_FAULTS_SMTP_PASSWORD"


def _mail_channel(port: int, *, login: bool = False) -> str:
    auth = f'username = "veille"\npassword_env = "{PASSWORD_VAR}"\n' if login else ""
    return (f'[channel.mail]\nkind = "email"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "plain"\n'
            f'from = "veille@cabinet-test.fr"\ntimeout = 2\n{auth}')


def _archive(folder: Path, channel: str, *, sub_channel: str = "mail", count: int = COUNT) -> Path:
    """sources.toml with one channel and one subscriber, and ``count`` items that each owe one instant alert."""
    path = folder / "sources.toml"
    path.write_text('[settings]\ndatabase = "watcher.db"\npublic_url = "https://archive.example.org"\n'
                    + channel + subscription("alice", channel=sub_channel, themes=["health-data"]), encoding="utf-8")
    store = Store(folder / "watcher.db")
    rows = cnil_items(CNIL_BIG_FEED, limit=count)
    seed(store, rows, {r["id"]: [("health-data", 0.9)] for r in rows})
    store.close()
    return path


def _states(folder: Path) -> dict[str, int]:
    with sqlite3.connect(folder / "watcher.db") as conn:
        return dict(conn.execute("select state, count(*) from deliveries group by state").fetchall())


def _point_at(path: Path, port: int) -> None:
    text = path.read_text(encoding="utf-8")
    start = text.index("port = ") + len("port = ")
    end = text.index("\n", start)
    path.write_text(text[:start] + str(port) + text[end:], encoding="utf-8")


def _arrived_once(sink: SmtpSink) -> tuple[bool, bool, str]:
    ids = Counter(sink.message_ids())
    return len(ids) == COUNT, all(n == 1 for n in ids.values()), f"{len(ids)}/{COUNT} Message-IDs, " \
        f"{sum(ids.values()) - len(ids)} duplicate(s)"


@case("smtp-hung", "ops")
def smtp_hung(folder: Path) -> Outcome:
    """SMTP server accepts and never answers: 2 connection attempts for 10 mails, the rest wait; then all arrive."""
    with SilentServer() as hung:
        path = _archive(folder, _mail_channel(hung.port))
        first = cli(folder, "deliver", "--now", T0.isoformat())
        connections = hung.connections
    with SmtpSink() as sink:
        _point_at(path, sink.port)
        second = cli(folder, "deliver", "--now", LATER)
        complete, once, counted = _arrived_once(sink)
    shown = "deferred 8 message(s) to the next run" in first.output and "stopped for this run" in first.output
    return Outcome(first.clean(0, 1) and second.clean(), complete and _states(folder) == {"sent": COUNT}, once,
                   shown and connections == 2, f"{connections} connections for {COUNT} mails; {counted}; "
                   f"{describe(first)}")


@case("smtp-login-refused", "ops")
def smtp_login_refused(folder: Path) -> Outcome:
    """SMTP refuses the password: one login per run, not one per message, and one AUTH command (smtplib alone sends
    PLAIN then LOGIN); mails wait; all go once it is fixed."""
    with login_server() as (port, handler, logins):
        _archive(folder, _mail_channel(port, login=True))
        first = cli(folder, "deliver", "--now", T0.isoformat(), env={PASSWORD_VAR: "wrong"})
        tried, commands = logins.attempts, logins.commands
        logins.accept = True
        second = cli(folder, "deliver", "--now", LATER, env={PASSWORD_VAR: "fixed"})
        arrived = len(handler.messages)
    shown = "login refused" in first.output and "wrong" not in first.output
    return Outcome(first.clean(0, 1) and second.clean(), arrived == COUNT and _states(folder) == {"sent": COUNT},
                   arrived == COUNT, shown and tried == 1 and commands == 1,
                   f"{tried} login(s), {commands} AUTH command(s) in the failing run; {arrived} arrived")


@case("smtp-down-then-up", "ops")
def smtp_down_then_up(folder: Path) -> Outcome:
    """Nothing listens on the SMTP port, then a server does: every mail arrives once."""
    path = _archive(folder, _mail_channel(free_port()))
    first = cli(folder, "deliver", "--now", T0.isoformat())
    with SmtpSink() as sink:
        _point_at(path, sink.port)
        second = cli(folder, "deliver", "--now", LATER)
        complete, once, counted = _arrived_once(sink)
    shown = "cannot reach 127.0.0.1" in first.output and "deferred" in first.output
    return Outcome(first.clean(0, 1) and second.clean(), complete, once, shown, f"{counted}; {describe(first)}")


KILLER = """
import sys
from datetime import datetime
from store import Store
from watcher.config import load_config
from watcher.notify.service import deliver
config = load_config(sys.argv[1])
deliver(Store(config.database), config, datetime.fromisoformat(sys.argv[2]))
"""


@case("smtp-kill9", "ops")
def smtp_kill9(folder: Path) -> Outcome:
    """``deliver`` killed with SIGKILL mid-batch, then a run past stale_after: nothing lost; a copy only if the
    kill fell between DATA's final dot and the ledger's record (same Message-ID: receivers drop it)."""
    with SmtpSink() as sink:
        path = _archive(folder, _mail_channel(0))
        _point_at(path, sink.port)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen([sys.executable, "-c", KILLER, str(path), T0.isoformat()], env=env, cwd=folder)
        while not sink.message_ids() and child.poll() is None:
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
        child.wait()
        with sqlite3.connect(folder / "watcher.db") as conn:
            stuck = [r[0] for r in conn.execute("select message_id from deliveries where state = 'sending'")]
        in_window = [m for m in stuck if m in set(sink.message_ids())]
        last = cli(folder, "deliver", "--now", LATER)
        ids = Counter(sink.message_ids())
    duplicates = sum(ids.values()) - len(ids)
    return Outcome(last.clean(), len(ids) == COUNT, duplicates <= len(in_window),
                   f"recovered {len(stuck)}" in last.output,
                   f"{len(ids)}/{COUNT} arrived, {duplicates} duplicate(s) by Message-ID; the kill left "
                   f"{len(stuck)} row(s) 'sending', {len(in_window)} of them already delivered")


@case("webhook-500-then-429", "ops")
def webhook_errors(folder: Path) -> Outcome:
    """Slack webhook answers 500, then 429 with Retry-After: retried later, each message posted once."""
    hooks = HookServer(replies=[(500, {}, "oops"), (429, {"Retry-After": "1"}, "slow down")])
    with hooks.running() as url:
        _archive(folder, '[channel.slack]\nkind = "slack"\nwebhook_env = "WATCHER_FAULTS_WEBHOOK"\n',
                 sub_channel="slack")
        env = {"WATCHER_FAULTS_WEBHOOK": url}
        runs = [cli(folder, "deliver", "--now", (T0 + timedelta(hours=h)).isoformat(), env=env) for h in (0, 1, 3)]
    accepted = len(hooks.posts) - 2  # the two refused posts
    shown = "HTTP 500" in runs[0].output and "secrettoken" not in "".join(r.output for r in runs)
    return Outcome(all(r.clean(0, 1) for r in runs), _states(folder) == {"sent": COUNT}, accepted == COUNT, shown,
                   f"{len(hooks.posts)} posts for {COUNT} messages (2 refused); {describe(runs[0])}")


@case("two-delivers-at-once", "ops")
def two_delivers(folder: Path) -> Outcome:
    """Two ``watcher deliver`` started together on one archive (200 mails): each mail arrives once."""
    with SmtpSink() as sink:
        path = _archive(folder, _mail_channel(0), count=200)
        _point_at(path, sink.port)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        args = [sys.executable, "-m", "watcher", "--config", str(path), "deliver", "--now", T0.isoformat()]
        children = [subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True) for _ in range(2)]
        outputs = [child.communicate(timeout=300)[0] for child in children]
        ids = Counter(sink.message_ids())
    clean = all(c.returncode == 0 for c in children) and not any("Traceback" in o for o in outputs)
    duplicates = sum(ids.values()) - len(ids)
    sent = [int(o.split("sent ", 1)[1].split(",", 1)[0]) for o in outputs if "sent " in o]
    return Outcome(clean, len(ids) == 200 and _states(folder) == {"sent": 200}, duplicates == 0,
                   sum(sent) == 200, f"{len(ids)}/200 Message-IDs, {duplicates} duplicate(s); sent by each: {sent}")
