"""Dates as feeds write them: the fixed fast patterns, the complete parser behind them, and both checked against
feedparser's own date parser (``feedparser.datetimes``) on many shapes."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import pytest
from feedparser.datetimes import _parse_date
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.legal.normalize import parse_date

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ZONES = ("GMT", "UT", "UTC", "Z", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT")


def feedparser_date(text: str) -> datetime | None:
    stamp = _parse_date(text)
    return datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp else None


@pytest.mark.parametrize(("text", "expected"), [
    # the fixed patterns
    ("Wed, 19 Aug 2026 00:00:00 -0000", "2026-08-19T00:00:00+00:00"),
    ("Tue, 16 Jun 2026 16:17:46 +0200", "2026-06-16T14:17:46+00:00"),
    ("Thu, 01 Jan 04 19:48:21 GMT", "2004-01-01T19:48:21+00:00"),
    ("Thu, 01 Jan 2004 19:48 EST", "2004-01-02T00:48:00+00:00"),
    ("2004-02-28T18:14:55-08:00", "2004-02-29T02:14:55+00:00"),
    ("20040708T235658Z", "2004-07-08T23:56:58+00:00"),
    ("2026-06-12", "2026-06-11T22:00:00+00:00"),  # a bare date is midnight in Paris
    ("12 juin 2026", "2026-06-11T22:00:00+00:00"),
    ("mercredi 1er juillet 2026 à 14h30", "2026-07-01T12:30:00+00:00"),
    # partial W3C-DTF dates: the first of the month (or year), midnight in Paris like any date without a time
    ("2003-12", "2003-11-30T23:00:00+00:00"),
    ("2003", "2002-12-31T23:00:00+00:00"),
    # what the fixed patterns do not read goes to the complete parser (UTC when no zone, its rule)
    ("Sun Jan  4 16:29:06 2004", "2004-01-04T16:29:06+00:00"),  # asctime
    ("Thu, 01 Jan 2004 19:48:21 Etc/GMT", "2004-01-01T19:48:21+00:00"),
    ("Thu, 01 Jan 2004 19:48:21 GMT-01:01", "2004-01-01T20:49:21+00:00"),
    ("13 Feb, 2012", "2012-02-13T00:00:00+00:00"),
    ("Thu, 01 Jan 2004 19:48:21 ET", "2004-01-02T00:48:21+00:00"),  # US zone letters
    # malformed: refused, never midnight or a shifted hour
    ("Thu, 01 Jan 2004 1:2:3:4 GMT", None),
    ("Thu, 01 Jan 2004 19:48:21 +zz:00", None),
    ("2004-07-08T23:56:58+zz:00", None),  # feedparser reads this one as UTC, dropping the offset
    ("Thu, 31 Jun 2004 19:48:21 GMT", None),
    ("Thursday, 01-Jan-04 19:48:21 GMT", None),
    ("not a date", None),
    ("", None),
])
def test_parse_date(text: str, expected: str | None) -> None:
    found = parse_date(text)
    assert (found.isoformat() if found else None) == expected


@settings(deadline=None)  # a shared, busy machine: no per-example time limit (tests assert no timing)
@given(day=st.integers(1, 28), month=st.sampled_from(MONTHS), year=st.integers(1970, 2099),
       hour=st.integers(0, 23), minute=st.integers(0, 59), second=st.integers(0, 59),
       weekday=st.sampled_from((*DAYS, "")), zone=st.one_of(
           st.sampled_from(ZONES), st.tuples(st.sampled_from("+-"), st.integers(0, 14), st.sampled_from((0, 30, 45)))
           .map(lambda z: f"{z[0]}{z[1]:02d}{z[2]:02d}")))
def test_rfc822_dates_read_as_feedparser_reads_them(day: int, month: str, year: int, hour: int, minute: int,
                                                    second: int, weekday: str, zone: str) -> None:
    text = f"{weekday + ', ' if weekday else ''}{day:02d} {month} {year} {hour:02d}:{minute:02d}:{second:02d} {zone}"
    assert parse_date(text) == feedparser_date(text)


@settings(deadline=None)  # a shared, busy machine: no per-example time limit (tests assert no timing)
@given(moment=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30)),
       offset=st.sampled_from(("Z", "+00:00", "+02:00", "-05:00", "+05:30", "-09:30")))
def test_w3c_dates_with_a_zone_read_as_feedparser_reads_them(moment: datetime, offset: str) -> None:
    text = moment.replace(microsecond=0).isoformat() + offset
    assert parse_date(text) == feedparser_date(text)


@settings(deadline=None)  # a shared, busy machine: no per-example time limit (tests assert no timing)
@given(st.text(max_size=40))
def test_any_text_gives_a_date_or_none_never_an_error(text: str) -> None:
    found = parse_date(text)
    assert found is None or found.tzinfo is not None
