"""The daemon's classifier: built on first use, shared while used, freed after the idle time (time passed in)."""

from __future__ import annotations

import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_notify_support import cnil_items

from classifiers.hybrid import build_classifier
from classifiers.keyword import KeywordClassifier
from watcher.config.settings import Settings
from watcher.errors import ClassifierError
from watcher.model_holder import ModelHolder, ProcessClassifier
from watcher.records import item_from_row

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


def test_the_model_runs_in_a_child_process_that_ends_when_released(tmp_path: Path) -> None:
    """The real classifier (the e5 model and its head) in a spawned process: it tags real CNIL items as the
    classifier does (model, version, scores); released, the process is gone, and all of the model's memory with it."""
    items = [item_from_row(r) for r in cnil_items()]
    settings = Settings()
    holder = ModelHolder(lambda: ProcessClassifier(settings, str(tmp_path / "watcher.db")), idle=60)
    remote = holder.get(T0)
    assert isinstance(remote, ProcessClassifier) and remote.name == "hybrid"
    tags = remote.classify(items)
    assert len(tags) == len(items) and any(tags)
    assert all(t.model.startswith("hybrid/") and t.model_version.startswith(remote.version) and 0 <= t.score <= 1
               for item_tags in tags for t in item_tags)
    local = build_classifier(settings, store=None)  # scope is rules only: no model needed to compare
    assert [remote.scope(i) for i in items] == [local.scope(i) for i in items]
    process = remote._process
    assert holder.release_if_idle(T0 + timedelta(minutes=2)) and not process.is_alive() and process.exitcode == 0


def test_a_model_that_cannot_load_is_a_classifier_error(tmp_path: Path) -> None:
    remote = ProcessClassifier(Settings(model="no-such-model-anywhere"), str(tmp_path / "watcher.db"))
    try:
        with pytest.raises(ClassifierError, match="the model process failed"):
            remote.classify([item_from_row(cnil_items()[0])])
    finally:
        remote.close()
