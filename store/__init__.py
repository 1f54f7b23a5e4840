"""The archive. Only this package speaks SQL; it imports nothing from ``watcher`` or ``classifiers``."""

from pathlib import Path

from store.errors import ArchiveBusy, ArchiveFull, StoreError
from store.lock import writer_lock
from store.store import Store, UpsertResult

METADATA_PATH = Path(__file__).with_name("metadata.json")

__all__ = ["METADATA_PATH", "ArchiveBusy", "ArchiveFull", "Store", "StoreError", "UpsertResult", "writer_lock"]
