"""The archive on the web: Datasette with watcher's plugin (``watcher.web.plugin``), templates and metadata.

``build_datasette`` is the one place a Datasette for the archive is made (``watcher serve``, the tests, the
benchmark); ``serve`` runs it in this process with uvicorn, so stopping ``watcher serve`` stops the server: no
child process is left behind.

Editors log in at ``/-/login`` (``watcher.web.door``: throttled, server-side sessions that expire and that logout
revokes). Each editor NAME's password hash is read from the environment variable ``WATCHER_PASSWORD_HASH_<NAME>``
(upper case; make one with ``datasette hash-password``); it is never written in a file, and the editors' names are
not in the metadata Datasette publishes (``/-/metadata.json``). Without it, that editor cannot log in.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from datasette.app import Datasette
from datasette.plugins import pm

from store import METADATA_PATH
from watcher.config import Config
from watcher.web.context import WebContext, attach
from watcher.web.door import password_variable
from watcher.web.facets import ArchiveDatabase

__all__ = ["build_datasette", "metadata", "password_variable", "register_plugin", "serve"]

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
PLUGIN_NAME = "watcher-web"
SEARCH_PLUGIN_NAME = "watcher-search"
SETTINGS = {"facet_time_limit_ms": 1000, "sql_time_limit_ms": 3000, "default_page_size": 50, "suggest_facets": False}


def register_plugin() -> None:
    """Register the plugin with Datasette's plugin manager once per process (explicitly, not by entry point)."""
    from watcher.web import plugin, search_plugin

    if pm.get_plugin(PLUGIN_NAME) is None:
        pm.register(plugin, name=PLUGIN_NAME)
    if pm.get_plugin(SEARCH_PLUGIN_NAME) is None:  # ?_search= takes any text (watcher.search.fulltext)
        pm.register(search_plugin, name=SEARCH_PLUGIN_NAME)


def metadata() -> dict[str, Any]:
    """The archive's metadata as Datasette publishes it: tables, descriptions, facets; no account."""
    data: dict[str, Any] = json.loads(METADATA_PATH.read_text(encoding="utf-8"))
    return data


def build_datasette(config: Config, *, database: Path | None = None, editors: Sequence[str] = ("editor",),
                    secret: str | None = None) -> Datasette:
    """A Datasette on the archive (named ``watcher`` whatever its file is called) with watcher's plugin."""
    register_plugin()
    path = Path(database or config.database)
    datasette = Datasette(metadata=metadata(), template_dir=str(TEMPLATES), settings=SETTINGS,
                          static_mounts=[("-/watcher-static", str(STATIC))], secret=secret)
    datasette.remove_database("_memory")
    # counts and ranked search answered as watcher.web.facets says
    datasette.add_database(ArchiveDatabase(datasette, path=str(path), is_mutable=True), name="watcher")
    attach(datasette, WebContext(config=config, database=path, editors=tuple(editors)))
    return datasette


def serve(datasette: Datasette, *, host: str, port: int, ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM), in this process; ``ready(url)`` once the socket listens."""
    import uvicorn

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(datasette.invoke_startup())
    finally:
        loop.close()

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and ready is not None:
                bound = self.servers[0].sockets[0].getsockname()[1] if self.servers else port  # port 0: the OS chose
                ready(f"http://{host}:{bound}/")

    config = uvicorn.Config(datasette.app(), host=host, port=port, log_level="warning", lifespan="on", workers=1)
    Server(config).run()
