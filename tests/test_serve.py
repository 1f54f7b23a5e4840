"""``watcher serve`` runs Datasette in its own process: it answers over real HTTP, and Ctrl-C or SIGTERM stops
it whole (no child process left running, the port is free again)."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest
from archive_support import LiveServer, copy_archive, write_config


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_answers_and_stops_without_leaving_a_child(tmp_path: Path, archive_built: Path,
                                                         stop_with: signal.Signals) -> None:
    database = copy_archive(archive_built, tmp_path / "db")
    server = LiveServer(write_config(tmp_path, database), env={})
    try:
        response = httpx.get(server.url + "/", follow_redirects=True, timeout=30)
        assert response.status_code == 200 and str(response.url).endswith("/watcher/items")
        assert "watcher-items" in response.text
        assert server.children() == []  # Datasette runs in the same process
    finally:
        code = server.stop(stop_with)
    assert code == 0 if stop_with == signal.SIGINT else code in (0, -signal.SIGTERM)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0  # nobody listens any more
    assert not Path(f"/proc/{server.process.pid}").exists() or server.process.returncode is not None
