"""Fault cases of the archive and of honest parsing (the code of the ``robust`` area): two fetches at once on one
archive, a secret webhook URL under ``-v``, a truncated feed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from cases_sources import BAD, GOOD, RSS, SETTINGS, _config, _items
from harness import ROOT, Outcome, case, cli, describe
from test_notify_support import CNIL_BIG_FEED, CNIL_FEED, HookServer

from watcher.replay import ReplayServer

TRUNCATED = ROOT / "tests/fixtures/misc/feedparser_truncated_rss_unclosed_root.xml"


@case("two-fetches-at-once", "archive")
def two_fetches(folder: Path) -> Outcome:
    """Two ``watcher fetch --force`` started together on one archive (506 items): both end cleanly, one waits for
    the other's writer lock, every item stored once."""
    with ReplayServer() as server:
        server.add(GOOD, body=CNIL_FEED.read_bytes(), headers=RSS)
        server.add(BAD, body=CNIL_BIG_FEED.read_bytes(), headers=RSS)
        _config(folder, server)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        args = [sys.executable, "-m", "watcher", "--config", str(folder / "sources.toml"), "fetch", "--force"]
        children = [subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True) for _ in range(2)]
        outputs = [child.communicate(timeout=300)[0] for child in children]
    items = _items(folder)
    with sqlite3.connect(folder / "watcher.db") as conn:
        rows = conn.execute("select count(*), count(distinct id) from items").fetchone()
    clean = all(c.returncode == 0 for c in children) and not any("Traceback" in o for o in outputs)
    return Outcome(clean, items == {"cnil": 6, "hostile": 500}, rows[0] == rows[1] == 506, clean,
                   f"items {items}; exits {[c.returncode for c in children]}")


@case("secret-under-verbose", "archive")
def secret_under_verbose(folder: Path) -> Outcome:
    """``watcher -v notify-test`` to a Slack webhook (a secret URL): sent, and the secret is nowhere in the output"""
    hooks = HookServer()
    with hooks.running() as url:
        (folder / "sources.toml").write_text(SETTINGS + '[channel.team]\nkind = "slack"\n'
                                             'webhook_env = "WATCHER_FAULTS_WEBHOOK"\n', encoding="utf-8")
        done = cli(folder, "-v", "notify-test", "team", env={"WATCHER_FAULTS_WEBHOOK": url})
    secret = url.rsplit("/", 1)[-1]
    return Outcome(done.clean(), len(hooks.posts) == 1, len(hooks.posts) == 1, secret not in done.output,
                   f"{len(hooks.posts)} post(s); secret {'SHOWN' if secret in done.output else 'masked'}; "
                   f"{describe(done)}")


@case("truncated-feed", "archive")
def truncated_feed(folder: Path) -> Outcome:
    """A real feed cut off mid-document: the complete entries are stored, the source is recorded degraded, the
    run goes on"""
    with ReplayServer() as server:
        server.add(GOOD, body=CNIL_FEED.read_bytes(), headers=RSS)
        server.add(BAD, body=TRUNCATED.read_bytes(), headers=RSS)
        _config(folder, server)
        done = cli(folder, "fetch", "--force")
    with sqlite3.connect(folder / "watcher.db") as conn:
        empty = conn.execute("select count(*) from items where source = 'hostile' and (title = '' or title is null)"
                             ).fetchone()[0]
        outcome = conn.execute("select outcome from fetch_log where source = 'hostile'").fetchone()
    items = _items(folder)
    return Outcome(done.clean(0, 1), items.get("cnil") == 6 and items.get("hostile", 0) >= 1, empty == 0,
                   outcome is not None and outcome[0] == "degraded" and "degraded" in done.output,
                   f"items {items}; hostile recorded {outcome[0] if outcome else None}")
