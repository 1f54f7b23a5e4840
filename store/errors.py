"""What the archive can fail with, as one line a person can act on, naming the file.

    StoreError            the archive cannot be read or written (read-only, missing folder, disk full, corrupt)
    ├── ArchiveBusy       another watcher run holds the archive's writer lock and the wait ran out
    └── ArchiveFull       the disk (or the archive's size limit) is full: nothing of the write was kept, and no
                          other write of the run can succeed either, so the run stops (exit 3) rather than go on

``store`` depends on nothing of watcher, so these do not derive from ``watcher.util.errors.WatcherError``; watcher's
error module does not import them (see there); the CLI edge catches both and turns them into ``error: <message>`` like any other.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from inspect import isfunction, isgeneratorfunction
from pathlib import Path
from typing import Any, TypeVar


class StoreError(Exception):
    """The archive at ``path`` cannot be read or written; the message says why and what to do."""

    def __init__(self, path: str, message: str):
        super().__init__(f"archive {path}: {message}")
        self.path, self.reason = path, message


class ArchiveBusy(StoreError):
    """Another process holds the writer lock of the archive (and waiting for it ran out, or was not wanted)."""


class ArchiveFull(StoreError):
    """The file system (or SQLite's page limit) is full; the write was rolled back whole."""


_FTS = ("its full-text index is damaged (the items themselves are intact); rebuild it with "
        "`watcher migrate --rebuild-fts`")
_FULL = "the disk is full; nothing of this write was kept, free some space and run again"
# (substring of SQLite's message, what a person should read): the first match wins
_REASONS = (
    ("readonly database", "the file or its folder is read-only; give the user running watcher write access to "
                          "both (SQLite writes a -wal and a -shm file beside the archive)"),
    ("database is locked", "another process keeps the archive locked (a long write or a stuck process); run "
                           "again later, or find the process with `fuser` on the file"),
    ("file is not a database", "the file is not a SQLite database (corrupt or another kind of file); restore it "
                               "from a backup or move it away to start a new archive"),
    ("disk I/O error", "the file system failed to read or write it (disk I/O error); check the disk and the "
                       "system log, then run again"),
    ("items_fts", _FTS),
    ("fts5", _FTS),
    ("malformed", "the database is corrupt; if only its full-text index is damaged, `watcher migrate --rebuild-fts` "
                  "repairs it, else restore it from a backup (`sqlite3 FILE .recover` may save the rest)"),
)


def _unopenable(path: Path) -> str:
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist; create it or correct the `database` setting"
    return (f"cannot open or create the file, or its -wal/-shm files, in {path.parent}: the folder is read-only or "
            "not writable by the user running watcher; give that user write access")


def _nearly_full(path: Path, room: int = 1 << 20) -> bool:
    """Whether the file system of ``path`` has less than ``room`` bytes left for this user."""
    try:
        stats = os.statvfs(path.parent)
    except (OSError, AttributeError):  # no statvfs (Windows), or the folder is gone
        return False
    return stats.f_bavail * stats.f_frsize < room


def explain(path: str, exc: BaseException) -> StoreError:
    """The ``StoreError`` a person reads for a SQLite or file-system error on the archive at ``path``."""
    text = str(exc)
    if "unable to open database file" in text:
        return StoreError(path, _unopenable(Path(path)))
    if "disk is full" in text or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or (
            "disk I/O error" in text and _nearly_full(Path(path))):
        return ArchiveFull(path, _FULL)  # SQLite says "disk I/O error" when the -wal or -shm cannot grow
    for needle, reason in _REASONS:
        if needle in text:
            return StoreError(path, reason)
    if isinstance(exc, PermissionError):
        return StoreError(path, f"permission denied ({exc.filename or path}); give the user running watcher "
                                "write access to the archive's folder")
    return StoreError(path, f"{type(exc).__name__}: {text}")


@contextmanager
def storage_errors(path: str) -> Iterator[None]:
    """Inside this block a ``sqlite3.Error`` or ``OSError`` becomes the ``StoreError`` that explains it."""
    try:
        yield
    except StoreError:
        raise
    except (sqlite3.Error, OSError) as exc:
        raise explain(path, exc) from exc


C = TypeVar("C", bound=type)


def _translated(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` (or generator method) with its SQLite errors raised as ``StoreError`` naming ``self.path``."""
    if isgeneratorfunction(method):
        @wraps(method)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            with storage_errors(self.path):
                yield from method(self, *args, **kwargs)
        return generator

    @wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with storage_errors(self.path):
            return method(self, *args, **kwargs)
    return wrapper


def translated_methods(cls: C) -> C:
    """The class, with every public method it has (its own and its mixins') raising ``StoreError`` instead of a
    raw ``sqlite3.Error``: the store's whole API speaks one error, whichever verb met the fault."""
    methods: dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__[:-1]):  # the most derived definition of each name wins
        methods.update((n, a) for n, a in vars(klass).items() if isfunction(a) and not n.startswith("_"))
    for name, method in methods.items():
        setattr(cls, name, _translated(method))
    return cls
