"""What every channel is: one class with declared settings and ``send(message)`` raising ``NotifyError``.

A channel kind declares the keys a ``[channel.NAME]`` table accepts (``required`` / ``optional``, with help) and
its secrets (given in the table as ``<secret>_env = "VARIABLE"``). ``send`` returns nothing on success and raises
``NotifyError(permanent=..., retry_after=..., down=...)`` otherwise. ``dedups_by_message_id`` says whether the
receiving end drops a second copy carrying the same Message-ID (e-mail); the crash recovery relies on it.

The sender calls ``deliver(message, commit)``: the channel calls ``commit()`` (which records the message as
'sending' in the ledger) at the last moment before the message can no longer be taken back, and gives up without
sending when it returns False. By default that moment is before ``send``; e-mail does it just before the final
``.`` of DATA. ``abort()`` may be called from another thread when a send outlives its deadline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from watcher.config.alerts import ChannelConfig


@dataclass(frozen=True)
class Message:
    """One rendered delivery, in every form a channel may want."""

    key: str
    subject: str
    text: str
    html: str
    slack: Mapping[str, Any]
    person: str
    email: str = ""
    slack_target: str = ""
    unsubscribe: str = ""
    date: datetime | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class Channel(ABC):
    kind: ClassVar[str]
    required: ClassVar[dict[str, str]] = {}
    optional: ClassVar[dict[str, str]] = {}
    secrets: ClassVar[dict[str, str]] = {}  # secret -> help; set in the table as <secret>_env = "VARIABLE"
    required_secrets: ClassVar[tuple[str, ...]] = ()
    dedups_by_message_id: ClassVar[bool] = False
    needs: ClassVar[frozenset[str]] = frozenset({"text", "html"})  # forms of the message it sends: text html slack

    def __init__(self, config: ChannelConfig, secrets: Mapping[str, str]):
        self.config = config
        self.name = config.name
        self._secrets = dict(secrets)

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> tuple[str, str] | None:
        """(key, problem) for the first bad option value, or None."""
        return None

    def option(self, key: str, default: Any = None) -> Any:
        return self.config.options.get(key, default)

    def message_id(self, key: str) -> str:
        return f"<watcher.{key}@watcher.invalid>"

    @abstractmethod
    def send(self, message: Message) -> None:
        """Deliver one message or raise ``NotifyError``."""

    def deliver(self, message: Message, commit: Callable[[], bool]) -> bool:
        """Send once ``commit()`` agreed (True), or nothing (False); raise ``NotifyError`` on failure."""
        if not commit():
            return False
        self.send(message)
        return True

    def abort(self) -> None:  # noqa: B027 - optional hook: channels without a socket to cut let the send finish
        """Called from another thread when a send outlived its deadline: make it fail now, if the channel can."""

    def unsubscribe_for(self, email: str) -> str:  # noqa: B027 - optional: most channels have none
        """The unsubscribe link shown in a message to ``email`` ('' if the channel has none)."""
        return ""

    def close(self) -> None:  # noqa: B027 - optional hook: most channels keep nothing open
        """Release connections kept between sends."""

    def describe(self) -> str:
        """One line for people, with every secret masked."""
        masked = ", ".join(f"{k}={mask(v)}" for k, v in sorted(self._secrets.items()))
        opts = ", ".join(f"{k}={v}" for k, v in sorted(self.config.options.items()))
        return f"{self.name} ({self.kind}) {opts}{'; ' if opts and masked else ''}{masked}"


def mask(value: str) -> str:
    """A secret fit for printing: ``https://hooks.slack.com/services/T0…/****``; a password is ``****``."""
    parts = urlsplit(value)
    if not parts.scheme or not (parts.netloc or parts.path):
        return "****"
    host = parts.hostname or ""
    user = "****@" if parts.username or parts.password else ""
    segments = [s for s in parts.path.split("/") if s]
    if parts.netloc and len(segments) >= 2:
        return f"{parts.scheme}://{user}{host}/{segments[0]}/{segments[1][:2]}…/****"
    if parts.netloc:
        return f"{parts.scheme}://{user}{host}/****"
    return f"{parts.scheme}://****"
