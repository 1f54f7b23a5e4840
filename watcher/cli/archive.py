"""Archive commands: ``search`` the archive, ``serve`` it in Datasette, regenerate the configuration ``docs``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from watcher.cli.common import EXIT_FAILED, command, open_archive


@command()
@click.argument("query")
@click.option("--limit", default=20, show_default=True)
def search(query: str, limit: int) -> None:
    """Search the archive for any text: words (accents ignored), "a phrase", or an act (décret 2025-895,
    2016/679, a NOR), which also finds the items citing it. One line per item: id, legal date, source, themes,
    title. Exit status 1 when nothing is found."""
    from watcher import search as searching

    rows = searching.search(open_archive().reader, query, limit=limit)
    for row in rows:
        click.echo(searching.result_line(row))
    if not rows:
        click.echo(f"no result for {query!r}", err=True)
        sys.exit(EXIT_FAILED)
    if len(rows) == limit:
        click.echo(f"(first {limit} results; --limit N for more)", err=True)


@command()
@click.option("--port", default=8001, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def serve(port: int, host: str) -> None:
    """Browse and search the archive in Datasette (facets by theme, source, type of act, date)."""
    import subprocess

    from store import METADATA_PATH

    app = open_archive()
    database = app.config.database
    app.store.migrate()
    plugins = Path(__file__).parents[1] / "datasette_plugins"  # watcher_search: ?_search= takes any text
    cmd = [sys.executable, "-m", "datasette", "serve", str(database), "--metadata", str(METADATA_PATH),
           "--plugins-dir", str(plugins), "--host", host, "--port", str(port), "--setting", "facet_time_limit_ms",
           "1000"]
    click.echo(" ".join(cmd), err=True)
    subprocess.run(cmd, check=False)


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
