"""One writer at a time: an advisory lock per archive, on the file ``<archive>.lock`` beside it.

Every command that writes the archive (fetch, run, migrate, classify, deliver, the daemon's jobs) holds this lock
while it writes; a second one waits for it (up to a timeout) or exits at once, saying which run holds the archive
and since when. Reading commands (search, sources, serve) never take it: SQLite's WAL journal lets them read while
a writer writes. The lock is the operating system's (``flock`` on POSIX, ``msvcrt.locking`` on Windows), so it is
released when its holder exits, even by ``kill -9``; the pid and time written in the file are only for the message.

Within one process the lock is re-entrant per archive (a command holding it may open the store, whose migration
takes it again).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from store.errors import ArchiveBusy, StoreError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

DEFAULT_WAIT = 600.0
_POLL = 0.05
_held: dict[str, list[int]] = {}  # archive path -> [file descriptor, depth]
_guard = threading.Lock()


def lock_path(database: str | Path) -> Path:
    return Path(f"{os.path.abspath(database)}.lock")


def try_lock(fd: int, *, shared: bool = False) -> bool:
    """Take the operating system's advisory lock on the open file ``fd`` without waiting; False if another
    process holds it. ``shared`` (POSIX) lets several holders share it; Windows has no shared lock: exclusive."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        else:
            os.lseek(fd, 0, os.SEEK_SET)  # msvcrt locks bytes from the current position: always the first one
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def unlock(fd: int) -> None:
    """Give back the lock ``try_lock`` took on ``fd``."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def holder(database: str | Path) -> str:
    """Who holds the lock, as written by its holder: ``since HH:MM (pid N)``, or ``""`` if unknown."""
    try:
        pid, started = lock_path(database).read_text(encoding="ascii").split()[:2]
        return f"since {datetime.fromisoformat(started).astimezone().strftime('%H:%M')} (pid {int(pid)})"
    except (OSError, ValueError):
        return ""


def _busy(database: str, action: str) -> str:
    who = holder(database)
    return f"another watcher run holds the archive{' ' + who if who else ''}; {action}"


def _acquire(database: str, fd: int, wait: float, on_wait: Callable[[str], None] | None) -> None:
    if try_lock(fd):
        return
    if wait <= 0:
        raise ArchiveBusy(database, _busy(database, "exiting (give --lock-wait SECONDS to wait for it)"))
    if on_wait:
        on_wait(str(ArchiveBusy(database, _busy(database, f"waiting up to {wait:g} s"))))
    deadline = time.monotonic() + wait
    while not try_lock(fd):
        if time.monotonic() >= deadline:
            raise ArchiveBusy(database, _busy(database, f"exiting after waiting {wait:g} s"))
        time.sleep(_POLL)


def _stamp(fd: int) -> None:
    """Write ``pid ISO-time`` into the lock file, for the message a waiting run prints."""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()} {datetime.now().astimezone().isoformat(timespec='seconds')}\n".encode("ascii"))


@contextmanager
def writer_lock(database: str | Path, *, wait: float = DEFAULT_WAIT,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the archive's writer lock for the block. If another process holds it: wait up to ``wait`` seconds
    (telling ``on_wait`` once, with the message to show) then raise ``ArchiveBusy``; ``wait=0`` raises at once. ``":memory:"`` needs none."""
    if str(database) == ":memory:":
        yield
        return
    key = os.path.abspath(database)
    with _guard:
        entry = _held.get(key)
        if entry:
            entry[1] += 1
    if entry:
        try:
            yield
        finally:
            _release(key)
        return
    try:
        fd = os.open(lock_path(key), os.O_RDWR | os.O_CREAT, 0o600)  # owner only, like the archive
    except OSError as exc:
        raise StoreError(key, f"cannot create the lock file {lock_path(key)} ({exc.strerror}); give the user "
                              "running watcher write access to the archive's folder") from exc
    try:
        _acquire(key, fd, wait, on_wait)
    except BaseException:
        os.close(fd)
        raise
    _stamp(fd)
    with _guard:
        _held[key] = [fd, 1]
    try:
        yield
    finally:
        _release(key)


def _release(key: str) -> None:
    with _guard:
        entry = _held[key]
        entry[1] -= 1
        if entry[1]:
            return
        del _held[key]
    unlock(entry[0])
    os.close(entry[0])
