"""The archive. Only this package speaks SQL; it imports nothing from ``watcher`` or ``classifiers``."""

from store.store import Store, UpsertResult

__all__ = ["Store", "UpsertResult"]
