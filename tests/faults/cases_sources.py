"""Fault cases of fetching: a hostile HTTP server (local, scripted) behind one source while a healthy one goes on.
Each runs ``watcher fetch --force`` (the real CLI and HTTP client) and counts what the archive holds."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from harness import Outcome, case, cli, describe
from test_notify_support import CNIL_FEED

from watcher.replay import ReplayServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BOT_WALL = FIXTURES / "eurlex/eurlex_frontend_202_waf_challenge_empty.http.txt"
GOOD, BAD = "http://feeds.test/cnil.xml", "http://hostile.test/feed.xml"
RSS = {"content-type": "application/rss+xml"}
SETTINGS = ('[settings]\ndatabase = "watcher.db"\ntimeout = 1.0\nretries = 1\nhost_delay = 0.0\n'
            'respect_robots = false\nmax_retry_after = 5.0\nmax_bytes = 5000000\nmax_transfer_seconds = 5.0\n')


def _config(folder: Path, server: ReplayServer) -> None:
    sources = "".join(f'[[source]]\nname = "{name}"\nkind = "feed"\nurl = "{server.url_map(url)}"\n'
                      for name, url in (("cnil", GOOD), ("hostile", BAD)))
    (folder / "sources.toml").write_text(SETTINGS + sources, encoding="utf-8")


def _items(folder: Path) -> dict[str, int]:
    with sqlite3.connect(folder / "watcher.db") as conn:
        return dict(conn.execute("select source, count(*) from items group by source").fetchall())


def _fetch_case(script: Callable[[ReplayServer], None], expected: str, *, runs: int = 1,
                hostile_items: int = 0) -> Callable[[Path], Outcome]:
    """A case: CNIL's real feed on one host, ``script`` on the other; ``runs`` fetches; ``expected`` shown."""
    def run(folder: Path) -> Outcome:
        with ReplayServer() as server:
            server.add(GOOD, body=CNIL_FEED.read_bytes(), headers=RSS)
            script(server)
            _config(folder, server)
            done = [cli(folder, "fetch", "--force") for _ in range(runs)]
        items = _items(folder)
        exit_ok = all(d.clean(0, 1) for d in done)
        output = "".join(d.output for d in done)
        return Outcome(exit_ok, items.get("cnil") == 6 and items.get("hostile", 0) == hostile_items,
                       sum(items.values()) == 6 + hostile_items, expected.lower() in output.lower(),
                       f"items {items}; {describe(done[-1])}")
    return run


def _recorded_headers(path: Path) -> dict[str, str]:
    """The headers of a recorded raw HTTP response (status line first, body empty)."""
    lines = path.read_text(encoding="utf-8").split("\n\n", 1)[0].splitlines()[1:]
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs if k.strip().lower() not in ("content-length", "connection")}


def _register(name: str, summary: str, run: Callable[[Path], Outcome]) -> None:
    run.__doc__ = summary
    case(name, "fetch")(run)


_register("http-500", "the feed answers 500 every time: the source fails with its reason, the other is stored",
          _fetch_case(lambda s: s.add(BAD, status=500), "500"))
_register("http-timeout", "the feed answers after 3 s with timeout = 1: a timeout, not a hang",
          _fetch_case(lambda s: s.add(BAD, body=CNIL_FEED.read_bytes(), headers=RSS, delay=3), "timed out"))
_register("http-429-retry-after", "429 with Retry-After: 1, then the feed: waited, then stored",
          _fetch_case(lambda s: (s.add(BAD, status=429, headers={"Retry-After": "1"}),
                                 s.add(BAD, body=CNIL_FEED.read_bytes(), headers=RSS)), "ok", hostile_items=6))
_register("html-on-feed-url", "an HTML maintenance page where the feed was: a parse failure naming it",
          _fetch_case(lambda s: s.add(BAD, body=b"<html><body>Maintenance</body></html>",
                                      headers={"content-type": "text/html"}), "html"))
_register("bot-wall-202", "EUR-Lex's real empty 202 (WAF challenge, its recorded headers): reported as a bot wall",
          _fetch_case(lambda s: s.add(BAD, status=202, headers=_recorded_headers(BOT_WALL)), "bot wall"))
_register("body-too-large", "a 60 MB body with max_bytes 5 MB: cut off at the cap, refused",
          _fetch_case(lambda s: s.add(BAD, size=60_000_000, headers=RSS), "bytes"))
_register("redirect-loop", "a redirect to itself: stopped after max_redirects",
          _fetch_case(lambda s: s.add(BAD, status=302, headers={"location": s.url_map(BAD)}), "redirect"))
_register("same-feed-twice", "the same feed fetched twice: nothing stored twice",
          _fetch_case(lambda s: s.add(BAD, body=CNIL_FEED.read_bytes(), headers=RSS), "ok", runs=2,
                      hostile_items=6))
