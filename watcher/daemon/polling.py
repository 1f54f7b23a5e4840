"""When the daemon polls a source: at its interval, more often inside its publication windows, with jitter.

A window is a time range in the settings' timezone (Europe/Paris), e.g. ``"00:15-01:45"`` for the morning JORF
delta (DILA generates it between ~00:20 and 01:15, see SOURCES.md); it may cross midnight. Inside a window the
source is polled every ``window_every`` seconds; outside, every ``interval`` seconds, and never later than the
start of the next window. Jitter delays each poll by a random fraction of the gap (at most ``jitter`` x gap), so
that sources sharing an interval do not all fire together and a site is not hit at the same second every day.

``next_poll`` is pure (time is passed in); ``PollTrigger`` is the APScheduler trigger built on it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from watcher.config.sources import Window, parse_window

__all__ = ["PollTrigger", "Window", "next_poll", "parse_window"]

def in_window(moment: datetime, windows: Sequence[Window], tz: ZoneInfo) -> bool:
    local = moment.astimezone(tz).time()
    return any(w.contains(local) for w in windows)


def next_window_start(after: datetime, windows: Sequence[Window], tz: ZoneInfo) -> datetime | None:
    """The first window start strictly after ``after`` (searched over the next two days), in ``after``'s zone."""
    day = after.astimezone(tz).date()
    starts = [datetime.combine(day + timedelta(days=d), w.start, tzinfo=tz) for d in range(3) for w in windows]
    later = [s for s in starts if s > after]
    return min(later).astimezone(after.tzinfo) if later else None


def next_poll(previous: datetime | None, now: datetime, *, interval: int, windows: Sequence[Window] = (),
              every: int = 600, tz: ZoneInfo | None = None) -> datetime:
    """The next poll after one at ``previous`` (None: the first, which is now)."""
    if previous is None:
        return now
    if not windows or tz is None:
        return previous + timedelta(seconds=interval)
    soon = previous + timedelta(seconds=min(every, interval))
    if in_window(soon, windows, tz):
        return soon
    regular = previous + timedelta(seconds=interval)
    start = next_window_start(previous, windows, tz)
    return min(regular, start) if start else regular


class PollTrigger(BaseTrigger):
    """APScheduler trigger: ``next_poll`` plus a random delay of at most ``jitter`` x the gap."""

    def __init__(self, interval: int, *, windows: Sequence[Window] = (), every: int = 600, tz: ZoneInfo | None = None,
                 jitter: float = 0.0, rng: random.Random | None = None):
        self.interval, self.windows, self.every, self.tz = interval, tuple(windows), every, tz
        self.jitter, self.rng = jitter, rng or random.Random()

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        planned = next_poll(previous_fire_time, now, interval=self.interval, windows=self.windows, every=self.every,
                            tz=self.tz)
        if previous_fire_time is None or not self.jitter:
            return planned
        gap = (planned - previous_fire_time).total_seconds()
        return planned + timedelta(seconds=self.rng.uniform(0, self.jitter * gap))

    def __str__(self) -> str:
        windows = ", ".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in self.windows)
        return f"every {self.interval} s" + (f", every {self.every} s in {windows}" if windows else "")
