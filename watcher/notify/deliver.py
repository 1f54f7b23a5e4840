"""Send what is due and record every outcome in the ledger, so that nothing is sent twice or dropped.

The order for each delivery: render -> claim (row becomes 'sending', attempts + 1, committed) -> send -> mark
'sent'. The next message is rendered while the channel handles the current one, but it is claimed only once the
current one is recorded, so at most one row is ever 'sending'. A crash between the send and the mark leaves the
row 'sending'. After ``stale_after`` such a row is re-sent with the same Message-ID when the channel's receivers
drop duplicates by Message-ID (e-mail), and is otherwise held for a person (Slack, apprise), who checks the
channel and requeues or confirms it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from store import Store
from watcher.config.alerts import AlertsConfig, Subscription
from watcher.errors import NotifyError
from watcher.normalize import iso
from watcher.notify.base import Channel, Message
from watcher.notify.plan import still_matches
from watcher.notify.render import Renderer

INTERRUPTED = ("interrupted while sending (the process stopped before recording the outcome): it may have "
               "arrived; check the channel, then `watcher deliveries --requeue KEY` or `--confirm KEY`")


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # will be retried
    held: list[tuple[str, str]] = field(default_factory=list)  # waiting for a person
    cancelled: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # channel unavailable: still pending
    recovered: int = 0  # interrupted sends re-sent with their Message-ID

    @property
    def ok(self) -> bool:
        return not self.held


@dataclass(frozen=True)
class Hooks:
    """Observation points, used by the crash tests: after the channel accepted, and after the ledger recorded."""

    after_send: Callable[[str], None] | None = None
    after_record: Callable[[str], None] | None = None


def send_due(store: Store, alerts: AlertsConfig, now: datetime, channels: Mapping[str, Channel], *,
             renderer: Renderer | None = None, kinds: Sequence[str] | None = None,
             hooks: Hooks | None = None) -> DeliveryReport:
    """Recover interrupted sends, then send every pending or retry-due delivery (of ``kinds``, default all)."""
    renderer = renderer or Renderer(public_url=alerts.public_url, timezone=alerts.timezone)
    sender = _Sender(store, alerts, now, channels, renderer, hooks or Hooks())
    try:
        work = sender.recover() + sender.order(store.due_deliveries(iso(now) or "", kinds=kinds))
        sender.run(work)
    finally:
        for channel in channels.values():
            channel.close()
    return sender.report


@dataclass(frozen=True)
class _Ready:
    row: Mapping[str, Any]
    channel: Channel
    message: Message
    stale_before: str | None


class _Sender:
    """Sends one message at a time, in order, but renders the next one while the channel handles the current one
    (a 1-deep pipeline: at most one row is 'sending' at any moment, claimed just before its send)."""

    def __init__(self, store: Store, alerts: AlertsConfig, now: datetime, channels: Mapping[str, Channel],
                 renderer: Renderer, hooks: Hooks):
        self.store, self.alerts, self.now, self.channels = store, alerts, now, channels
        self.renderer, self.hooks = renderer, hooks
        self.stamp = iso(now) or ""
        self.subs = {s.name: s for s in alerts.subscriptions}
        self.report = DeliveryReport()

    def recover(self) -> list[tuple[Mapping[str, Any], str | None]]:
        """Rows left 'sending' by a dead process: to re-send (e-mail, same Message-ID) or held for a person."""
        cutoff = iso(self.now - timedelta(seconds=self.alerts.settings.stale_after)) or ""
        resend: list[tuple[Mapping[str, Any], str | None]] = []
        for row in self.store.stale_sending(cutoff):
            channel = self.channels.get(row["channel"])
            if channel is None:
                self.report.skipped.append((row["key"], f"channel {row['channel']} unavailable"))
            elif channel.dedups_by_message_id and row["attempts"] < self.alerts.settings.max_attempts:
                self.report.recovered += 1
                resend.append((row, cutoff))
            else:
                self._hold(row["key"], INTERRUPTED)
        return resend

    def order(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], str | None]]:
        """Instant alerts first, then digests grouped by language (so rendered items stay in the cache)."""
        def lang(row: Mapping[str, Any]) -> str:
            sub = self.subs.get(row["subscription"])
            return sub.lang if sub else ""

        return [(row, None) for row in sorted(rows, key=lambda r: (r["kind"] != "instant", lang(r)))]

    def run(self, work: Sequence[tuple[Mapping[str, Any], str | None]]) -> None:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="watcher-send") as pool:
            flight: tuple[_Ready, Future[None]] | None = None
            for row, stale_before in work:
                ready = self.prepare(row, stale_before)
                if flight is not None:
                    self.finish(*flight)
                    flight = None
                if ready is not None and self.store.claim_delivery(
                        row["key"], now=self.stamp, message_id=ready.channel.message_id(row["key"]),
                        stale_before=stale_before):  # False: another process has it, or it is done
                    flight = (ready, pool.submit(ready.channel.send, ready.message))
            if flight is not None:
                self.finish(*flight)

    def prepare(self, row: Mapping[str, Any], stale_before: str | None) -> _Ready | None:
        key = row["key"]
        sub, channel = self.subs.get(row["subscription"]), self.channels.get(row["channel"])
        if channel is None:
            self.report.skipped.append((key, f"channel {row['channel']} unavailable"))
            return None
        if sub is None:
            self._hold(key, f"subscription {row['subscription']!r} no longer exists")
            return None
        try:
            message = self.render(row, sub, channel)
        except Exception as exc:  # a template or data bug must not stop the other deliveries
            self._hold(key, f"cannot render: {type(exc).__name__}: {exc}")
            return None
        if message is None:
            self.store.cancel_delivery(key, now=self.stamp, reason="every matching theme was removed by a person")
            self.report.cancelled.append((key, "themes removed"))
            return None
        return _Ready(row, channel, message, stale_before)

    def finish(self, ready: _Ready, sent: Future[None]) -> None:
        key = ready.row["key"]
        try:
            sent.result()
        except NotifyError as exc:
            self._failed(ready.row, exc)
            return
        except Exception as exc:  # a channel bug is a temporary failure, retried then held
            self._failed(ready.row, NotifyError(ready.channel.name, f"unexpected {type(exc).__name__}: {exc}"))
            return
        if self.hooks.after_send:
            self.hooks.after_send(key)
        self.store.mark_sent(key, now=self.stamp)
        self.report.sent.append(key)
        if self.hooks.after_record:
            self.hooks.after_record(key)

    def render(self, row: Mapping[str, Any], sub: Subscription, channel: Channel) -> Message | None:
        ids = [row["item_id"]] if row["kind"] == "instant" else self.store.delivery_item_ids(row["key"], row["subscription"])
        themes = self.store.themes_of_items(ids)
        items = [i for i in self.store.alert_items(ids) if still_matches(sub, themes.get(i["id"], []))]
        if not items:
            return None
        return self.renderer.message(key=row["key"], sub=sub, kind=row["kind"], period=row["period"] or "",
                                     items=items, themes=themes, now=self.now, needs=channel.needs,
                                     unsubscribe=channel.unsubscribe_for(sub.email))

    def _failed(self, row: Mapping[str, Any], exc: NotifyError) -> None:
        attempts, settings = int(row["attempts"]) + 1, self.alerts.settings
        if exc.permanent:
            self._hold(row["key"], f"permanent failure: {exc}")
        elif attempts >= settings.max_attempts:
            self._hold(row["key"], f"gave up after {attempts} attempts: {exc}")
        else:
            delay = min(settings.retry_after * 2 ** (attempts - 1), settings.max_retry_delay)
            delay = max(delay, exc.retry_after or 0)
            self.store.mark_failed(row["key"], now=self.stamp, error=str(exc),
                                   next_attempt_at=iso(self.now + timedelta(seconds=delay)) or "")
            self.report.failed.append((row["key"], str(exc)))

    def _hold(self, key: str, reason: str) -> None:
        self.store.mark_held(key, now=self.stamp, reason=reason)
        self.report.held.append((key, reason))
