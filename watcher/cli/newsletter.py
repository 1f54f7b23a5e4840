"""Newsletter commands, ``watcher newsletter ...``: the editor's steps from the command line, for scripting (the
web page is ``watcher serve`` -> /-/newsletter). A thin client of ``watcher.newsletter.service.Newsletter``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from watcher.cli.common import EXIT_FAILED, Command, config_option, open_app, open_archive
from watcher.legal.normalize import iso
from watcher.util.clock import now_utc as _now

if TYPE_CHECKING:
    from watcher.newsletter.service import Newsletter


def _newsletter(*, reading: bool = False) -> Newsletter:
    """The newsletter of this invocation's App (the notification stack is imported only now). A command that
    reads (``reading``) needs an archive and never creates one: without it, it says where it looked (exit 2)."""
    from watcher.newsletter.service import Newsletter

    app = open_archive() if reading else open_app()
    return Newsletter(app.store, app.config)


def _latest(letter: Newsletter, draft_id: int | None) -> int:
    if draft_id is not None:
        return draft_id
    drafts = letter.store.drafts(limit=1)
    if not drafts:
        raise click.ClickException("no draft yet: run `watcher newsletter draft`")
    return int(drafts[0]["id"])


@click.group("newsletter")
@config_option
def newsletter() -> None:
    """The weekly newsletter: draft, show, edit, publish, send, export, subscribers."""


def _week(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An ISO week (2026-W23), else a usage error (exit 2)."""
    from watcher.newsletter.build import Week
    from watcher.util.errors import WatcherError

    if value is not None:
        try:
            Week.of(value, _now(), "UTC")
        except WatcherError as exc:
            raise click.BadParameter(str(exc), param_hint="--week") from None
    return value


@newsletter.command("draft", cls=Command)
@config_option
@click.option("--week", default=None, callback=_week, help="ISO week, e.g. 2026-W23 (default: this week)")
def draft_cmd(week: str | None) -> None:
    """Build the week's draft from its tagged items (or show the existing one)."""
    from watcher.newsletter.service import kept_count

    letter = _newsletter()
    draft, created = letter.build_draft(week, _now())
    entries = letter.store.draft_entries(draft["id"])
    click.echo(f"{'built' if created else 'existing'} draft {draft['id']} for {draft['week']} (version "
               f"{draft['version']}): {kept_count(entries)} shortlisted of {len(entries)} item(s)")
    for note in draft["health_notes"]:
        click.echo(f"  source health (editor only): {note}")


@newsletter.command("show", cls=Command)
@config_option
@click.argument("draft_id", type=int, required=False)
@click.option("--preview", type=click.Choice(["markdown", "html"]), default=None,
              help="print the issue as it will be e-mailed instead of the editor's list")
def show_cmd(draft_id: int | None, preview: str | None) -> None:
    """The draft's entries in order (+ shortlisted, - dropped), or its preview."""
    letter = _newsletter(reading=True)
    draft, entries = letter.draft(_latest(letter, draft_id))
    if preview:
        rendered = letter.preview(draft["id"])
        click.echo(rendered.markdown if preview == "markdown" else rendered.html)
        return
    click.echo(f"draft {draft['id']} {draft['week']} [{draft['state']}] version {draft['version']}: {draft['title']}")
    theme = None
    for entry in entries:
        if entry["theme"] != theme:
            theme = entry["theme"]
            click.echo(f"  {theme}")
        mark = "+" if entry["kept"] else "-"
        click.echo(f"    {mark} {entry['item_id']:<34} {(entry['nature'] or '')[:14]:<14} {entry['title'][:70]}")
        if entry["abstract"]:
            click.echo(f"        {entry['abstract'][:100]}")
    for note in draft["health_notes"]:
        click.echo(f"  source health (editor only): {note}")


@newsletter.command("edit", cls=Command)
@config_option
@click.argument("draft_id", type=int)
@click.option("--drop", "drops", multiple=True, help="item id to drop (repeatable)")
@click.option("--keep", "keeps", multiple=True, help="item id to shortlist again (repeatable)")
@click.option("--up", "ups", multiple=True, help="item id to move up within its theme (repeatable)")
@click.option("--down", "downs", multiple=True, help="item id to move down within its theme (repeatable)")
@click.option("--abstract", "abstracts", nargs=2, multiple=True, metavar="ITEM TEXT", help="an item's abstract")
@click.option("--intro", default=None, help="the introduction")
@click.option("--editor", default="cli", show_default=True, help="name recorded with the change")
def edit_cmd(draft_id: int, drops: tuple[str, ...], keeps: tuple[str, ...], ups: tuple[str, ...],
             downs: tuple[str, ...], abstracts: tuple[tuple[str, str], ...], intro: str | None, editor: str) -> None:
    """Change a draft; each change is applied on the version just read (a concurrent edit makes it fail)."""
    letter = _newsletter()
    def current() -> int:
        return int(letter.draft(draft_id)[0]["version"])

    for item in drops + keeps:
        letter.keep(draft_id, current(), item, item in keeps, editor=editor, now=_now())
    for item in ups + downs:
        letter.move(draft_id, current(), item, -1 if item in ups else 1, editor=editor, now=_now())
    if abstracts or intro is not None:
        letter.edit(draft_id, current(), editor=editor, now=_now(), introduction=intro,
                    abstracts=dict(abstracts))
    draft = letter.draft(draft_id)[0]
    click.echo(f"draft {draft_id} now at version {draft['version']}")


@newsletter.command("publish", cls=Command)
@config_option
@click.argument("draft_id", type=int)
@click.option("--no-send", is_flag=True, help="archive and queue, but do not send now")
@click.option("--editor", default="cli", show_default=True)
def publish_cmd(draft_id: int, no_send: bool, editor: str) -> None:
    """Publish the draft: archive it, then send it to the list through the delivery ledger."""
    letter = _newsletter()
    draft = letter.draft(draft_id)[0]
    if draft["state"] != "draft":  # nothing to do: say when, exit 0
        click.echo(f"issue {draft_id} was already published on {draft['published_at']} (by the editor recorded "
                   f"there: {draft['updated_by'] or '-'}); nothing to do. `watcher newsletter send {draft_id}` sends "
                   "what was not sent yet")
        return
    letter.sync_subscribers(_now())
    queued = letter.publish(draft_id, letter.draft(draft_id)[0]["version"], editor=editor, now=_now())
    click.echo(f"issue {draft_id} published and archived; {queued} delivery(ies) queued")
    if letter.settings.channel and not no_send:
        _report(letter, draft_id)


@newsletter.command("send", cls=Command)
@config_option
@click.argument("issue_id", type=int)
def send_cmd(issue_id: int) -> None:
    """Send (or retry) the deliveries of a published issue; an address already served is never sent again."""
    letter = _newsletter()
    letter.queue(issue_id, _now())
    _report(letter, issue_id)


def _report(letter: Newsletter, issue_id: int) -> None:
    report = letter.send(issue_id, _now())
    click.echo(f"sent {len(report.sent)}, already sent {report.already}, to retry {len(report.failed)}, "
               f"held {len(report.held)}")
    for address, error in report.failed + report.held:
        click.echo(f"  {address}: {error}", err=True)
    if report.failed or report.held:
        sys.exit(EXIT_FAILED)  # done, but a delivery is to retry or held for a person (see the README's table)


@newsletter.command("export", cls=Command)
@config_option
@click.argument("draft_id", type=int)
@click.option("--out", "folder", type=click.Path(file_okay=False), default=".", show_default=True)
def export_cmd(draft_id: int, folder: str) -> None:
    """Write the issue (published) or the draft's preview as HTML and Markdown for another mailing tool."""
    from watcher.newsletter.service import export, published_rendering

    letter = _newsletter(reading=True)
    issue = letter.store.issue(draft_id)
    rendered = published_rendering(issue) if issue else letter.preview(draft_id, unsubscribe_url="")
    draft = letter.draft(draft_id)[0]
    for path in export(rendered, Path(folder), f"newsletter-{draft['week']}"):
        click.echo(f"wrote {path}")


@newsletter.command("subscribers", cls=Command)
@config_option
@click.option("--import", "csv_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="add the addresses of a CSV file (columns: email, name)")
@click.option("--unsubscribe", "address", default=None, help="take this address off the list")
def subscribers_cmd(csv_file: str | None, address: str | None) -> None:
    """The newsletter list (the config's addresses are added first)."""
    letter = _newsletter(reading=True)
    letter.sync_subscribers(_now())
    if csv_file:
        added, rejected = letter.import_csv(Path(csv_file), _now())
        click.echo(f"added {added} address(es)" + (f"; rejected: {', '.join(rejected)}" if rejected else ""))
    if address:
        done = letter.store.unsubscribe(now=iso(_now()) or "", email=address.lower())
        click.echo(f"{address}: " + ("unsubscribed" if done else "not an active subscriber"))
    for row in letter.store.subscribers(active_only=False):
        click.echo(f"  {row['state']:<13} {row['email']:<40} {row['name'] or ''}")


COMMANDS = (newsletter,)
