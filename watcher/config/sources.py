"""The typed, frozen view of one ``[[source]]`` table."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    "expect_new_within": "longest time without a new item before the admin is told the source went silent, e.g. "
                         "'50h' for the JO, published six days a week (default: never)",
}

_INTERVAL = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> int:
    """'30m' -> 1800 seconds."""
    match = _INTERVAL.match(str(text).strip())
    if not match:
        raise ValueError(f"interval must look like '30m', '6h' or '1d', not {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


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
    expect_new_within: int = 0  # seconds; 0 = no expected cadence
    options: Mapping[str, Any] = field(default_factory=dict)  # the kind's own keys, validated by the kind

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)
