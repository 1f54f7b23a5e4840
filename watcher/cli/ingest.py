"""Ingest commands: ``fetch``, ``run``, ``sources``, ``parse``, ``record``, ``migrate`` and ``demo``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from watcher.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    command,
    config_path,
    open_app,
    open_archive,
    rules_only,
    rules_only_option,
)
from watcher.pipeline import RunReport, SourceReport, collect, fetch_step, run_once
from watcher.records import item_to_row
from watcher.util.clock import now_utc
from watcher.util.errors import ConfigError

if TYPE_CHECKING:
    from watcher.config import SourceConfig
    from watcher.notify.ops import OpsReport

NO_URL = "https://example.invalid/"  # parse without --url: links stay relative to nothing real


def print_source(report: SourceReport) -> None:
    if report.outcome == "failed":
        click.echo(f"  {report.name:<22} FAILED  {report.error}", err=True)
        return
    extra = f"  ({'; '.join(report.warnings)})" if report.warnings else ""
    click.echo(f"  {report.name:<22} {report.outcome:<12} {report.seen:>6} seen {report.new:>6} new "
               f"{report.changed:>4} changed  {report.requests} request(s){extra}")


@command()
@click.option("--source", "names", multiple=True, help="only this source (repeatable)")
@click.option("--dry-run", is_flag=True, help="fetch and parse, print the items as JSON lines, store nothing")
@click.option("--force", is_flag=True, help="poll every enabled source even if its interval has not elapsed")
def fetch(names: tuple[str, ...], dry_run: bool, force: bool) -> None:
    """Fetch the due sources and store what is new (exit 1 if a source failed; the failure is recorded)."""
    app, now = open_app(), now_utc()
    if dry_run:
        from watcher.models import SourceState

        for name in names or [s.name for s in app.config.sources if s.enabled]:
            collected = collect(app.config.source(name), app.http, SourceState(name=name))
            for item in collected.items:
                click.echo(json.dumps(item_to_row(item), ensure_ascii=False, default=str))
            click.echo(f"{name}: {len(collected.items)} item(s) would be stored", err=True)
        return
    report = fetch_step(app, now, names=names, force=force, on_source=print_source)
    print_incidents(report.incidents)
    if report.failed:
        sys.exit(EXIT_FAILED)


def print_incidents(incidents: OpsReport | None) -> None:
    """The operations incidents a fetch opened or closed (their messages go with the next delivery)."""
    if incidents is None:
        return
    for source, kind, detail in incidents.opened:
        click.echo(f"  incident opened: {source} {kind}: {detail}", err=True)
    for source, kind in incidents.closed:
        click.echo(f"  incident closed: {source} {kind}", err=True)


@command()
def sources() -> None:
    """A table of each source's health (reads the archive only: never waits for a run that writes it)."""
    app = open_archive()
    threshold = app.config.settings.failure_alert_after
    known = {row["name"]: row for row in app.reader.sources_health()}
    configured = [known.get(s.name) or {"name": s.name, "kind": s.kind} for s in app.config.sources]
    others = [row for name, row in known.items() if name not in {s.name for s in app.config.sources}]
    click.echo(f"{'source':<22} {'kind':<11} {'health':<9} {'items':>6}  {'last success':<20} last error")
    for row in sorted(configured + others, key=lambda r: r["name"]):
        health, error = _health(row, threshold)
        click.echo(f"{row['name']:<22} {row.get('kind') or '':<11} {health:<9} {row.get('items_total') or 0:>6}  "
                   f"{row.get('last_success') or '-':<20} {error}")
    last = app.reader.last_classification()
    if last:
        state = "DEGRADED" if "model failed" in last["model_version"] else "ok"
        click.echo(f"theme model: {state}, last classification {last['classified_at']} by {last['model']} "
                   f"{last['model_version']}")


def _health(row: dict[str, Any], threshold: int) -> tuple[str, str]:
    """(health, what went wrong) of a source row of ``Store.sources_health``."""
    failures = int(row.get("consecutive_failures") or 0)
    if not row.get("last_attempt"):
        return "never", ""
    if failures:
        return ("FAILING" if failures >= threshold else "degraded"), f"{failures}x {row.get('last_error')}"
    if row.get("last_outcome") == "degraded":
        return "degraded", str(row.get("last_warning") or "")
    return "ok", ""


@command()
@click.option("--kind", required=True, help="feed, wordpress, html, dila-jorf, dila-cnil")
@click.option("--source", "source_name", default=None, help="take the selectors/options of this configured source")
@click.option("--url", default=NO_URL, help="the URL the file was fetched from (for links)")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def parse(kind: str, source_name: str | None, url: str, file: str) -> None:
    """Parse one local FILE and print one JSON object per item (no network, no store)."""
    from watcher.config import SourceConfig
    from watcher.sources import KINDS, build

    if kind not in KINDS:
        raise click.BadParameter(f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}", param_hint="--kind")
    if source_name:
        config = _configured(source_name, kind)
        url = config.url if url == NO_URL else url
    elif KINDS[kind].required:
        raise ConfigError(f"--kind {kind} needs the keys {', '.join(KINDS[kind].required)} of a configured source: "
                          f"add --source NAME ({_sources_of(kind)})")
    else:
        config = SourceConfig(name=Path(file).stem[:40], kind=kind, url=url)
    for item in build(config).parse(Path(file).read_bytes(), url=url):
        click.echo(json.dumps(item_to_row(item), ensure_ascii=False, default=str))


def _configured(name: str, kind: str) -> SourceConfig:
    """The configured source ``name``, which must be of ``kind``."""
    config = open_app().config.source(name)
    if config.kind != kind:
        raise ConfigError(f"--kind {kind}, but source {name!r} is of kind {config.kind}")
    return config


def _sources_of(kind: str) -> str:
    """The configured sources of ``kind``, said for a hint."""
    try:
        names = [source.name for source in open_app().config.sources if source.kind == kind]
    except ConfigError:
        return "no configuration could be read to list them"
    return f"{kind} sources in the config: {', '.join(names)}" if names else f"no {kind} source in the config"


@command()
@click.option("--rebuild-fts", is_flag=True, help="rebuild the full-text index from the items (when search says it "
              "is damaged)")
def migrate(rebuild_fts: bool) -> None:
    """Create or upgrade the archive's schema."""
    from store import Store

    app = open_app()
    database = app.config.database
    store = Store(database, migrate=False, lock_wait=app.lock_wait, on_wait=app.on_wait)
    try:
        applied = store.migrate()
        rebuilt = store.rebuild_fts() if rebuild_fts else ""
    finally:
        store.close()
    click.echo(f"{database}: " + (f"applied {', '.join(applied)}" if applied else "up to date")
               + (f"; full-text index {rebuilt}" if rebuilt else ""))


@command("run")
@click.option("--force", is_flag=True, help="poll every enabled source now")
@click.option("--no-notify", is_flag=True, help="do not plan or send alerts")
@rules_only_option
def run_command(force: bool, no_notify: bool) -> None:
    """One full run: fetch due sources, classify new items, plan and send due alerts (exit 2 if deliveries wait on
    a channel that cannot be opened, e.g. a missing secret; else 1 if a source or a delivery failed)."""
    report = run_once(open_app(), now_utc(), force=force, deliver=not no_notify, on_source=print_source)
    print_run(report)
    print_incidents(report.incidents)
    if report.alerts is not None and report.alerts.unavailable:
        sys.exit(EXIT_USAGE)  # deliveries wait on a channel that cannot be opened: a missing secret
    if report.failed:
        sys.exit(EXIT_FAILED)


def print_run(report: RunReport) -> None:
    result = report.classified
    click.echo(f"classified {result.classified} item(s), {result.tagged} tagged, "
               f"{result.in_scope_untagged} in scope but untagged, model consulted on {result.model_consulted}")
    if result.degraded:
        click.echo(f"model: DEGRADED, rules and identifiers only ({result.degraded}); see `watcher model`", err=True)
    if report.classify_error:
        click.echo(f"classification stopped (items stay pending): {report.classify_error}", err=True)
    if report.alerts is not None:
        outcome, sent = report.alerts, report.alerts.report
        click.echo(f"alerts: {outcome.planned} planned, {len(sent.sent)} sent, {len(sent.failed)} to retry, "
                   f"{len(sent.held)} held for a person"
                   + "".join(f"; channel {c} unavailable: {why}" for c, why in outcome.unavailable.items()))


@command()
@click.option("--out", "folder", type=click.Path(file_okay=False), required=True, help="recording folder")
@click.option("--source", "names", multiple=True, help="record this configured source's URL (repeatable)")
@click.argument("urls", nargs=-1)
def record(folder: str, names: tuple[str, ...], urls: tuple[str, ...]) -> None:
    """Save live responses (bytes, status, headers, date) for later replay: run once with network."""
    from watcher.replay import record as record_responses

    app = open_app()
    targets = list(urls) + [app.config.source(n).url for n in names]
    if not targets:
        raise click.UsageError("give URLs or --source NAME")
    for done in record_responses(targets, Path(folder), app.http, now_utc()):
        click.echo(f"  {done.url}: " + (f"ERROR {done.error}" if done.error else f"{done.status} -> {done.path}"))


@command()
@click.option("--workdir", type=click.Path(file_okay=False), default="var/demo", show_default=True,
              help="where the demo archive is written")
@click.option("--fresh/--keep", default=True, show_default=True, help="start from an empty archive")
@rules_only_option
def demo(workdir: str, fresh: bool) -> None:
    """Run the whole pipeline once, offline, against the bundled recordings of the real sources."""
    from watcher.demo import run_demo, summary

    folder = Path(workdir)
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            (folder / f"watcher.db{suffix}").unlink(missing_ok=True)
    report = run_demo(config_path(), folder, now_utc(), echo=click.echo, rules_only=rules_only())
    for line in summary(report):
        click.echo(line)


COMMANDS = (fetch, run_command, sources, parse, record, migrate, demo)
