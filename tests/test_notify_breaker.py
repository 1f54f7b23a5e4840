"""Channels that fail fast: a hung SMTP server, a refused login and a send past its deadline cost one channel
failure (or ``breaker_after`` of them) per run, not one per message; the other messages wait for the next run,
untouched, and all arrive once the server is back. Counted in connection and login attempts, not in seconds."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hostile_smtp import SilentServer, login_server
from test_notify_support import (
    CNIL_BIG_FEED,
    SmtpSink,
    cnil_items,
    free_port,
    seed,
    subscription,
    write_config,
)

from store import Store
from watcher.config import load_config
from watcher.notify.deliver import Hooks
from watcher.notify.service import Outcome, deliver

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
T0 = datetime(2026, 6, 16, 18, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)  # past every retry delay of the first run


def _channel(port: int, *, timeout: int = 1, login: bool = False) -> str:
    auth = 'username = "veille"\npassword_env = "WATCHER_TEST_SMTP_PASSWORD"\n' if login else ""
    return (f'[channel.mail]\nkind = "email"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "plain"\n'
            f'from = "veille@cabinet-test.fr"\ntimeout = {timeout}\n{auth}')


def _archive(tmp_path: Path, body: str, count: int = 10) -> tuple[Path, Store]:
    path = write_config(tmp_path, body + subscription("alice", themes=["health-data"]))
    store = Store(load_config(path).database)
    rows = cnil_items(CNIL_BIG_FEED, limit=count)
    seed(store, rows, {r["id"]: [("health-data", 0.9)] for r in rows})
    return path, store


def _deliver(path: Path, store: Store, now: datetime) -> Outcome:
    return deliver(store, load_config(path), now)


def _attempts(store: Store) -> Counter[tuple[str, int]]:
    return Counter((r["state"], r["attempts"]) for r in store.deliveries(limit=None))


def test_ten_mails_to_a_hung_server_cost_two_connection_attempts_not_ten(tmp_path: Path) -> None:
    with SilentServer() as hung:
        path, store = _archive(tmp_path, _channel(hung.port))
        first = _deliver(path, store, T0).report
        connections = hung.connections
    assert connections == 2  # breaker_after = 2 (default): then the channel is stopped for this run
    assert len(first.failed) == 2 and len(first.deferred) == 8 and first.sent == [] and first.held == []
    assert all("stopped for this run (2 connection failure(s) in a row" in why for _, why in first.deferred)
    assert _attempts(store) == {("failed", 1): 2, ("pending", 0): 8}  # the deferred ones are untouched
    with SmtpSink() as sink:
        path.write_text(path.read_text().replace(f"port = {hung.port}", f"port = {sink.port}"))
        second = _deliver(path, store, LATER).report
        ids = Counter(sink.message_ids())
    assert len(second.sent) == 10 and len(ids) == 10 and set(ids.values()) == {1}
    assert store.delivery_counts() == {"sent": 10}


def test_a_refused_login_is_tried_once_per_run_and_the_mails_wait(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_TEST_SMTP_PASSWORD", "wrong horse")
    with login_server() as (port, handler, logins):
        path, store = _archive(tmp_path, _channel(port, timeout=5, login=True))
        first = _deliver(path, store, T0).report
        assert logins.attempts == 1 and handler.messages == []
        assert len(first.failed) == 1 and len(first.deferred) == 9 and first.held == []
        assert "login refused" in first.deferred[0][1] and "535" in first.failed[0][1]
        assert "wrong horse" not in repr(first)
        logins.accept = True  # a person fixed the password
        second = _deliver(path, store, LATER).report
        assert logins.attempts == 2  # one login for the whole batch
        assert len(second.sent) == 10 and len(handler.messages) == 10 and store.delivery_counts() == {"sent": 10}


def test_a_send_past_its_deadline_is_cut_and_stops_the_channel(tmp_path: Path) -> None:
    """The server greets and answers EHLO, then never answers MAIL: each SMTP step would wait its 30 s timeout;
    the message is cut at ``send_deadline`` instead, and with ``breaker_after = 1`` the others wait."""
    alerts = '[alerts]\nsend_deadline = "1s"\nbreaker_after = 1\n'
    with SilentServer(greeting=["220 slow.example ESMTP"], replies=["250 slow.example"]) as slow:
        path, store = _archive(tmp_path, alerts + _channel(slow.port, timeout=30), count=3)
        report = _deliver(path, store, T0).report
        connections = slow.connections
    assert connections == 1 and len(report.failed) == 1 and len(report.deferred) == 2
    assert "no answer within 1 s (send_deadline)" in report.failed[0][1]
    assert _attempts(store) == {("failed", 1): 1, ("pending", 0): 2}


def test_a_refused_recipient_does_not_stop_the_channel(tmp_path: Path) -> None:
    """Only channel faults open the breaker: a 550 for one address is that message's problem."""
    with SmtpSink() as sink:
        sink.handler.rcpt_codes = ["550 5.1.1 no such user", "550 5.1.1 no such user", "550 5.1.1 no such user"]
        path, store = _archive(tmp_path, _channel(sink.port, timeout=5), count=5)
        report = _deliver(path, store, T0).report
        assert len(report.held) == 3 and len(report.sent) == 2 and report.deferred == []
        assert len(sink.messages) == 2


def test_a_stop_request_finishes_the_message_in_flight_and_leaves_the_rest(tmp_path: Path) -> None:
    """What SIGTERM does: the message being sent is finished and recorded, the others wait, untouched."""
    stop = threading.Event()
    with SmtpSink() as sink:
        path, store = _archive(tmp_path, _channel(sink.port, timeout=5), count=5)
        report = deliver(store, load_config(path), T0, hooks=Hooks(after_send=lambda key: stop.set()),
                         stop=stop).report
        assert len(report.sent) == 1 and len(sink.messages) == 1
        assert [why for _, why in report.deferred] == ["stopped (SIGTERM)"] * 4
        assert _attempts(store) == {("sent", 1): 1, ("pending", 0): 4}


def test_an_unreachable_webhook_stops_the_slack_channel_for_the_run(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_TEST_WEBHOOK", f"http://127.0.0.1:{free_port()}/services/T0/B0/secret")
    path = write_config(tmp_path, '[channel.team]\nkind = "slack"\nwebhook_env = "WATCHER_TEST_WEBHOOK"\n'
                        + subscription("alice", channel="team", themes=["health-data"], slack="#veille"))
    store = Store(load_config(path).database)
    rows = cnil_items(CNIL_BIG_FEED, limit=6)
    seed(store, rows, {r["id"]: [("health-data", 0.9)] for r in rows})
    report = _deliver(path, store, T0).report
    assert len(report.failed) == 2 and len(report.deferred) == 4 and report.held == []
    assert "ConnectError" in report.failed[0][1] and "secret" not in repr(report)
    assert _attempts(store) == {("failed", 1): 2, ("pending", 0): 4}
