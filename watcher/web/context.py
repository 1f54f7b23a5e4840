"""What the plugin's pages need from watcher: the configuration and the archive, per Datasette instance."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from store import Store
from watcher.config import Config
from watcher.web.words import Words

T = TypeVar("T")
EDITOR_ROLE = "editor"
_CONTEXTS: weakref.WeakKeyDictionary[Any, WebContext] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class WebContext:
    config: Config
    database: Path
    editors: tuple[str, ...] = ()

    async def run(self, work: Callable[[Store], T]) -> T:
        """Run ``work`` on a Store of its own in a worker thread (a SQLite connection stays in its thread)."""
        def call() -> T:
            store = Store(self.database, migrate=False)
            try:
                return work(store)
            finally:
                store.close()

        return await asyncio.to_thread(call)

    @cached_property
    def themes(self) -> list[tuple[str, str]]:
        """(id, label in the archive's language) of each theme of the taxonomy, in its order."""
        from classifiers.decide.themes import load_themes

        french = self.config.settings.language == "fr"
        return [(t.id, t.label_fr if french else t.label_en) for t in load_themes(self.config.settings.themes or None)]

    @cached_property
    def words(self) -> Words:
        """The pages' words, dates and labels in the archive's language (``watcher.web.words``)."""
        settings = self.config.settings
        return Words(settings.language, settings.timezone, dict(self.themes),
                     {s.name: s.label or s.publisher or s.name for s in self.config.sources})

    def base_url(self, datasette: Any, request: Any) -> str:
        """The public address of the archive (``[settings] public_url``), else the address the server listens on;
        never the request's ``Host`` header, which the client chooses (a feed's ids must not follow it)."""
        configured = self.config.settings.public_url.rstrip("/")
        if configured:
            return configured
        host, port = request.scope.get("server") or ("localhost", None)
        host = f"[{host}]" if ":" in str(host) else str(host)
        scheme = request.scope.get("scheme") or "http"
        return f"{scheme}://{host}" + (f":{port}" if port and (scheme, port) not in (("http", 80), ("https", 443)) else "")


def attach(datasette: Any, context: WebContext) -> None:
    _CONTEXTS[datasette] = context


def attached(datasette: Any) -> bool:
    """Whether ``datasette`` was built by ``build_datasette``: the plugin is registered process-wide, and leaves
    any other Datasette of the process (a test's, another tool's) as Datasette makes it."""
    return datasette in _CONTEXTS


def context_of(datasette: Any) -> WebContext:
    try:
        return _CONTEXTS[datasette]
    except KeyError:
        raise RuntimeError("this Datasette was not built by watcher.web.build_datasette") from None


def is_editor(actor: Any) -> bool:
    return isinstance(actor, dict) and actor.get("role") == EDITOR_ROLE
