"""Archive commands: ``search`` the archive, ``serve`` it in Datasette, regenerate the configuration ``docs``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from watcher.cli.common import EXIT_FAILED, command, open_app


@command()
@click.argument("query")
@click.option("--limit", default=20, show_default=True)
def search(query: str, limit: int) -> None:
    """Full-text search of the archive (SQLite FTS5 syntax)."""
    for row in open_app().store.search(query, limit=limit):
        click.echo(f"{(row.get('published') or '')[:10]}  {row['source']:<18} {row['title'][:90]}  {row['url']}")


@command()
@click.option("--port", default=8001, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def serve(port: int, host: str) -> None:
    """Browse and search the archive in Datasette (facets by theme, source, type of act, date)."""
    import subprocess

    from store import METADATA_PATH

    app = open_app()
    database = app.config.database
    app.store.migrate()
    cmd = [sys.executable, "-m", "datasette", "serve", str(database), "--metadata", str(METADATA_PATH),
           "--host", host, "--port", str(port), "--setting", "facet_time_limit_ms", "1000"]
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
