"""When the daemon polls: at the interval, every few minutes inside the DILA publication windows (Europe/Paris),
never past a window's start, with bounded jitter. Time is passed in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from watcher.daemon.polling import PollTrigger, Window, next_poll, parse_window

PARIS = ZoneInfo("Europe/Paris")
JORF = (parse_window("00:15-01:45"), parse_window("20:45-22:30"))  # the two daily deltas, SOURCES.md
HOUR, TEN_MIN = 3600, 600


def _next(previous: datetime, interval: int = HOUR, windows: tuple[Window, ...] = JORF) -> datetime:
    return next_poll(previous, previous, interval=interval, windows=windows, every=TEN_MIN, tz=PARIS)


@pytest.mark.parametrize(("previous", "expected", "why"), [
    (datetime(2026, 6, 16, 22, 30, tzinfo=UTC), datetime(2026, 6, 16, 22, 40, tzinfo=UTC), "00:30 Paris: inside"),
    (datetime(2026, 6, 16, 23, 40, tzinfo=UTC), datetime(2026, 6, 17, 0, 40, tzinfo=UTC), "01:40: window ends"),
    (datetime(2026, 6, 16, 17, 0, tzinfo=UTC), datetime(2026, 6, 16, 18, 0, tzinfo=UTC), "19:00: interval"),
    (datetime(2026, 6, 16, 18, 20, tzinfo=UTC), datetime(2026, 6, 16, 18, 45, tzinfo=UTC), "20:20: window opens"),
    (datetime(2026, 12, 16, 23, 20, tzinfo=UTC), datetime(2026, 12, 16, 23, 30, tzinfo=UTC), "00:20 in winter"),
])
def test_polls_follow_the_publication_windows_in_paris_time(previous: datetime, expected: datetime,
                                                            why: str) -> None:
    assert _next(previous) == expected, why


def test_a_long_interval_never_jumps_over_a_window() -> None:
    previous = datetime(2026, 6, 16, 10, 0, tzinfo=UTC)  # 12:00 Paris; interval one day
    assert _next(previous, interval=86400) == datetime(2026, 6, 16, 18, 45, tzinfo=UTC)


def test_a_window_across_midnight_and_no_window_at_all() -> None:
    late = (parse_window("23:30-00:30"),)
    assert _next(datetime(2026, 6, 16, 22, 0, tzinfo=UTC), windows=late) == datetime(2026, 6, 16, 22, 10, tzinfo=UTC)
    first = datetime(2026, 6, 16, 8, 0, tzinfo=UTC)
    assert next_poll(None, first, interval=HOUR) == first
    assert next_poll(first, first, interval=HOUR) == first + timedelta(hours=1)


def test_jitter_delays_by_at_most_its_share_of_the_gap() -> None:
    trigger = PollTrigger(HOUR, jitter=0.1, rng=random.Random(7))
    previous = datetime(2026, 6, 16, 8, 0, tzinfo=UTC)
    delays = [(trigger.get_next_fire_time(previous, previous) - previous).total_seconds() for _ in range(200)]
    assert min(delays) >= HOUR and max(delays) <= HOUR * 1.1 and len(set(delays)) > 100
    assert trigger.get_next_fire_time(None, previous) == previous  # the first poll is not delayed


@pytest.mark.parametrize("text", ["25:00-01:00", "0015-0145", "00:15", ""])
def test_a_malformed_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        parse_window(text)
