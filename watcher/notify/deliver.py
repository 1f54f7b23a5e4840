"""Send what is due and record every outcome in the ledger, so that nothing is sent twice or dropped.

The order for each delivery: render -> the channel prepares the send -> claim (row becomes 'sending', attempts + 1,
committed) -> the channel completes the send -> mark 'sent'. E-mail claims after the whole body is transferred,
just before the final ``.`` of DATA; the other channels claim before they send. The claim and the mark are made by
the sending thread, with nothing in between, while the main thread only waits. The next message is rendered while the channel handles the current
one, but it is sent only once the current one is recorded, so at most one row is ever 'sending'. A crash between
the send and the mark leaves the row 'sending'. After ``stale_after`` such a row is re-sent with the same
Message-ID when the channel's receivers drop duplicates by Message-ID (e-mail), and is otherwise held for a person
(Slack, apprise), who checks the channel and requeues or confirms it.

Channels fail fast: per channel and per run, a circuit breaker opens after ``breaker_after`` connection failures in
a row (or at once when the login is refused), and that channel's remaining messages are left as they are
(pending, or failed and due) for the next run, reported as ``deferred``. A send that outlives ``send_deadline``
is cut (``Channel.abort``) and counts as a connection failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from store import Store
from watcher.config.alerts import AlertsConfig, Subscription
from watcher.legal.normalize import iso
from watcher.notify.base import Channel, Message
from watcher.notify.plan import carried_items, carried_subscriptions, person_view, still_matches
from watcher.notify.render import Renderer
from watcher.util.errors import NotifyError

INTERRUPTED = ("interrupted while sending (the process stopped before recording the outcome): it may have "
               "arrived; check the channel, then `watcher deliveries --requeue KEY` or `--confirm KEY`")


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # will be retried
    held: list[tuple[str, str]] = field(default_factory=list)  # waiting for a person
    cancelled: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # channel unavailable: still pending
    deferred: list[tuple[str, str]] = field(default_factory=list)  # channel's breaker open: untouched, next run
    recovered: int = 0  # interrupted sends re-sent with their Message-ID

    @property
    def ok(self) -> bool:
        return not self.held


@dataclass(frozen=True)
class Hooks:
    """Observation points, used by the crash tests: when the message is transferred but not yet committed (e-mail:
    before DATA's final dot), after the channel accepted, and after the ledger recorded."""

    before_commit: Callable[[str], None] | None = None
    after_send: Callable[[str], None] | None = None
    after_record: Callable[[str], None] | None = None


OpsRender = Callable[[Mapping[str, Any]], "Message | None"]  # an operations row -> the admin's message


def send_due(store: Store, alerts: AlertsConfig, now: datetime, channels: Mapping[str, Channel], *,
             renderer: Renderer | None = None, kinds: Sequence[str] | None = None,
             hooks: Hooks | None = None, ops: OpsRender | None = None,
             stop: threading.Event | None = None) -> DeliveryReport:
    """Recover interrupted sends, then send every pending or retry-due delivery (of ``kinds``, default all).
    Operations messages (kind 'ops') are rendered by ``ops`` (see ``watcher.notify.ops``). Once ``stop`` is set
    (SIGTERM) the message in flight is finished and recorded, and the others are left for the next run."""
    renderer = renderer or Renderer(public_url=alerts.public_url, timezone=alerts.timezone)
    sender = _Sender(store, alerts, now, channels, renderer, hooks or Hooks())
    sender.ops, sender.stop = ops, stop or threading.Event()
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


@dataclass
class _Attempt:
    """What the sending thread did with one message."""

    claimed: bool = False  # the row was claimed ('sending', attempts + 1)
    sent: bool = False  # the channel accepted it and the ledger says 'sent'
    error: NotifyError | None = None


class Breaker:
    """Per channel, for one run: open after ``after`` connection failures in a row, or at once on a refused login."""

    def __init__(self, after: int):
        self.after = after
        self.failures: dict[str, int] = {}
        self.reasons: dict[str, str] = {}

    def record(self, channel: str, error: NotifyError | None) -> None:
        if error is None or not error.down:
            self.failures[channel] = 0
            return
        count = self.failures[channel] = self.failures.get(channel, 0) + 1
        if error.down == "login" or count >= self.after:
            what = "login refused" if error.down == "login" else f"{count} connection failure(s) in a row"
            self.reasons[channel] = f"channel {channel} stopped for this run ({what}: {error.reason})"

    def why_open(self, channel: str) -> str | None:
        return self.reasons.get(channel)


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
        self.ops: OpsRender | None = None
        self.stop = threading.Event()
        self.breaker = Breaker(alerts.settings.breaker_after)
        # set while this thread only waits for the send: the sending thread commits and sends the final part of a
        # message then, so that the moment between the channel's acceptance and the ledger's record is not
        # stretched by rendering competing for the CPU
        self._waiting = threading.Event()

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
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watcher-send")
        try:
            flight: tuple[_Ready, Future[_Attempt]] | None = None
            for row, stale_before in work:
                if self._deferred(row):
                    continue
                ready = self.prepare(row, stale_before)
                if flight is not None:
                    self.finish(*flight)
                    flight = None
                if ready is not None and not self._deferred(row):
                    flight = (ready, pool.submit(self.transmit, ready))
            if flight is not None:
                self.finish(*flight)
        finally:
            self._waiting.set()  # if this thread is leaving on an error, a send waiting for it completes
            pool.shutdown(wait=True)

    def _deferred(self, row: Mapping[str, Any]) -> bool:
        reason = "stopped (SIGTERM)" if self.stop.is_set() else self.breaker.why_open(row["channel"])
        if reason is not None:
            self.report.deferred.append((row["key"], reason))
        return reason is not None

    def transmit(self, ready: _Ready) -> _Attempt:
        """In the sending thread: claim at the channel's last moment, send, and record 'sent' straight away."""
        key, attempt = ready.row["key"], _Attempt()

        def commit() -> bool:  # False: another process has it, or it is done
            self._waiting.wait()  # the other thread has rendered the next message: it holds no CPU (nor the GIL)
            if self.hooks.before_commit:
                self.hooks.before_commit(key)
            attempt.claimed = self.store.claim_delivery(key, now=self.stamp, message_id=ready.channel.message_id(key),
                                                        stale_before=ready.stale_before)
            return attempt.claimed

        if not self._still_due(key, ready.stale_before):  # another sender took it meanwhile: do not even start
            return attempt
        try:
            attempt.sent = ready.channel.deliver(ready.message, commit)
        except NotifyError as exc:
            attempt.error = exc
        except Exception as exc:  # a channel bug is a temporary failure, retried then held
            attempt.error = NotifyError(ready.channel.name, f"unexpected {type(exc).__name__}: {exc}")
        if attempt.sent:
            if self.hooks.after_send:
                self.hooks.after_send(key)
            self.store.mark_sent(key, now=self.stamp)
            if self.hooks.after_record:
                self.hooks.after_record(key)
        return attempt

    def _still_due(self, key: str, stale_before: str | None) -> bool:
        """A cheap read before the channel works: the claim decides, this only spares a concurrent sender the
        transfer of a message the other one is sending."""
        row = self.store.get_delivery(key)
        return row is not None and (row["state"] in ("pending", "failed") or (
            stale_before is not None and row["state"] == "sending"))

    def finish(self, ready: _Ready, flight: Future[_Attempt]) -> None:
        """Wait for the send (at most ``send_deadline``, counted from now: the send's last part waits for this),
        then record a failure and tell the breaker."""
        deadline = self.alerts.settings.send_deadline
        self._waiting.set()
        try:
            attempt = flight.result(timeout=deadline)
        except FutureTimeout:
            ready.channel.abort()
            attempt = flight.result()
            if attempt.error is not None:
                attempt.error = NotifyError(ready.channel.name, f"no answer within {deadline} s (send_deadline): "
                                            f"{attempt.error.reason}", down="connection")
        finally:
            self._waiting.clear()
        self.breaker.record(ready.channel.name, attempt.error)
        if attempt.sent:
            self.report.sent.append(ready.row["key"])
        elif attempt.error is not None and (attempt.claimed or self._claim(ready)):
            self._failed(ready.row, attempt.error)

    def _claim(self, ready: _Ready) -> bool:
        """Claim a row whose send failed before its claim, so that the failure counts as an attempt."""
        key = ready.row["key"]
        return bool(self.store.claim_delivery(key, now=self.stamp, message_id=ready.channel.message_id(key),
                                              stale_before=ready.stale_before))

    def prepare(self, row: Mapping[str, Any], stale_before: str | None) -> _Ready | None:
        key = row["key"]
        sub, channel = self.subs.get(row["subscription"]), self.channels.get(row["channel"])
        if channel is None:
            self.report.skipped.append((key, f"channel {row['channel']} unavailable"))
            return None
        if sub is None and row["kind"] != "ops":
            self._hold(key, f"subscription {row['subscription']!r} no longer exists")
            return None
        try:
            message = self.render(row, sub, channel) if sub else self.render_ops(row)
        except Exception as exc:  # a template or data bug must not stop the other deliveries
            self._hold(key, f"cannot render: {type(exc).__name__}: {exc}")
            return None
        if message is None:
            self.store.cancel_delivery(key, now=self.stamp, reason="every matching theme was removed by a person")
            self.report.cancelled.append((key, "themes removed"))
            return None
        return _Ready(row, channel, message, stale_before)

    def render_ops(self, row: Mapping[str, Any]) -> Message:
        message = self.ops(row) if self.ops else None
        if message is None:
            raise LookupError("no incident and no admin configuration for this operations message")
        return message

    def render(self, row: Mapping[str, Any], sub: Subscription, channel: Channel) -> Message | None:
        ids = carried_items(self.store, self.alerts, row)
        if row["kind"] == "since":  # one digest for all of a person's subscriptions on this channel
            sub = person_view(carried_subscriptions(self.alerts, row) or [sub])
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
