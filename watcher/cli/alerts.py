"""Alert commands: ``deliver``, ``digest``, ``notify-test``, ``deliveries``, ``subscribe``, ``subscriptions``.

Thin clients of the store and of ``watcher.notify`` (imported only when one of them runs). Each takes ``--now`` to
try schedules.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from watcher.cli.common import EXIT_FAILED, EXIT_USAGE, command, now_option, open_app, open_archive
from watcher.config.alerts import Subscription, parse_subscription, subscription_spec
from watcher.legal.normalize import iso
from watcher.util.errors import ConfigError

if TYPE_CHECKING:
    from watcher.notify.deliver import DeliveryReport
    from watcher.notify.service import Outcome

LEDGER_COLUMNS = ("state", "kind", "subscription", "recipient", "channel", "attempts", "next_attempt_at",
                  "sent_at", "key", "last_error")


def _print_report(report: DeliveryReport, planned: int, unavailable: dict[str, str]) -> None:
    click.echo(f"planned {planned}, sent {len(report.sent)}, retrying {len(report.failed)}, "
               f"held {len(report.held)}, cancelled {len(report.cancelled)}, recovered {report.recovered}, "
               f"deferred {len(report.deferred)}")
    for reason, count in Counter(reason for _, reason in report.deferred).items():
        click.echo(f"  deferred {count} message(s) to the next run: {reason}", err=True)
    for key, reason in report.failed:
        click.echo(f"  retry  {key}  {reason}", err=True)
    for key, reason in report.held:
        click.echo(f"  HELD   {key}  {reason}", err=True)
    for name, reason in unavailable.items():
        click.echo(f"  channel {name} unavailable: {reason}", err=True)


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not a date YYYY-MM-DD: {value!r}", param_hint="--since") from None


@command("deliver")
@click.option("--dry-run", is_flag=True, help="show each message that would be planned or sent (recipient, channel, "
                                              "item titles) and totals; write and send nothing")
@click.option("--since", "since", default=None, metavar="YYYY-MM-DD", callback=_since,
              help="also send, in one digest per person and channel, what matched their subscriptions since this "
                   "date and was never sent (the baseline of a first run); sent by this run, or the next one")
@click.option("--subscription", "names", multiple=True, help="with --since: only this subscription (repeatable)")
@now_option
def deliver_cmd(dry_run: bool, since: date | None, names: tuple[str, ...], now: datetime) -> None:
    """Plan new alerts and send everything that is due (instant alerts, digests, retries). Exit status 2 when
    deliveries wait on a channel that cannot be opened (a missing secret: configuration), else 1 when a delivery
    failed or is held for a person."""
    from watcher.daemon.instance import stop_on_signals
    from watcher.notify.service import alerts_of
    from watcher.pipeline import deliver_step

    app = open_app()
    if dry_run:
        _dry_run(app.store, alerts_of(app.config, app.store), now, since, names)
        return
    with stop_on_signals(threading.Event()) as stop:  # SIGTERM: finish the message in flight, leave the rest
        outcome = deliver_step(app, now, since=since, names=names, stop=stop)
    if since is not None:
        click.echo(f"{outcome.since} digest(s) of what matched since {since.isoformat()} (one per person and "
                   "channel)")
    _print_report(outcome.report, outcome.planned, outcome.unavailable)
    _exit(outcome)


def _exit(outcome: Outcome) -> None:
    """Exit 2 when deliveries wait on a channel that cannot be opened (a missing secret: configuration), else 1
    when a delivery failed or is held for a person."""
    if outcome.unavailable:
        sys.exit(EXIT_USAGE)
    if outcome.report.held or outcome.report.failed:
        sys.exit(EXIT_FAILED)


def _dry_run(store: Any, alerts: Any, now: datetime, since: date | None, names: tuple[str, ...]) -> None:
    from watcher.notify.dry_run import dry_run

    for line in dry_run(store, alerts, now, since, names):
        click.echo(line)


@command("digest")
@click.option("--daily", "cadence", flag_value="daily", help="the daily digests")
@click.option("--weekly", "cadence", flag_value="weekly", help="the weekly digests")
@click.option("--preview", type=click.Path(dir_okay=False, writable=True), default=None,
              help="write the next digest of one subscription to this HTML file; send and record nothing")
@click.option("--subscription", default=None, help="the subscription to preview (default: the first)")
@now_option
def digest_cmd(cadence: str | None, preview: str | None, subscription: str | None, now: datetime) -> None:
    """Open and send the daily or weekly digests that are due (or preview one)."""
    from watcher.notify.service import alerts_of, preview_digest
    from watcher.pipeline import deliver_step
    from watcher.search.similar import same_event_of

    if cadence is None:
        raise click.UsageError("say --daily or --weekly")
    app = open_app()
    if preview:
        config, store = app.config, app.store
        message = preview_digest(store, config, alerts_of(config, store), cadence, subscription, now,
                                 same_event=same_event_of(store))
        Path(preview).write_text(message.html, encoding="utf-8")
        click.echo(f"wrote {preview}: {message.subject}")
        return
    outcome = deliver_step(app, now, cadences=(cadence,))
    _print_report(outcome.report, outcome.planned, outcome.unavailable)
    _exit(outcome)


@command("notify-test")
@click.argument("channel")
@click.option("--to", "to", default=None, help="e-mail address (email channels) or Slack target to send to")
@now_option
def notify_test_cmd(channel: str, to: str | None, now: datetime) -> None:
    """Send a test message through CHANNEL (a [channel.NAME] table) and say what happened."""
    from watcher.notify import build_channel
    from watcher.notify.service import alerts_of, renderer_for


    app = open_app()
    config, store = app.config, app.store
    alerts = alerts_of(config, store)
    built = build_channel(alerts.channel(channel))
    click.echo(f"channel {built.describe()}")
    if built.kind == "email" and not to:
        raise click.UsageError("an email channel needs --to ADDRESS")
    sub = Subscription(name="notify-test", person="watcher", themes=frozenset({"test"}), channel=channel,
                       email=(to or "") if built.kind == "email" else "",
                       slack=(to or "") if built.kind != "email" else "")
    sample = {"id": "test:notify", "source": "watcher", "title": "Message de test de watcher",
              "url": alerts.public_url or "", "published": iso(now), "nature": "test"}
    theme = {"item_id": "test:notify", "theme": "test", "score": 1.0, "reason": "notify-test", "origin": "human"}
    message = renderer_for(config, alerts).message(
        key=f"test-{int(now.timestamp())}", sub=sub, kind="instant", period="", items=[sample],
        themes={"test:notify": [theme]}, now=now)
    try:
        built.send(message)
    finally:
        built.close()
    click.echo(f"sent: {message.subject}")


@command("deliveries")
@click.option("--state", type=click.Choice(["pending", "sending", "sent", "failed", "held", "cancelled"]),
              default=None, help="only rows in this state")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--requeue", "requeue", multiple=True, metavar="KEY",
              help="put a held delivery back to pending (repeatable); 'all' for every held one")
@click.option("--confirm", "confirm", multiple=True, metavar="KEY",
              help="record a held or interrupted delivery as sent (you saw it arrive)")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table")
@now_option
def deliveries_cmd(state: str | None, limit: int, requeue: tuple[str, ...], confirm: tuple[str, ...],
                   as_json: bool, now: datetime) -> None:
    """The delivery ledger: what was sent, what is waiting, what failed and why."""
    stamp = iso(now) or ""
    store = open_archive().store
    if requeue:
        keys = () if requeue == ("all",) else requeue
        click.echo(f"requeued {store.requeue_deliveries(now=stamp, keys=keys)}")
    for key in confirm:
        click.echo(f"{key}: {'confirmed' if store.confirm_sent(key, now=stamp) else 'not held or sending'}")
    if requeue or confirm:
        return
    counts = store.delivery_counts()
    rows = store.deliveries(state, limit)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    click.echo("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no deliveries")
    for row in rows:
        click.echo("  ".join(str(row.get(c) or "-") for c in LEDGER_COLUMNS))


@command("subscribe")
@click.argument("name")
@click.option("--person", help="name of the person told")
@click.option("--email", default="", help="e-mail address")
@click.option("--slack", default="", help="Slack target ('#channel' or member id)")
@click.option("--theme", "themes", multiple=True, help="a theme (repeatable, at least one)")
@click.option("--source", "sources", multiple=True, help="only this source (repeatable)")
@click.option("--nature", "natures", multiple=True, help="only this kind of act (repeatable)")
@click.option("--language", "languages", multiple=True, help="only items in this language (repeatable)")
@click.option("--min-score", type=float, default=0.5, show_default=True, help="lowest confidence that alerts")
@click.option("--cadence", type=click.Choice(["instant", "daily", "weekly"]), default="instant", show_default=True)
@click.option("--at", "at", default=None, help="time of a digest, HH:MM (default 08:00)")
@click.option("--day", default=None, help="day of a weekly digest (default monday)")
@click.option("--channel", help="name of a [channel.NAME] table")
@click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
@click.option("--remove", is_flag=True, help="delete the stored subscription NAME")
@now_option
def subscribe_cmd(name: str, remove: bool, now: datetime, **fields: Any) -> None:
    """Add, replace (same NAME) or --remove a subscription kept in the database."""
    from watcher.notify.service import alerts_of


    stamp = iso(now) or ""
    app = open_app()
    config, store = app.config, app.store
    if remove:
        click.echo(f"removed {name}" if store.delete_subscription(name) else f"no stored subscription {name}")
        return
    spec = _spec(name, fields)
    sub = parse_subscription(spec, file="command line", where=f"subscription {name!r}", origin="database")
    others = [s for s in store.stored_subscriptions() if s["name"] != name]
    alerts_of_config = alerts_of(config, _Stored(others + [{"name": name, "spec": spec}]))
    if alerts_of_config.subscription(name).origin != "database":
        raise ConfigError(f"{name!r} is declared in a config file; edit it there")
    store.save_subscription(name, subscription_spec(sub), now=stamp)
    click.echo(f"saved {name}: {', '.join(sorted(sub.themes))} -> {sub.channel} ({sub.cadence.kind})")


class _Stored:
    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows

    def stored_subscriptions(self) -> list[dict[str, Any]]:
        return self.rows


def _spec(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name}
    for key, value in fields.items():
        if value in (None, "", ()):
            continue
        spec[key] = list(value) if isinstance(value, tuple) else value
    return spec


@command("subscriptions")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per subscription")
@now_option
def subscriptions_cmd(as_json: bool, now: datetime) -> None:
    """Every subscription (config files and database) and every channel, secrets masked."""
    from watcher.notify.service import alerts_of


    app = open_archive()  # the stored subscriptions are in the archive: reading it never creates one
    alerts = alerts_of(app.config, app.reader)
    for sub in alerts.subscriptions:
        spec = subscription_spec(sub)
        if as_json:
            click.echo(json.dumps({**spec, "origin": sub.origin}, ensure_ascii=False))
            continue
        when = sub.cadence.kind + (f" {spec['at']}" if "at" in spec else "") + (f" {spec['day']}" if "day" in spec
                                                                                else "")
        click.echo(f"{sub.name:<24} {sub.person:<20} {', '.join(spec['themes']):<30} {when:<18} "
                   f"{sub.channel:<10} {sub.email or sub.slack}  [{sub.origin}]")
    if not as_json:
        for channel in alerts.channels.values():
            shown = [f"{k}={v}" for k, v in sorted(channel.options.items())]
            shown += [f"{k}_env={v}" for k, v in sorted(channel.secret_vars.items())]
            click.echo(f"channel {channel.name} ({channel.kind}) {' '.join(shown)}")


COMMANDS = (deliver_cmd, digest_cmd, notify_test_cmd, deliveries_cmd, subscribe_cmd, subscriptions_cmd)
