"""The typed, frozen view of one ``[[source]]`` table."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any, Protocol

from watcher.util.errors import ConfigError

# keys every source accepts, whatever its kind: (name, help)
COMMON_KEYS: dict[str, str] = {
    "name": "unique name of the source (used in logs, the store and the CLI)",
    "kind": "kind of source: feed, wordpress, html, dila-jorf, dila-cnil",
    "url": "the URL to poll (a feed, a listing page, a DILA open-data folder)",
    "interval": "how often to poll: '30m', '6h', '1d' (default 6h)",
    "lang": "language of the items: fr or en (default fr)",
    "enabled": "false to keep the source declared but not polled (default true)",
    "label": "human name shown in alerts and in the archive",
    "publisher": "organisation publishing the source (CNIL, ANSM, DILA, a law firm...)",
    "default_theme": "theme its items lean to (a prior the rules add, and why its untagged items stay in scope)",
    "legal": "true for an authority, official journal or law firm: its items have a legal angle (default false)",
    "expect_new_within": "longest time without a new item before the admin is told the source went silent, e.g. "
                         "'50h' for the JO, published six days a week (default: never)",
    "windows": "publication windows, polled more often by the daemon: a list of 'HH:MM-HH:MM' in the settings "
               "timezone, e.g. ['00:15-01:45'] (default: none)",
    "window_every": "how often the daemon polls inside a window (default '10m')",
}

_INTERVAL = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> int:
    """'30m' -> 1800 seconds."""
    match = _INTERVAL.match(str(text).strip())
    if not match:
        raise ValueError(f"interval must look like '30m', '6h' or '1d', not {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


_WINDOW = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Window:
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # crosses midnight


def parse_window(text: str) -> Window:
    """``"00:15-01:45"`` -> Window(00:15, 01:45); ValueError otherwise."""
    match = _WINDOW.match(str(text).strip())
    if not match:
        raise ValueError(f"a window looks like '00:15-01:45' (HH:MM-HH:MM), not {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return Window(time(h1, m1), time(h2, m2))



def parse_windows(value: Any) -> tuple[Window, ...]:
    """A TOML list of 'HH:MM-HH:MM' strings; ValueError otherwise."""
    if not isinstance(value, list):
        raise ValueError("windows must be a list such as ['00:15-01:45', '20:45-22:30']")
    return tuple(parse_window(v) for v in value)


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: str
    url: str
    interval: int = 6 * 3600
    lang: str = "fr"
    enabled: bool = True
    label: str = ""
    publisher: str = ""
    default_theme: str = ""
    legal: bool = False
    expect_new_within: int = 0  # seconds; 0 = no expected cadence
    windows: tuple[Window, ...] = ()  # publication windows (local time of the settings' timezone)
    window_every: int = 600
    options: Mapping[str, Any] = field(default_factory=dict)  # the kind's own keys, validated by the kind
    table: str = field(default="", compare=False)  # where it is declared, for error messages

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


class KindSpec(Protocol):
    """What config checks of a kind (of source: ``watcher.sources.KINDS`` values fit it; of channel: see
    ``alerts.ChannelKindSpec``): its name and the keys it requires and accepts."""

    @property
    def kind(self) -> str: ...
    @property
    def required(self) -> Mapping[str, str]: ...
    @property
    def optional(self) -> Mapping[str, str]: ...


def check_source_kind(source: SourceConfig, kinds: Mapping[str, KindSpec], *, file: str) -> None:
    """The kind is known, and the source has every key the kind requires and no key it does not accept."""
    where = source.table or f"[[source]] ({source.name})"
    kind = kinds.get(source.kind)
    if kind is None:
        raise ConfigError(f"unknown kind {source.kind!r}; known kinds: {', '.join(sorted(kinds))}",
                          file=file, table=where, key="kind")
    allowed = set(kind.required) | set(kind.optional)
    for key in source.options:
        if key not in allowed:
            hint = f"; {kind.kind} accepts: {', '.join(sorted(allowed))}" if allowed else ""
            raise ConfigError(f"unknown key for kind {kind.kind}{hint}; every source accepts: "
                              f"{', '.join(COMMON_KEYS)}", file=file, table=where, key=key)
    for key in kind.required:
        if key not in source.options:
            raise ConfigError(f"required by kind {kind.kind}", file=file, table=where, key=key)
