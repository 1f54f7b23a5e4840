"""The ``watcher`` command: a thin client of the pipeline, the store and the sources."""

from __future__ import annotations

import gc
import importlib
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from watcher import __version__
from watcher.app import App
from watcher.errors import WatcherError
from watcher.pipeline import SourceReport, classify_pending, collect, due_sources, ingest
from watcher.records import item_to_row

CONFIG_HELP = "path of sources.toml (default: $WATCHER_CONFIG or ./sources.toml)"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@contextmanager
def clean_errors() -> Iterator[None]:
    """Turn watcher errors into one clean line and a non-zero exit."""
    try:
        yield
    except WatcherError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


# Commands that live beside their area (themes, alerts): imported only when one of them runs, so that
# `watcher fetch` or `watcher sources` does not load the classifier and the notification stack (~50 ms).
AREA_COMMANDS = {
    "classify": "watcher.cli_themes:classify", "label": "watcher.cli_themes:label",
    "train": "watcher.cli_themes:train", "untagged": "watcher.cli_themes:untagged",
    "deliver": "watcher.notify.cli:deliver_cmd", "digest": "watcher.notify.cli:digest_cmd",
    "notify-test": "watcher.notify.cli:notify_test_cmd", "deliveries": "watcher.notify.cli:deliveries_cmd",
    "subscribe": "watcher.notify.cli:subscribe_cmd", "subscriptions": "watcher.notify.cli:subscriptions_cmd",
    "newsletter": "watcher.newsletter.cli:newsletter",
}


class WatcherGroup(click.Group):
    """The command group: clean one-line errors, and the area commands loaded lazily (click's documented
    "lazily loading subcommands" pattern: ``list_commands`` names them, ``get_command`` imports one)."""

    def invoke(self, ctx: click.Context) -> object:
        with clean_errors():
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *AREA_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in AREA_COMMANDS and cmd_name not in self.commands:
            module_name, attribute = AREA_COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command) or command.name != cmd_name:
                raise RuntimeError(f"{AREA_COMMANDS[cmd_name]} is not the click command {cmd_name!r}")
            self.add_command(command)
        return super().get_command(ctx, cmd_name)


@click.group(cls=WatcherGroup)
@click.version_option(__version__, prog_name="watcher")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
@click.option("-v", "--verbose", is_flag=True, help="log progress and warnings to stderr")
@click.option("--replay", "replay_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="serve the recorded responses of this folder (e.g. watcher/replay_data) instead of the network")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool, replay_dir: str | None) -> None:
    """Watch French legal and regulatory sources, tag items by theme, alert the right people."""
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, format="%(levelname)s %(message)s")
    url_map = None
    if replay_dir:
        from watcher.replay import ReplayServer

        server = ctx.with_resource(ReplayServer(Path(replay_dir)))
        url_map = server.url_map
    app = App(config_path, url_map=url_map, host_delay=0.0 if replay_dir else None)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _print_report(report: SourceReport) -> None:
    if report.outcome == "failed":
        click.echo(f"  {report.name:<22} FAILED  {report.error}", err=True)
        return
    extra = f"  ({'; '.join(report.warnings)})" if report.warnings else ""
    click.echo(f"  {report.name:<22} {report.outcome:<12} {report.seen:>6} seen {report.new:>6} new "
               f"{report.changed:>4} changed  {report.requests} request(s){extra}")


@main.command()
@click.option("--source", "names", multiple=True, help="only this source (repeatable)")
@click.option("--dry-run", is_flag=True, help="fetch and parse, print the items as JSON lines, store nothing")
@click.option("--force", is_flag=True, help="poll every enabled source even if its interval has not elapsed")
@click.pass_obj
def fetch(app: App, names: tuple[str, ...], dry_run: bool, force: bool) -> None:
    """Fetch the due sources and store what is new."""
    now = now_utc()
    if dry_run:
        from watcher.models import SourceState

        for name in names or [s.name for s in app.config.sources if s.enabled]:
            collected = collect(app.config.source(name), app.http, SourceState(name=name))
            for item in collected.items:
                click.echo(json.dumps(item_to_row(item), ensure_ascii=False, default=str))
            click.echo(f"{name}: {len(collected.items)} item(s) would be stored", err=True)
        return
    sources = due_sources(app.config, app.store, now, names, force)
    with click.progressbar(length=len(sources), label="fetching", file=sys.stderr) as bar:
        reports = ingest(app.config, app.store, app.http, now, sources, on_done=lambda r: bar.update(1))
    for report in reports:
        _print_report(report)
    if any(r.outcome == "failed" for r in reports) and len(reports) == 1:
        sys.exit(1)


@main.command()
@click.pass_obj
def sources(app: App) -> None:
    """A table of each source's health."""
    app.store.ensure_sources({s.name: s.kind for s in app.config.sources})
    threshold = app.config.settings.failure_alert_after
    click.echo(f"{'source':<22} {'kind':<11} {'health':<9} {'items':>6}  {'last success':<20} last error")
    for row in app.store.sources_health():
        failures = row.get("consecutive_failures") or 0
        health = "never" if not row.get("last_attempt") else ("FAILING" if failures >= threshold else
                                                                ("degraded" if failures else "ok"))
        error = f"{failures}x {row.get('last_error')}" if failures else ""
        click.echo(f"{row['name']:<22} {row.get('kind') or '':<11} {health:<9} {row.get('items_total') or 0:>6}  "
                   f"{row.get('last_success') or '-':<20} {error}")


@main.command()
@click.option("--kind", required=True, help="feed, wordpress, html, dila-jorf, dila-cnil")
@click.option("--source", "source_name", default=None, help="take the selectors/options of this configured source")
@click.option("--url", default="https://example.invalid/", help="the URL the file was fetched from (for links)")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def parse(app: App, kind: str, source_name: str | None, url: str, file: str) -> None:
    """Parse one local FILE and print one JSON object per item (no network, no store)."""
    from watcher.config import SourceConfig
    from watcher.sources import KINDS, build

    if kind not in KINDS:
        raise click.BadParameter(f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}", param_hint="--kind")
    if source_name:
        config = app.config.source(source_name)
        url = config.url if url == "https://example.invalid/" else url
    else:
        config = SourceConfig(name=Path(file).stem[:40], kind=kind, url=url)
    for item in build(config).parse(Path(file).read_bytes(), url=url):
        click.echo(json.dumps(item_to_row(item), ensure_ascii=False, default=str))


@main.command()
@click.pass_obj
def migrate(app: App) -> None:
    """Create or upgrade the archive's schema."""
    from store import Store

    store = Store(app.config.database, migrate=False)
    applied = store.migrate()
    store.close()
    click.echo(f"{app.config.database}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))


@main.command("run")
@click.option("--force", is_flag=True, help="poll every enabled source now")
@click.option("--no-notify", is_flag=True, help="do not plan or send alerts")
@click.pass_obj
def run_once(app: App, force: bool, no_notify: bool) -> None:
    """One full run: fetch due sources, classify new items, plan and send due alerts."""
    now = now_utc()
    for report in ingest(app.config, app.store, app.http, now, due_sources(app.config, app.store, now, None, force)):
        _print_report(report)
    result = classify_pending(app.store, app.classifier_factory(), now)
    click.echo(f"classified {result.classified} item(s), {result.tagged} tagged, "
               f"{result.in_scope_untagged} in scope but untagged")
    if not no_notify:
        from watcher.notify.service import deliver

        outcome = deliver(app.store, app.config, now)
        sent = outcome.report
        click.echo(f"alerts: {outcome.planned} planned, {len(sent.sent)} sent, {len(sent.failed)} to retry, "
                   f"{len(sent.held)} held for a person"
                   + "".join(f"; channel {c} unavailable: {why}" for c, why in outcome.unavailable.items()))


@main.command()
@click.argument("query")
@click.option("--limit", default=20, show_default=True)
@click.pass_obj
def search(app: App, query: str, limit: int) -> None:
    """Full-text search of the archive (SQLite FTS5 syntax)."""
    for row in app.store.search(query, limit=limit):
        click.echo(f"{(row.get('published') or '')[:10]}  {row['source']:<18} {row['title'][:90]}  {row['url']}")


@main.command()
@click.option("--out", "folder", type=click.Path(file_okay=False), required=True, help="recording folder")
@click.option("--source", "names", multiple=True, help="record this configured source's URL (repeatable)")
@click.argument("urls", nargs=-1)
@click.pass_obj
def record(app: App, folder: str, names: tuple[str, ...], urls: tuple[str, ...]) -> None:
    """Save live responses (bytes, status, headers, date) for later replay: run once with network."""
    from watcher.replay import record as record_responses

    targets = list(urls) + [app.config.source(n).url for n in names]
    if not targets:
        raise click.UsageError("give URLs or --source NAME")
    for done in record_responses(targets, Path(folder), app.http, now_utc()):
        click.echo(f"  {done.url}: " + (f"ERROR {done.error}" if done.error else f"{done.status} -> {done.path}"))


@main.command()
@click.option("--port", default=8001, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--editor", "editors", multiple=True, default=("editor",), show_default=True,
              help="an editor's login name (repeatable); the password hash is read from $WATCHER_PASSWORD_HASH_<NAME>")
@click.pass_obj
def serve(app: App, port: int, host: str, editors: tuple[str, ...]) -> None:
    """Browse and search the archive in Datasette; editors prepare the newsletter at /-/newsletter.

    Runs in this process: Ctrl-C (or SIGTERM) stops the server, nothing is left running."""
    from watcher.web import build_datasette, password_variable
    from watcher.web import serve as run_server

    app.store.migrate()
    datasette = build_datasette(app.config, editors=editors)
    accounts = ", ".join(f"{e} (password hash in ${password_variable(e)})" for e in editors)

    def ready(url: str) -> None:
        click.echo(f"archive listening on {url}  editors log in at {url}-/login: {accounts}", err=True)

    try:
        run_server(datasette, host=host, port=port, ready=ready)
    except KeyboardInterrupt:  # uvicorn shut down cleanly, then passed Ctrl-C on
        click.echo("archive server stopped", err=True)


@main.command()
@click.option("--check", is_flag=True, help="exit 1 if docs/configuration.md is not up to date")
def docs(check: bool) -> None:
    """Regenerate docs/configuration.md from the settings and source-kind tables."""
    from watcher.docs import configuration_markdown

    path = Path("docs/configuration.md")
    text = configuration_markdown()
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        sys.exit(0 if current == text else 1)
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")


@main.command()
@click.pass_obj
def daemon(app: App) -> None:
    """Run forever: poll each source at its interval, classify new items, send due alerts (Ctrl-C stops)."""
    from watcher.notify.service import deliver
    from watcher.schedule import build_scheduler

    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise; sources log outcomes

    def send_alerts(now: datetime) -> None:
        deliver(app.store, app.config, now)

    scheduler = build_scheduler(app, after_ingest=send_alerts)
    click.echo(f"watcher daemon: {len(scheduler.get_jobs())} job(s); Ctrl-C to stop", err=True)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)


@main.command()
@click.option("--workdir", type=click.Path(file_okay=False), default="var/demo", show_default=True,
              help="where the demo archive is written")
@click.option("--fresh/--keep", default=True, show_default=True, help="start from an empty archive")
@click.pass_obj
def demo(app: App, workdir: str, fresh: bool) -> None:
    """Run the whole pipeline once, offline, against the bundled recordings of the real sources."""
    from watcher.demo import run_demo, summary

    folder = Path(workdir)
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            (folder / f"watcher.db{suffix}").unlink(missing_ok=True)
    report = run_demo(app.config_path, folder, now_utc(), echo=click.echo)
    for line in summary(report):
        click.echo(line)


def run() -> None:
    """The ``watcher`` console script (and ``python -m watcher``): ``main`` in a process of its own. What exists
    once the modules are imported lives as long as the process, so it is exempted from every full garbage
    collection, the one at exit included (~40 ms on a 10,000-item fetch); garbage made afterwards is collected
    as usual. (Not in ``main``: tests and library callers invoke it inside a process they own.)"""
    gc.freeze()
    main()
