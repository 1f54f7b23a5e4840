"""Secrets never printed: the scrubber, the logging filter, and the real CLI with ``-v`` grepped for the secret."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import httpx
import pytest
from test_notify_support import HookServer, cnil_items, seed, subscription, write_config

from store import Store
from watcher.config import load_config
from watcher.util.redact import RedactingFilter, install, redact, register

ROOT = Path(__file__).resolve().parents[1]
SLACK = '[channel.team]\nkind = "slack"\nwebhook_env = "WATCHER_TEST_SLACK_WEBHOOK"\ntimeout = 5\n'


@pytest.mark.parametrize(("text", "shown"), [
    ('HTTP Request: POST http://127.0.0.1:80/services/T0LOCAL/B0LOCAL/secrettoken "HTTP/1.1 200 OK"',
     'HTTP Request: POST http://127.0.0.1:80/services/**** "HTTP/1.1 200 OK"'),
    ("https://hooks.slack.com/services/T0123/B456/XyZ789abc", "https://hooks.slack.com/services/****"),
    ("GET https://user:pa55@example.org/feed?x=1&token=abc123&page=2", "GET https://****@example.org/feed?x=1&token=****&page=2"),
    ("https://a.example/?apikey=SEKRET&q=santé", "https://a.example/?apikey=****&q=santé"),
    ("{'Authorization': 'Bearer abc.def', 'accept': 'x'}", "{'Authorization': '****', 'accept': 'x'}"),
    ("Authorization: Basic dXNlcjpwYXNz", "Authorization: ****"),
    ("apprise could not notify tgram://123456:ABCDEF/987", "apprise could not notify tgram://****"),
    ("mailtos://user:pw@gmail.com?to=x@y.fr", "mailtos://****"),
    ("fetched https://www.cnil.fr/fr/rss.xml in 2 s", "fetched https://www.cnil.fr/fr/rss.xml in 2 s"),
])
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_a_registered_secret_is_masked_anywhere() -> None:
    register("s3cr3t-smtp-password")
    assert redact("login failed for veille with s3cr3t-smtp-password") == "login failed for veille with ****"


def test_the_filter_masks_arguments_and_tracebacks_of_any_logger() -> None:
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    install(logger)
    install(logger)  # once only
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    try:
        logger.warning("posting to %s", "https://hooks.slack.com/services/T1/B2/abcdefgh")
        try:
            raise ValueError("bad https://u:p@example.org/x?token=zzz")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "abcdefgh" not in out and "u:p@" not in out and "zzz" not in out
    assert "services/****" in out and "ValueError: bad https://****@example.org/x?token=****" in out


def _watcher(*args: str, env: dict[str, str]) -> str:
    """Run the real CLI in its own process; its stdout and stderr together."""
    done = subprocess.run([sys.executable, "-m", "watcher", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=120)
    return done.stdout + done.stderr


def test_verbose_deliver_and_notify_test_never_print_the_webhook(tmp_path: Path) -> None:
    hook = HookServer()
    with hook.running() as url:
        secret = url.rsplit("/", 3)[-3:]  # T0LOCAL/B0LOCAL/secrettoken: the path is the secret
        env = {"WATCHER_TEST_SLACK_WEBHOOK": url}
        path = write_config(tmp_path, SLACK + subscription("ines", channel="team", themes=["health-data"],
                                                           slack="#veille"))
        store = Store(load_config(path).database)
        rows = cnil_items()[:2]
        seed(store, rows, {rows[0]["id"]: [("health-data", 0.9)]})
        store.close()
        delivered = _watcher("--config", str(path), "-v", "deliver", "--now", "2026-06-16T18:00:00Z", env=env)
        tested = _watcher("--config", str(path), "-v", "notify-test", "team", env=env)
    assert len(hook.posts) == 2, delivered + tested
    for output in (delivered, tested):
        assert "HTTP Request: POST http://127.0.0.1:" in output, "httpx's line is there, masked"
        assert "secrettoken" not in output and "/".join(secret) not in output and url not in output
    assert "sent 1" in delivered and "sent: " in tested


def test_a_failing_webhook_error_does_not_show_it_either(tmp_path: Path) -> None:
    hook = HookServer(replies=[(500, {}, "boom")])
    with hook.running() as url:
        path = write_config(tmp_path, SLACK)
        output = _watcher("--config", str(path), "-v", "notify-test", "team",
                          env={"WATCHER_TEST_SLACK_WEBHOOK": url})
    assert "HTTP 500 boom" in output and "secrettoken" not in output


def test_httpx_request_line_through_the_root_handler(tmp_path: Path) -> None:
    """The filter sits on the handler, so it also sees httpx's own logger (propagated records)."""
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    level = logging.getLogger("httpx").level
    logging.getLogger("httpx").setLevel(logging.INFO)
    install()
    hook = HookServer()
    try:
        with hook.running() as url, httpx.Client() as client:
            client.post(url, json={"text": "x"})
    finally:
        root.removeHandler(handler)
        logging.getLogger("httpx").setLevel(level)
    assert "HTTP Request: POST" in stream.getvalue() and "secrettoken" not in stream.getvalue()
