"""The registry of source kinds: sources are data (sources.toml), kinds are code (one module each)."""

from __future__ import annotations

from watcher.config.sources import SourceConfig
from watcher.sources.base import SourceKind
from watcher.sources.dila_cnil import DilaCnilSource
from watcher.sources.dila_jorf import DilaJorfSource
from watcher.sources.feed import FeedSource
from watcher.sources.html_listing import HtmlListingSource
from watcher.sources.wordpress import WordPressSource

KINDS: dict[str, type[SourceKind]] = {
    cls.kind: cls for cls in (FeedSource, WordPressSource, HtmlListingSource, DilaJorfSource, DilaCnilSource)
}


def build(config: SourceConfig) -> SourceKind:
    return KINDS[config.kind](config)


__all__ = ["KINDS", "SourceKind", "build"]
