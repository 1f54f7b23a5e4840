"""The one clock: every command and job asks ``now_utc()``; everything below them takes ``now`` as an argument."""

from __future__ import annotations

from datetime import UTC, datetime


def now_utc() -> datetime:
    """The current time in UTC, to the second (what the store records)."""
    return datetime.now(UTC).replace(microsecond=0)


def parse_now(text: str) -> datetime:
    """An ISO 8601 time (UTC when it has no offset); ``ValueError`` when it is not one."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
