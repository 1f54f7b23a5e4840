"""The classifier (and its model) kept in memory while there is work, released after ``idle`` seconds unused.

The daemon classifies after each fetch that brought something. Loading the model costs seconds and hundreds of
MB; keeping it forever costs the memory all day for a few minutes of work. ``ModelHolder`` builds the classifier
on first use, hands the same one out while it keeps being used, and drops it once it has been idle for ``idle``
seconds (``release_if_idle``, called by a daemon job). Time is passed in.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from classifiers.base import Classifier


class ModelHolder:
    def __init__(self, factory: Callable[[], Classifier], idle: float):
        self._factory, self.idle = factory, idle
        self._classifier: Classifier | None = None
        self._lock = threading.Lock()
        self.loaded_at: datetime | None = None
        self.last_used: datetime | None = None
        self.loads = 0

    def get(self, now: datetime) -> Classifier:
        with self._lock:
            if self._classifier is None:
                self._classifier = self._factory()
                self.loaded_at, self.loads = now, self.loads + 1
            self.last_used = now
            return self._classifier

    def factory(self, now: Callable[[], datetime]) -> Callable[[], Classifier]:
        """A classifier factory for ``classify_pending``: the held classifier, built if needed."""
        return lambda: self.get(now())

    def release_if_idle(self, now: datetime) -> bool:
        """Drop the classifier if unused for ``idle`` seconds; True if it was dropped."""
        with self._lock:
            if self._classifier is None or self.last_used is None:
                return False
            if (now - self.last_used).total_seconds() < self.idle:
                return False
            self._classifier, self.loaded_at = None, None
        gc.collect()  # the model's tensors are freed now, not at some later collection
        return True

    @property
    def loaded(self) -> bool:
        return self._classifier is not None

    def describe(self) -> dict[str, Any]:
        """The model's state, for ``watcher status``."""
        return {"loaded": self.loaded, "loaded_at": self.loaded_at.isoformat() if self.loaded_at else None,
                "last_used": self.last_used.isoformat() if self.last_used else None, "idle_release": self.idle,
                "loads": self.loads}
