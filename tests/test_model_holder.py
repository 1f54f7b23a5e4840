"""The daemon's classifier: built on first use, shared while used, freed after the idle time (time passed in)."""

from __future__ import annotations

import weakref
from datetime import UTC, datetime, timedelta

from classifiers.keyword import KeywordClassifier
from watcher.model_holder import ModelHolder

T0 = datetime(2026, 6, 16, 8, 0, tzinfo=UTC)


def test_the_classifier_is_kept_while_used_and_freed_after_the_idle_time() -> None:
    holder = ModelHolder(KeywordClassifier, idle=900)
    assert not holder.loaded and holder.release_if_idle(T0) is False
    first = holder.get(T0)
    assert holder.get(T0 + timedelta(minutes=10)) is first and holder.loads == 1
    assert holder.release_if_idle(T0 + timedelta(minutes=20)) is False  # used 10 minutes ago
    ref = weakref.ref(first)
    del first
    assert holder.release_if_idle(T0 + timedelta(minutes=25)) is True
    assert ref() is None and not holder.loaded  # nothing else keeps it alive
    again = holder.get(T0 + timedelta(hours=1))
    assert isinstance(again, KeywordClassifier) and holder.loads == 2
    assert holder.describe()["loaded"] is True and holder.describe()["last_used"] == "2026-06-16T09:00:00+00:00"
