"""``watcher status``: last runs, next runs, failures, incidents, the daemon and its model, from a real archive."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_notify_support import CNIL_FEED

from store import Store
from watcher.config import load_config
from watcher.daemon.instance import DaemonLock
from watcher.daemon.status import gather, render
from watcher.http import HttpClient
from watcher.pipeline import ingest
from watcher.replay import ReplayServer

T0 = datetime(2026, 6, 16, 8, 0, tzinfo=UTC)
GOOD, BAD = "https://www.cnil.fr/fr/rss.xml", "https://www.ansm.sante.fr/rss/actualites"


def _archive(tmp_path: Path, replay_server: ReplayServer, http: HttpClient) -> tuple[Path, Store]:
    path = tmp_path / "sources.toml"
    path.write_text('[settings]\ndatabase = "watcher.db"\n'
                    f'[[source]]\nname = "cnil"\nkind = "feed"\nurl = "{GOOD}"\ninterval = "3h"\n'
                    f'[[source]]\nname = "ansm"\nkind = "feed"\nurl = "{BAD}"\ninterval = "1h"\n'
                    f'[[source]]\nname = "off"\nkind = "feed"\nurl = "{BAD}"\nenabled = false\n', encoding="utf-8")
    replay_server.add(GOOD, body=CNIL_FEED.read_bytes(), headers={"content-type": "application/rss+xml"})
    replay_server.add(BAD, status=503)
    config = load_config(path)
    store = Store(config.database)
    for hour in range(3):
        ingest(config, store, http, T0 + timedelta(hours=hour), config.sources[:2])
    store.open_incident("ansm", "failing", now="2026-06-16T10:00:00Z", detail="3 failed fetches in a row",
                        delivery=None)
    return path, store


def test_status_without_a_daemon_says_when_a_run_would_poll(
        tmp_path: Path, replay_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    path, store = _archive(tmp_path, replay_server, http_client(retries=0))
    summary = gather(store, load_config(path), T0 + timedelta(hours=3))
    by_name = {s["name"]: s for s in summary["sources"]}
    assert summary["daemon"] == {"running": False, "jobs": {}, "model": None}
    assert by_name["cnil"]["outcome"] == "ok" and by_name["cnil"]["next_run"] == "2026-06-16T13:00:00Z"
    assert by_name["ansm"]["failures_in_a_row"] == 3 and by_name["ansm"]["next_run"] == "now"
    assert by_name["ansm"]["incidents"] == ["failing"] and "503" in by_name["ansm"]["last_error"]
    text = "\n".join(render(summary))
    assert "daemon: not running" in text and "INCIDENT ansm failing since 2026-06-16T10:00:00Z" in text
    assert "off                    (disabled)" in text and "deliveries: none" in text


def test_status_with_a_running_daemon_shows_its_next_runs_and_model(
        tmp_path: Path, replay_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    path, store = _archive(tmp_path, replay_server, http_client(retries=0))
    config = load_config(path)
    lock = DaemonLock(config.database).acquire(T0)
    try:
        lock.update(next_runs={"source:cnil": "2026-06-16T11:02:00+00:00", "alerts": "2026-06-16T11:05:00+00:00"},
                    model={"loaded": True, "loaded_at": "2026-06-16T10:59:00+00:00", "idle_release": 900})
        summary = gather(store, config, T0 + timedelta(hours=3))
    finally:
        lock.release()
    assert summary["daemon"]["running"] and summary["daemon"]["jobs"] == {"alerts": "2026-06-16T11:05:00+00:00"}
    assert {s["name"]: s["next_run"] for s in summary["sources"]}["cnil"] == "2026-06-16T11:02:00+00:00"
    text = "\n".join(render(summary))
    assert "model loaded since 2026-06-16T10:59:00+00:00, released after 900 s idle" in text
