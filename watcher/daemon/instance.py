"""One daemon per archive: an advisory lock on ``<archive>.daemon`` held for the daemon's whole life.

The lock file also says who holds it and what it is doing (JSON, rewritten after each job): process id, start
time, the next runs, the model's state. ``watcher status`` reads it; when no process holds the lock the file is
only a record of the last daemon. The lock is the operating system's, taken as the archive's writer lock is
(``store.lock.try_lock``: ``flock`` on POSIX, ``msvcrt.locking`` on Windows), so it is dropped when the process
dies, even on SIGKILL, and a stale file never blocks a new daemon.

This lock says "a daemon runs"; it is not the archive's writer lock (each job's writes take that one, so a cron
``watcher fetch`` can still run between two jobs).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from store.lock import try_lock, unlock
from watcher.util.errors import WatcherError


class AlreadyRunning(WatcherError):
    """Another daemon holds this archive."""


def state_path(database: Path) -> Path:
    return database.with_name(database.name + ".daemon")


class DaemonLock:
    """Held from ``acquire`` until ``release`` (or the end of the process)."""

    def __init__(self, database: Path):
        self.path = state_path(database)
        self._file: IO[str] | None = None
        self.state: dict[str, Any] = {}

    def acquire(self, now: datetime) -> DaemonLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open while the lock is held
        if not try_lock(handle.fileno()):
            holder = read_state(self.path)
            handle.close()
            raise AlreadyRunning(f"another watcher daemon holds the archive {self.path.with_suffix('')} since "
                                 f"{_hhmm(holder.get('started'))} (pid {holder.get('pid', '?')}); exiting") from None
        self._file = handle
        self.update(pid=os.getpid(), started=now.isoformat())
        return self

    def update(self, **state: Any) -> None:
        """Add to the state the file shows (rewritten in place: the same open file keeps the lock)."""
        self.state.update(state)
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps(self.state, ensure_ascii=False, sort_keys=True, default=str))
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self.update(stopped=True)
            unlock(self._file.fileno())
            self._file.close()
            self._file = None


def read_state(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def running(database: Path) -> bool:
    """True if a daemon holds the lock of this archive now."""
    path = state_path(database)
    if not path.exists():
        return False
    with open(path, encoding="utf-8") as handle:
        if not try_lock(handle.fileno(), shared=True):
            return True
        unlock(handle.fileno())
    return False


def _hhmm(stamp: Any) -> str:
    try:
        return datetime.fromisoformat(str(stamp)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return "?"


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """While inside, SIGTERM and SIGINT set ``stop`` (the work finishes its current step and returns) instead of
    killing the process; the previous handlers come back after. Only the main thread can install handlers: elsewhere
    this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
