"""The daemon's classifier: built on first use, shared while used, freed after the idle time (time passed in)."""

from __future__ import annotations

import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_notify_support import cnil_items

from classifiers.decide.base import Classified
from classifiers.decide.hybrid import ModelSettings
from classifiers.decide.keyword import KeywordClassifier
from watcher.daemon.model_holder import ModelHolder, ProcessClassifier
from watcher.records import item_from_row
from watcher.util.errors import ClassifierError

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


def test_the_model_runs_in_a_child_process_that_ends_when_released() -> None:
    """The real classifier (the e5 model and its head) in a spawned process: it classifies real CNIL items as the
    classifier does (themes with scores and reasons, why an untagged item is in scope, whether the model was
    consulted); released, the process is gone, and all of the model's memory with it."""
    items = [item_from_row(r) for r in cnil_items()]
    holder = ModelHolder(lambda: ProcessClassifier(ModelSettings()), idle=60)
    remote = holder.get(T0)
    assert isinstance(remote, ProcessClassifier) and remote.name == "hybrid"
    results = remote.classify(items)
    assert len(results) == len(items) and all(isinstance(r, Classified) for r in results)
    assert any(r.tags for r in results) and all(0 <= t.score <= 1 and t.reason for r in results for t in r.tags)
    assert any(r.model.startswith("consulted") for r in results) and "e5" in remote.version
    process = remote._process
    assert holder.release_if_idle(T0 + timedelta(minutes=2)) and not process.is_alive() and process.exitcode == 0


def test_a_classifier_that_cannot_be_built_is_a_classifier_error(tmp_path: Path) -> None:
    """The child reports why it could not build the classifier (here: a themes file that does not exist); the
    daemon's classification step then logs it and the alerts go on (``pipeline._classify_safely``)."""
    missing = tmp_path / "no-such-themes.toml"
    with pytest.raises(ClassifierError, match="the model process failed: .*no-such-themes.toml"):
        ProcessClassifier(ModelSettings(model="none", themes=str(missing)))
