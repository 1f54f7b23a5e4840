"""The ``[newsletter]`` table of sources.toml, read once into a frozen object.

```toml
[newsletter]
title = "Lettre de veille santé & données"
channel = "smtp"                 # a [channel.NAME] of kind email; without it, issues are exported, not sent
subscribers = ["Alice Martin <alice@cabinet.example>", "bruno@cabinet.example"]
min_score = 0.5
shortlist = 8
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watcher.config import Config
from watcher.util.errors import ConfigError

NEWSLETTER_KEYS: dict[str, str] = {
    "title": "title of every issue (default 'Lettre de veille juridique')",
    "channel": "name of an e-mail [channel.NAME] the issues are sent through (default: none, export only)",
    "subscribers": "addresses of the list, 'Name <address>' or 'address' (more with `watcher newsletter import`)",
    "min_score": "lowest theme confidence for an item to enter a draft, 0 to 1 (default 0.5)",
    "shortlist": "items of each theme shortlisted in a new draft; the others start dropped (default 8)",
    "lang": "language of the issues: fr or en (default fr)",
}
_ADDRESS = re.compile(r"^\s*(?:(?P<name>[^<>]*?)\s*<(?P<angle>[^<>\s]+@[^<>\s]+)>|(?P<bare>[^<>\s]+@[^<>\s]+))\s*$")


@dataclass(frozen=True)
class NewsletterConfig:
    title: str = "Lettre de veille juridique"
    channel: str = ""
    subscribers: tuple[tuple[str, str], ...] = ()  # (name, address)
    min_score: float = 0.5
    shortlist: int = 8
    lang: str = "fr"


def parse_address(text: str) -> tuple[str, str] | None:
    """('Name', 'address') from 'Name <address>' or 'address'; None if it is not an address."""
    match = _ADDRESS.match(text)
    if not match:
        return None
    return (match["name"] or "").strip(), (match["angle"] or match["bare"]).lower()


def load_newsletter(config: Config) -> NewsletterConfig:
    file = str(config.path)
    table: Mapping[str, Any] = config.raw.get("newsletter", {})
    if not isinstance(table, Mapping):
        raise ConfigError("must be a table", file=file, table="[newsletter]")
    unknown = sorted(set(table) - set(NEWSLETTER_KEYS))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(NEWSLETTER_KEYS)}",
                          file=file, table="[newsletter]", key=unknown[0])

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, file=file, table="[newsletter]", key=key)

    subscribers = []
    for entry in table.get("subscribers", []):
        parsed = parse_address(entry) if isinstance(entry, str) else None
        if parsed is None:
            raise fail("subscribers", f"not an e-mail address: {entry!r}")
        subscribers.append(parsed)
    min_score, shortlist = table.get("min_score", 0.5), table.get("shortlist", 8)
    if not isinstance(min_score, (int, float)) or not 0 <= min_score <= 1:
        raise fail("min_score", "must be a number from 0 to 1")
    if not isinstance(shortlist, int) or shortlist < 1:
        raise fail("shortlist", "must be a whole number of at least 1")
    if table.get("lang", "fr") not in ("fr", "en"):
        raise fail("lang", "must be fr or en")
    return NewsletterConfig(title=str(table.get("title", NewsletterConfig.title)), channel=str(table.get("channel", "")),
                            subscribers=tuple(subscribers), min_score=float(min_score), shortlist=shortlist,
                            lang=str(table.get("lang", "fr")))
