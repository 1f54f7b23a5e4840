"""Slack (incoming webhook) and apprise alerts against a real local HTTP endpoint, faults included."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_notify_support import HookServer, cnil_items, seed, subscription, write_config

from store import Store
from watcher.config import load_config
from watcher.notify import build_channel, mask
from watcher.notify.base import Message
from watcher.notify.deliver import Hooks
from watcher.notify.service import deliver, load_alerts
from watcher.util.errors import NotifyError

T0 = datetime(2026, 6, 16, 18, 0, tzinfo=UTC)
SLACK = '[channel.team]\nkind = "slack"\nwebhook_env = "WATCHER_TEST_SLACK_WEBHOOK"\ntimeout = 5\n'
HOSTILE = "Sanction <!channel> <@U024BE7LH> & *gras* _penché_ ~barré~ `code` @here <script>x</script>"


def _setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, alerts: str = "") -> tuple[Path, Store]:
    monkeypatch.setenv("WATCHER_TEST_SLACK_WEBHOOK", url)
    path = write_config(tmp_path, SLACK + subscription("ines", channel="team", themes=["health-data"], slack="#veille"),
                        settings=alerts)
    store = Store(load_config(path).database)
    rows = cnil_items()[:2]
    rows[0]["title"] = HOSTILE
    rows[1]["url"] = "javascript:alert(1)"
    seed(store, rows, {rows[0]["id"]: [("health-data", 0.9)], rows[1]["id"]: [("health-data", 0.7)]})
    return path, store


def _all_text(payload: dict) -> str:
    return "\n".join(b["text"]["text"] for b in payload["blocks"] if "text" in b) + "\n" + "\n".join(
        e["text"] for b in payload["blocks"] for e in b.get("elements", []))


def test_block_kit_posts_arrive_inert_and_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = HookServer()
    with hook.running() as url:
        path, store = _setup(tmp_path, monkeypatch, url)
        outcome = deliver(store, load_config(path), T0)
        again = deliver(store, load_config(path), T0 + timedelta(hours=1))
    assert len(outcome.report.sent) == 2 and again.report.sent == [] and len(hook.posts) == 2
    hostile = next(p for p in hook.posts if "Sanction" in _all_text(p))
    assert hostile["channel"] == "#veille" and hostile["blocks"][0]["type"] == "header"
    text = _all_text(hostile)
    assert "<!channel>" not in text and "<@U024BE7LH>" not in text and "<script>" not in text
    assert "&lt;!channel&gt;" in text and "&lt;@U024BE7LH&gt;" in text and "&amp;" in text
    assert not re.search(r"[*_~`]", text.split("\n", 2)[2].split("|", 1)[1].split(">", 1)[0])  # the title
    assert "@here" not in text and "@\u200bhere" in text
    assert "<https://archive.example.org/watcher/items/cnil~3A" in text
    other = next(p for p in hook.posts if p is not hostile)
    assert "javascript:" not in _all_text(other)  # not a link: just the title
    assert all(len(b["text"]["text"]) <= 3000 for p in hook.posts for b in p["blocks"] if b["type"] == "section")


def test_500_is_retried_and_429_honours_retry_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = HookServer(replies=[(500, {}, "boom"), (429, {"Retry-After": "900"}, "rate_limited")])
    with hook.running() as url:
        path, store = _setup(tmp_path, monkeypatch, url, alerts='[alerts]\nretry_after = "1m"')
        first = deliver(store, load_config(path), T0)
        errors = sorted(reason for _, reason in first.report.failed)
        rows = {r["last_error"]: r for r in store.deliveries("failed")}
        later = deliver(store, load_config(path), T0 + timedelta(minutes=16))
    assert len(first.report.failed) == 2 and "HTTP 500 boom" in errors[0] and "429" in errors[1]
    assert rows["[team] HTTP 500 boom"]["next_attempt_at"] == "2026-06-16T18:01:00Z"  # backoff 1 min
    assert rows["[team] rate limited (429) rate_limited"]["next_attempt_at"] == "2026-06-16T18:15:00Z"
    assert len(later.report.sent) == 2 and len(hook.posts) == 4 and store.delivery_counts() == {"sent": 2}


def test_a_4xx_is_permanent_and_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = HookServer(replies=[(404, {}, "no_service"), (404, {}, "no_service")])
    with hook.running() as url:
        path, store = _setup(tmp_path, monkeypatch, url)
        outcome = deliver(store, load_config(path), T0)
    assert len(outcome.report.held) == 2 and "HTTP 404 no_service" in outcome.report.held[0][1]
    assert store.delivery_counts() == {"held": 2}
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("watcher.db*"))
    assert b"secrettoken" not in stored and b"/services/" not in stored


def test_an_interrupted_slack_send_is_held_not_resent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Crash(Exception):
        pass

    def crash(key: str) -> None:
        raise Crash(key)

    hook = HookServer()
    with hook.running() as url:
        path, store = _setup(tmp_path, monkeypatch, url)
        with pytest.raises(Crash):  # the process "dies" after Slack accepted, before the ledger records it
            deliver(store, load_config(path), T0, hooks=Hooks(after_send=crash))
        assert store.delivery_counts() == {"sending": 1, "pending": 1}
        soon = deliver(store, load_config(path), T0 + timedelta(minutes=1))  # not stale yet: left alone
        late = deliver(store, load_config(path), T0 + timedelta(minutes=20))
    assert len(soon.report.sent) == 1 and late.report.sent == [] and len(late.report.held) == 1
    assert "interrupted while sending" in late.report.held[0][1]
    assert len(hook.posts) == 2 and store.delivery_counts() == {"sent": 1, "held": 1}
    held = store.deliveries("held")[0]["key"]
    assert store.confirm_sent(held, now="2026-06-16T19:00:00Z") and store.delivery_counts() == {"sent": 2}


def test_secrets_are_masked_when_printed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = "https://hooks.slack.com/services/T0ABCDEF/B0123/abcdefSECRET"
    monkeypatch.setenv("WATCHER_TEST_SLACK_WEBHOOK", secret)
    path = write_config(tmp_path, SLACK + subscription("jo", channel="team"))
    channel = build_channel(load_alerts(load_config(path)).channel("team"))
    assert mask(secret) == "https://hooks.slack.com/services/T0…/****"
    assert "SECRET" not in channel.describe() and "T0…/****" in channel.describe()
    assert mask("hunter2") == "****" and "pw" not in mask("mailtos://user:pw@smtp.example.org")


def test_apprise_channel_posts_to_a_local_json_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = HookServer(replies=[(200, {}, "ok"), (500, {}, "down")])
    with hook.running() as url:
        monkeypatch.setenv("WATCHER_TEST_APPRISE_URL", url.replace("http://", "json://"))
        path = write_config(tmp_path, '[channel.any]\nkind = "apprise"\nurl_env = "WATCHER_TEST_APPRISE_URL"\n'
                                      + subscription("kim", channel="any"))
        channel = build_channel(load_alerts(load_config(path)).channel("any"))
        message = Message(key="k", subject="Objet", text="Corps du message", html="<p>x</p>", slack={},
                          person="Kim")
        channel.send(message)
        with pytest.raises(NotifyError) as failure:
            channel.send(message)
    assert hook.posts[0]["title"] == "Objet" and hook.posts[0]["message"] == "Corps du message"
    assert not failure.value.permanent and "secrettoken" not in str(failure.value)
