"""Legal identity commands: ``acts`` (the acts a text names, with their official links) and ``versions`` (what
changed between the versions of an archived item, as a readable diff)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from watcher.cli.common import EXIT_FAILED, command, open_app, open_archive
from watcher.util.errors import ConfigError


def _archive_lookup():  # type: ignore[no-untyped-def]
    """The archive's resolver of acts to their archived JO / CNIL text, when there is an archive (``acts`` works
    without one: it then links to the official searches)."""
    try:
        app = open_app()
        path = app.config.database
    except ConfigError:
        if Path(open_app().config_path or "sources.toml").exists():
            raise
        return None
    if not path.exists():
        return None
    store = app.reader
    if "act_mentions" not in store.db.table_names():
        return None
    return store.act_url


@command()
@click.argument("text", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per act: scheme, value, url, search")
def acts(text: tuple[str, ...], as_json: bool) -> None:
    """The acts TEXT names (décret n° 2025-895, arrêté du 4 février 2026, règlement (UE) 2016/679, a NOR...), one
    per line: scheme, value, official URL. The link is direct where the act's id is known or derivable (JORFTEXT,
    CNILTEXT, ELI, CELEX, an EU act's number; a NOR or a number resolved through the JO texts of the archive,
    when there is one), else the official site's search, marked "(search)". TEXT "-" reads standard input.
    Exit status 1 when the text names no act."""
    from watcher.legal.acts import acts_in

    words = " ".join(text)
    if words == "-":
        words = sys.stdin.read()
    found = acts_in(words, _archive_lookup())
    for act in found:
        if as_json:
            click.echo(json.dumps(act.as_json(), ensure_ascii=False))
        else:
            url = act.url or "-"
            click.echo(f"{act.scheme}\t{act.value}\t{url}{'  (search)' if act.search else ''}")
    if not found:
        click.echo("no act named in this text", err=True)
        sys.exit(EXIT_FAILED)


@command()
@click.argument("item_id")
@click.option("--context", default=3, show_default=True, help="lines of context around each change")
def versions(item_id: str, context: int) -> None:
    """What changed between the versions of ITEM (a rectified or re-delivered JO text, an edited post), as a
    unified diff of title, summary, text and kind, oldest first. Exit status 1 when the item has one version
    only, 2 when it is not in the archive."""
    from watcher.legal.versions import diff_versions

    store = open_archive().reader
    if store.get_item(item_id) is None:
        raise ConfigError(f"no item {item_id!r} in the archive (ids as `watcher search` prints them)")
    history = store.versions(item_id)
    diffs = diff_versions(history, context=context)
    for diff in diffs:
        click.echo(diff.header)
        click.echo(diff.text, nl=False)
    if not diffs:
        click.echo(f"{item_id}: one version only ({len(history)} stored), nothing changed", err=True)
        sys.exit(EXIT_FAILED)


COMMANDS = (acts, versions)
