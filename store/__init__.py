"""The archive. Only this package speaks SQL; it imports nothing from ``watcher`` or ``classifiers``."""

import sys
from pathlib import Path

if "sqlite_utils" not in sys.modules and "numpy" not in sys.modules:
    # sqlite-utils imports numpy when it is installed, only to map numpy scalars to column types (the store never
    # writes one): 0.1 s of CPU in every command that never needs numpy. It is imported without it; numpy itself
    # stays importable by whoever needs it (search by meaning, the model).
    sys.modules["numpy"] = None  # type: ignore[assignment]
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["numpy"]

from store.errors import ArchiveBusy, ArchiveFull, StoreError
from store.lock import writer_lock
from store.store import Store, UpsertResult

METADATA_PATH = Path(__file__).with_name("metadata.json")

__all__ = ["METADATA_PATH", "ArchiveBusy", "ArchiveFull", "Store", "StoreError", "UpsertResult", "writer_lock"]
