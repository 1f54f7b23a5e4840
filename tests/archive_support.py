"""A real archive for the archive/newsletter/browser tests, built once per session the way `watcher demo` builds
one: the bundled recordings of the real sources (JORF, CNIL deliberations and news, ANSM, EDPB, Health Data Hub,
law firms) served by the replay server, fetched with the real HTTP client, stored, and classified by the
deterministic keyword classifier (real reasons, no model download). Each test gets its own copy of the file.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from classifiers.decide.keyword import KeywordClassifier
from store import Store
from watcher.app import App
from watcher.demo import recorded_sources
from watcher.pipeline import classify_pending, ingest
from watcher.replay import DEMO_RECORDING, ReplayServer, load_recording

REPO = Path(__file__).resolve().parents[1]
BUILT_AT = datetime(2026, 8, 20, 8, 0, tzinfo=UTC)
# the sha256-pbkdf2 hash of "correct horse battery staple" (made with `datasette hash-password`): test-only
EDITOR_PASSWORD = "correct horse battery staple"


def build_archive(folder: Path) -> Path:
    """Fetch and classify the recorded sources into ``folder/watcher.db``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "watcher.db"
    config_path = write_config(folder, database)
    with ReplayServer(DEMO_RECORDING) as server:
        app = App(config_path, url_map=server.url_map, host_delay=0.0)
        try:
            sources, _ = recorded_sources(app.config.sources, load_recording(DEMO_RECORDING))
            ingest(app.config, app.store, app.http, BUILT_AT, sources)
            classify_pending(app.store, KeywordClassifier, BUILT_AT)
        finally:
            app.close()
    return database


def write_config(folder: Path, database: Path, *, extra: str = "", public_url: str = "") -> Path:
    """The project's sources.toml with this database, a public URL and ``extra`` tables appended."""
    text = (REPO / "sources.toml").read_text(encoding="utf-8")
    text = text.replace('database = "var/watcher.db"', f'database = "{database}"\npublic_url = "{public_url}"', 1)
    path = folder / "sources.toml"
    path.write_text(text + "\n" + extra, encoding="utf-8")
    return path


def copy_archive(built: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "watcher.db"
    store = Store(built, migrate=False)  # fold the WAL into the file before copying it
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    shutil.copyfile(built, target)
    return target


def busiest_week(database: Path) -> str:
    """The ISO week with the most tagged items (the data is fixed: the same week every run)."""
    store = Store(database, migrate=False)
    try:
        rows = store.db.execute("select distinct i.id, i.published from items i join item_themes t "
                                "on t.item_id = i.id where i.published is not null").fetchall()
    finally:
        store.close()
    weeks = Counter()
    for _, published in rows:
        year, week, _ = date.fromisoformat(published[:10]).isocalendar()
        weeks[f"{year}-W{week:02d}"] += 1
    return weeks.most_common(1)[0][0]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """``watcher serve`` in a child process of the test, as a user starts it; ``url`` once it listens (its own
    "listening" line on stderr, read as it comes: no sleeping, no polling)."""

    def __init__(self, config: Path, env: dict[str, str], editors: tuple[str, ...] = ("alice",),
                 port: int | None = None, model: bool = False):
        import os
        import subprocess
        import sys

        self.port = port or free_port()
        args = [sys.executable, "-m", "watcher", "--config", str(config), "serve", "--port", str(self.port)]
        for editor in editors:
            args += ["--editor", editor]
        if not model:
            args.append("--no-model")  # the embedding model (for `watcher search --similar`) is not loaded
        self.process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                        env={**os.environ, "PYTHONPATH": str(REPO), **env})
        self.output: list[str] = []
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].split()[0].rstrip("/")
                self._drain = threading.Thread(target=self._keep_reading, daemon=True)
                self._drain.start()
                return
        raise RuntimeError("watcher serve stopped before listening:\n" + "".join(self.output))

    def _keep_reading(self) -> None:
        """Keep reading the server's stderr (a full pipe would block it), for the failure messages."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)

    def children(self) -> list[int]:
        """Process ids of the server's children (from /proc)."""
        tasks = Path(f"/proc/{self.process.pid}/task")
        return [int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split()]

    def stop(self, signal_number: int | None = None) -> int:
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal_number or signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self._drain.join(timeout=30)
        return code
