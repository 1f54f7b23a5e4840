"""Archive commands: ``search`` the archive, ``serve`` it in Datasette (with the editors' newsletter pages),
regenerate the configuration ``docs``."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from watcher.cli.common import EXIT_FAILED, command, open_archive
from watcher.util.errors import ConfigError


@command()
@click.argument("query")
@click.option("--limit", default=20, show_default=True)
@click.option("--similar", is_flag=True,
              help="search by meaning, in any language, with the embedding model (the closest items first)")
def search(query: str, limit: int, similar: bool) -> None:
    """Search the archive for any text: words (accents ignored), "a phrase", or an act (décret 2025-895,
    2016/679, a NOR), which also finds the items citing it. With --similar: by meaning, in any language.
    One line per item: id, legal date, source, themes, title (--similar: the cosine first). Exit status 1 when
    nothing is found."""
    from watcher.search import fulltext as searching

    if similar:
        found = _search_similar(query, limit)
    else:
        rows = searching.search(open_archive().reader, query, limit=limit)
        for row in rows:
            click.echo(searching.result_line(row))
        found = len(rows)
    if not found:
        click.echo(f"no result for {query!r}", err=True)
        sys.exit(EXIT_FAILED)
    if found == limit:
        click.echo(f"(first {limit} results; --limit N for more)", err=True)


def _search_similar(query: str, limit: int) -> int:
    """Embed the archived items that have no embedding yet (once), then the query; print the nearest items and
    return how many. The model is the one ``watcher serve`` keeps loaded for this archive when it runs (a query
    then costs milliseconds), else loaded here (seconds)."""
    from watcher.search import fulltext as searching
    from watcher.search.model_service import connect
    from watcher.search.similar import embed_missing, search_similar

    app = open_archive()
    embedder: Any = connect(app.config.database)
    if embedder is None:
        embedder = _load_embedder(app)
    todo = app.store.count_items() - app.store.vectors.count()
    if todo > 0:
        with app.store.writer_lock(), click.progressbar(length=todo, label="embedding archived items",
                                                        file=sys.stderr) as bar:
            embed_missing(app.store, embedder, progress=bar.update)
    hits = search_similar(app.store, embedder, query, limit=limit)
    for hit in hits:
        click.echo(f"{hit.similarity:.3f}\t{searching.result_line(hit.item)}")
    return len(hits)


def _load_embedder(app: Any) -> Any:
    from classifiers.decide.hybrid import head_path, model_embedder
    from watcher.app import model_settings

    start = time.perf_counter()
    embedder = model_embedder(model_settings(app.config.settings), head_path(app.config.database))
    click.echo(f"(model loaded in {time.perf_counter() - start:.1f} s; `watcher serve` keeps it loaded: a query "
               "then answers in milliseconds)", err=True)
    return embedder


@command()
@click.option("--port", default=8001, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--editor", "editors", multiple=True, default=("editor",), show_default=True,
              help="an editor's login name (repeatable); the password hash is read from $WATCHER_PASSWORD_HASH_<NAME>")
@click.option("--model/--no-model", "keep_model", default=True, show_default=True,
              help="keep the embedding model loaded for `watcher search --similar` on this machine (a local socket)")
def serve(port: int, host: str, editors: tuple[str, ...], keep_model: bool) -> None:
    """Browse and search the archive in Datasette; editors prepare the newsletter at /-/newsletter.

    Runs in this process: Ctrl-C (or SIGTERM) stops the server, nothing is left running. The embedding model is
    loaded once beside it (unless --no-model or `model = "none"`), so that `watcher search --similar` answers at
    once."""
    from watcher.web import build_datasette, password_variable
    from watcher.web import serve as run_server

    app = open_archive()
    _port_free(host, port)
    app.store.migrate()
    service = _model_service(app) if keep_model else None
    datasette = build_datasette(app.config, editors=editors)
    accounts = ", ".join(f"{e} (password hash in ${password_variable(e)})" for e in editors)

    def ready(url: str) -> None:
        click.echo(f"archive listening on {url}  editors log in at {url}-/login: {accounts}", err=True)

    try:
        run_server(datasette, host=host, port=port, ready=ready)
    except KeyboardInterrupt:  # uvicorn shut down cleanly, then passed Ctrl-C on
        click.echo("archive server stopped", err=True)
    finally:
        if service is not None:
            service.close()


SERVICE_THREADS = 1


def _model_service(app: Any) -> Any:
    """The embedding model of this archive, loading in a thread and served on its local socket; None when the
    configuration has no model or another ``watcher serve`` already serves it."""
    from classifiers.decide.hybrid import RULES_ONLY, head_path, model_embedder
    from watcher.app import model_settings
    from watcher.search.model_service import ModelService, socket_path

    settings = model_settings(app.config.settings)
    if settings.model == RULES_ONLY:
        return None
    database = app.config.database
    # one thread: a query is one short text, and on a busy machine a second thread makes every layer wait for
    # whichever of the two the scheduler has put aside
    service = ModelService(socket_path(database), lambda: model_embedder(settings, head_path(database),
                                                                         threads=SERVICE_THREADS))
    if not service.start():
        click.echo(f"the model of this archive is already served at {service.path}", err=True)
        return None
    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum: int, frame: Any) -> None:
        # uvicorn stops on SIGTERM, then raises it again to end the process as SIGTERM does: the socket file is
        # removed first, then the signal goes on as before
        service.close()
        signal.signal(signal.SIGTERM, previous)
        signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    return service


def _port_free(host: str, port: int) -> None:
    """A port another program listens on is a usage error (exit 2), said before anything starts."""
    import socket

    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): another program uses it; choose "
                              "another with --port") from None


@command()
@click.option("--check", is_flag=True, help="exit 1 if docs/configuration.md is not up to date")
def docs(check: bool) -> None:
    """Regenerate docs/configuration.md from the settings and source-kind tables."""
    from watcher.docs import configuration_markdown

    path = Path("docs/configuration.md")
    text = configuration_markdown()
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        sys.exit(0 if current == text else EXIT_FAILED)
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")


COMMANDS = (search, serve, docs)
