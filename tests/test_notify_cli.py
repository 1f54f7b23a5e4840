"""The alert commands, through click, against a real local SMTP server."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from test_notify_support import SmtpSink, cnil_items, email_channel, seed, subscription, write_config

from store import Store
from watcher.cli.alerts import COMMANDS
from watcher.config import load_config

NOW = "2026-06-16T18:00:00Z"


@click.group()
def group() -> None:
    """Stands for the main ``watcher`` group, which adds the commands the same way."""


for command in COMMANDS:
    group.add_command(command)


@pytest.fixture
def sink() -> SmtpSink:
    with SmtpSink() as server:
        yield server


def _config(tmp_path: Path, port: int) -> Path:
    path = write_config(tmp_path, email_channel(port) + 'username = "veille"\npassword_env = "WATCHER_TEST_PW"\n'
                        + subscription("alice", themes=["health-data"])
                        + subscription("bob", themes=["personal-data"], cadence="daily"))
    store = Store(load_config(path).database)
    rows = cnil_items()
    seed(store, rows, {rows[1]["id"]: [("health-data", 0.8)], rows[5]["id"]: [("health-data", 0.9), ("personal-data", 0.9)]})
    store.close()
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(group, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_deliver_dry_run_then_deliver_then_ledger(tmp_path: Path, sink: SmtpSink,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, sink.port)
    code, out = _run("deliver", "--dry-run", "--config", str(path), "--now", NOW)
    assert code == 0 and out.count("would plan  instant") == 2 and sink.messages == []
    monkeypatch.delenv("WATCHER_TEST_PW", raising=False)
    code, out = _run("deliver", "--config", str(path), "--now", NOW)
    # exit 2 (configuration): deliveries wait on a channel that cannot be opened (was 0, which hid it)
    assert code == 2 and "sent 0" in out and "environment variable WATCHER_TEST_PW is not set" in out
    assert sink.messages == []  # the deliveries wait, untouched, until the secret is there
    _, ledger = _run("deliveries", "--config", str(path), "--state", "pending")
    assert "pending: 2" in ledger
    monkeypatch.setenv("WATCHER_TEST_PW", "s3cret")
    sink.controller.stop()
    from aiosmtpd.controller import Controller  # the same server, now asking for a login

    sink.controller = Controller(sink.handler, hostname="127.0.0.1", port=sink.port, auth_require_tls=False,
                                 authenticator=_accept_only("veille", "s3cret"))
    sink.controller.start()
    code, out = _run("deliver", "--config", str(path), "--now", NOW)
    assert code == 0 and "sent 2" in out and len(sink.messages) == 2
    code, out = _run("deliveries", "--config", str(path), "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["state"] for r in rows} == {"sent"} and "s3cret" not in out
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("watcher.db*"))
    assert b"s3cret" not in stored and b"WATCHER_TEST_PW" not in stored  # secrets live in the environment only


def _accept_only(user: str, password: str):  # type: ignore[no-untyped-def]
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() and (
            auth_data.password == password.encode())
        return AuthResult(success=ok)

    return authenticator


def test_digest_preview_and_send(tmp_path: Path, sink: SmtpSink) -> None:
    path = write_config(tmp_path, email_channel(sink.port) + subscription("bob", themes=["personal-data"], cadence="daily"))
    store = Store(load_config(path).database)
    rows = cnil_items()
    seed(store, rows, {rows[0]["id"]: [("personal-data", 0.9)], rows[2]["id"]: [("personal-data", 0.7)]})
    store.close()
    preview = tmp_path / "digest.html"
    code, out = _run("digest", "--daily", "--preview", str(preview), "--config", str(path), "--now", NOW)
    assert code == 0 and "2 textes" in out and rows[0]["id"] in preview.read_text(encoding="utf-8")
    code, out = _run("digest", "--daily", "--config", str(path), "--now", "2026-06-17T06:00:00Z")
    assert code == 0 and "sent 1" in out and len(sink.messages) == 1
    code, out = _run("digest", "--daily", "--config", str(path), "--now", "2026-06-17T09:00:00Z")
    assert "sent 0" in out and len(sink.messages) == 1


def test_subscribe_subscriptions_and_notify_test(tmp_path: Path, sink: SmtpSink) -> None:
    path = write_config(tmp_path, email_channel(sink.port) + subscription("alice"))
    code, out = _run("subscribe", "carla", "--person", "Carla", "--email", "carla@x.fr", "--theme", "personal-data",
                     "--theme", "health-data", "--cadence", "weekly", "--day", "jeudi", "--channel", "mail",
                     "--config", str(path))
    assert code == 0 and "saved carla: health-data, personal-data -> mail (weekly)" in out
    code, out = _run("subscribe", "dan", "--person", "Dan", "--theme", "personal-data", "--channel", "nope",
                     "--config", str(path))
    assert code != 0 and "channel: no [channel.nope] declared" in out
    code, out = _run("subscribe", "alice", "--person", "A", "--email", "a@x.fr", "--theme", "personal-data", "--channel",
                     "mail", "--config", str(path))
    assert code != 0 and "subscription name used twice" in out
    _, listing = _run("subscriptions", "--config", str(path))
    assert "carla" in listing and "weekly 08:00 thursday" in listing and "[database]" in listing
    code, out = _run("subscribe", "carla", "--remove", "--config", str(path))
    assert "removed carla" in out and "carla" not in _run("subscriptions", "--config", str(path))[1]
    code, out = _run("notify-test", "mail", "--to", "moi@x.fr", "--config", str(path), "--now", NOW)
    assert code == 0 and "sent:" in out and str(sink.messages[0]["To"]) == "watcher <moi@x.fr>"


def test_dry_run_shows_recipients_channels_titles_totals_and_the_baseline(tmp_path: Path, sink: SmtpSink) -> None:
    path = _config(tmp_path, sink.port)
    store = Store(load_config(path).database)
    rows = cnil_items()
    store.db.execute("update items set published = '2026-01-05T09:00:00Z', legal_date = '2026-01-05' where id = ?",
                     [rows[1]["id"]])  # five months old: already there, not news
    store.close()
    code, out = _run("deliver", "--dry-run", "--config", str(path), "--now", NOW)
    assert code == 0 and sink.messages == []
    assert "would plan  instant  to alice@cabinet-test.fr via mail [alice]: 1 item(s)" in out
    assert f"    - {rows[5]['title']}" in out and rows[1]["title"] not in out
    assert "would plan  daily    to bob@cabinet-test.fr via mail [bob]: 1 item(s)" in out
    assert "total: 2 message(s) (2 to plan, 0 already due; 1 daily, 1 instant) carrying 1 item(s) to 2 recipient(s)" \
        in out
    assert "baseline: 1 match(es) not alerted" in out and "subscription: alice 1)" in out
    code, out = _run("deliver", "--dry-run", "--since", "2026-01-01", "--config", str(path), "--now", NOW)
    assert "would plan  since    to alice@cabinet-test.fr via mail [alice]: 2 item(s)" in out
    assert f"    - {rows[1]['title']}" in out
    store = Store(load_config(path).database)
    assert store.deliveries(limit=None) == [] and store.db.table("subscription_starts").count == 0  # wrote nothing
    store.close()
