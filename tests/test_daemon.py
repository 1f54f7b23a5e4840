"""The daemon: its jobs and triggers, a poll that classifies and alerts only when it brought something, a real
daemon process that tells the admin about a failing source, refuses a second daemon, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_notify_support import CNIL_FEED, SmtpSink, email_channel, signalling_sink, subscription

from classifiers.decide.keyword import KeywordClassifier
from watcher.daemon.instance import read_state, state_path
from watcher.daemon.model_holder import ModelHolder
from watcher.daemon.polling import PollTrigger
from watcher.daemon.schedule import Daemon, DaemonApp
from watcher.replay import ReplayServer

ROOT = Path(__file__).resolve().parents[1]
CNIL_URL = "https://www.cnil.fr/fr/rss.xml"
RSS = {"content-type": "application/rss+xml"}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = signalling_sink()
    with server:
        yield server


def _config(folder: Path, body: str) -> Path:
    path = folder / "sources.toml"
    path.write_text('[settings]\ndatabase = "watcher.db"\nhost_delay = 0.0\nrespect_robots = false\nretries = 0\n'
                    'failure_alert_after = 2\n' + body, encoding="utf-8")
    return path


def test_the_jobs_and_their_triggers(tmp_path: Path) -> None:
    path = _config(tmp_path, '[[source]]\nname = "jorf"\nkind = "dila-jorf"\n'
                   'url = "https://echanges.dila.gouv.fr/OPENDATA/JORFSIMPLE/"\ninterval = "1h"\n'
                   'windows = ["00:15-01:45", "20:45-22:30"]\n'
                   '[[source]]\nname = "off"\nkind = "feed"\nurl = "https://example.org/rss"\nenabled = false\n'
                   + email_channel(25) + subscription("alice", cadence="daily", at="07:30")
                   + subscription("bob", cadence="weekly", day="lundi", at="08:00"))
    daemon = Daemon(DaemonApp(path))
    jobs = {job.id: job for job in daemon.build().get_jobs()}
    assert set(jobs) == {"source:jorf", "alerts", "digest:daily:07:30", "digest:weekly:mon:08:00", "model"}
    trigger = jobs["source:jorf"].trigger
    assert isinstance(trigger, PollTrigger) and trigger.every == 600 and len(trigger.windows) == 2
    assert "hour='7'" in str(jobs["digest:daily:07:30"].trigger) and "Europe/Paris" in str(
        jobs["digest:daily:07:30"].trigger.timezone)
    assert all(job.coalesce for job in jobs.values())


def test_a_poll_classifies_and_alerts_only_when_it_brought_something(
        tmp_path: Path, sink: SmtpSink, replay_server: ReplayServer) -> None:
    replay_server.add(CNIL_URL, body=CNIL_FEED.read_bytes(), headers={**RSS, "etag": '"v1"'})
    # the daemon runs on the real clock: the recorded June items count as news, not as a first run's baseline
    path = _config(tmp_path, f'[[source]]\nname = "cnil"\nkind = "feed"\nurl = "{CNIL_URL}"\n'
                   + '[alerts]\nbaseline_horizon = "3650d"\n'
                   + email_channel(sink.port) + subscription("alice", themes=["personal-data", "health-data"]))
    app = DaemonApp(path, url_map=replay_server.url_map)
    app.holder = ModelHolder(KeywordClassifier, idle=900)
    daemon = Daemon(app)
    daemon.poll("cnil")
    first = len(sink.messages)
    assert app.holder.loads == 1 and list(app.store.items_to_classify()) == []
    assert first >= 1  # the keyword classifier tags some of the six CNIL items
    daemon.poll("cnil")  # 304: nothing new, nothing classified, nothing sent
    assert len(sink.messages) == first and app.holder.loads == 1
    app.close()


def test_a_daemon_process_reports_a_failing_source_refuses_a_second_and_stops_on_sigterm(
        tmp_path: Path, sink: SmtpSink, replay_server: ReplayServer) -> None:
    replay_server.add("https://www.cnil.fr/fr/rss.xml", status=503)
    url = replay_server.url_map(CNIL_URL)
    path = _config(tmp_path, f'[[source]]\nname = "cnil"\nkind = "feed"\nurl = "{url}"\ninterval = "1s"\n'
                   + email_channel(sink.port)
                   + '[admin]\nchannel = "mail"\nemail = "exploitation@cabinet-test.fr"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "watcher", "--config", str(path), "daemon"]
    first = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stderr is not None and "watcher daemon:" in first.stderr.readline()
        assert sink.handler.arrived.wait(60)  # type: ignore[attr-defined]  # the admin's message
        second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and f"(pid {first.pid}); exiting" in second.stderr
        assert "Traceback" not in second.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
    (mail,) = sink.messages
    assert "cnil" in str(mail["Subject"]) and mail["X-Watcher-Incident"] == "cnil failing open"
    state = read_state(state_path(tmp_path / "watcher.db"))
    assert state["stopped"] is True and "source:cnil" in state["next_runs"]
