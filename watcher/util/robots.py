"""robots.txt, read once per host and obeyed (``urllib.robotparser``), read again once a day.

A host without a readable robots.txt (404, 5xx, unreachable) is treated as allowing everything, as RFC 9309
lets crawlers do for "unavailable" files; watcher extends that to server errors. A copy is used for at most
``MAX_AGE`` seconds (RFC 9309, 2.4: not more than 24 hours), so a long-running daemon sees a host's new rules.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.robotparser import RobotFileParser

MAX_AGE = 24 * 3600.0


class RobotsCache:
    """Parsed robots.txt per ``scheme://host``; ``None`` text means "no rules"."""

    def __init__(self, user_agent: str, *, clock: Callable[[], float] = time.monotonic, max_age: float = MAX_AGE):
        self.user_agent = user_agent
        self._clock, self.max_age = clock, max_age
        self._parsers: dict[str, tuple[RobotFileParser | None, float]] = {}  # host -> (rules, when read)
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}

    def lock_for(self, host: str) -> threading.Lock:
        """Hold it while checking and fetching ``host``'s robots.txt, so that it is fetched once."""
        with self._lock:
            return self._host_locks.setdefault(host, threading.Lock())

    def known(self, host: str) -> bool:
        """Whether ``host``'s robots.txt has been read less than ``max_age`` seconds ago."""
        with self._lock:
            entry = self._parsers.get(host)
            return entry is not None and self._clock() - entry[1] < self.max_age

    def store(self, host: str, text: str | None) -> None:
        parser = None
        if text is not None:
            parser = RobotFileParser()
            parser.parse(text.splitlines())  # also marks it as read, or can_fetch would say no
        with self._lock:
            self._parsers[host] = (parser, self._clock())

    def _rules(self, host: str) -> RobotFileParser | None:
        entry = self._parsers.get(host)
        return entry[0] if entry else None

    def allowed(self, host: str, url: str) -> bool:
        parser = self._rules(host)
        return parser is None or parser.can_fetch(self.user_agent, url)

    def crawl_delay(self, host: str) -> float | None:
        parser = self._rules(host)
        if parser is None:
            return None
        delay = parser.crawl_delay(self.user_agent)
        return float(delay) if delay is not None else None

