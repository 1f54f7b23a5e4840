"""End to end: the real sources.toml, the bundled replay of the real sources, the real HTTP client and store."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from classifiers.decide.base import Classified, Classifier
from classifiers.decide.keyword import KeywordClassifier
from store import Store
from watcher import pipeline
from watcher.app import App
from watcher.config import Config, SourceConfig, load_config
from watcher.http import HttpClient
from watcher.models import Collected, Item, SourceState
from watcher.pipeline import classify_pending, due_sources, ingest, run_once
from watcher.replay import ReplayServer
from watcher.util.errors import ClassifierError

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
CNIL_500 = ROOT / "tests/fixtures/cnil/bmeret_cnil_feed_scraped-actualite_500items_2026-08-19.xml"


@pytest.fixture
def config() -> Config:
    return load_config(ROOT / "sources.toml")


def _recorded(config: Config, names: Sequence[str]) -> list:
    return [config.source(n) for n in names]


DEMO_SOURCES = ("jorf", "cnil", "ansm-actualites", "ansm-securite", "vigier-avocats", "edpb", "eurlex-oj")


def test_demo_replay_ingests_every_recorded_source_and_records_the_bot_wall(
        config: Config, demo_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    store = Store(":memory:")
    http = http_client(server=demo_server)
    reports = {r.name: r for r in ingest(config, store, http, NOW, _recorded(config, DEMO_SOURCES))}
    assert reports["cnil"].new == 500 and reports["jorf"].new == 2 and reports["edpb"].new == 10
    assert reports["eurlex-oj"].outcome == "failed" and "bot wall" in reports["eurlex-oj"].error
    assert store.count_items() == sum(r.new for r in reports.values())
    health = {r["name"]: r for r in store.sources_health()}
    assert health["eurlex-oj"]["consecutive_failures"] == 1 and "202" in health["eurlex-oj"]["last_error"]
    assert health["cnil"]["consecutive_failures"] == 0 and health["cnil"]["etag"]
    jorf = store.find_by_identifier("jorftext", "JORFTEXT000054245373")
    assert jorf == ["jorf:JORFTEXT000054245373"]
    assert store.get_item(jorf[0])["rubric"].startswith("Décrets, arrêtés, circulaires")  # type: ignore[index]
    logged = store.fetch_log("eurlex-oj")
    assert logged[0]["outcome"] == "failed"


def test_second_run_is_conditional_and_never_duplicates(
        config: Config, demo_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    store = Store(":memory:")
    http = http_client(server=demo_server)
    sources = _recorded(config, ("cnil", "ansm-actualites", "edpb"))
    ingest(config, store, http, NOW, sources)
    before = len(demo_server.requests)
    second = ingest(config, store, http, NOW + timedelta(hours=7), sources)
    assert [r.outcome for r in second] == ["not-modified"] * 3
    assert [r.new for r in second] == [0, 0, 0] and store.count_items() == 524
    feed_requests = [r for r in demo_server.requests[before:] if not r.key.endswith("robots.txt")]
    assert len(feed_requests) == 3 and all(r.status == 304 for r in feed_requests)


def test_one_broken_source_does_not_stop_the_others_and_nothing_stored_is_lost(
        config: Config, replay_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    store = Store(":memory:")
    cnil, ansm, edpb = _recorded(config, ("cnil", "ansm-actualites", "edpb"))
    replay_server.add(cnil.url, body=CNIL_500.read_bytes(), headers={"content-type": "application/rss+xml"})
    # the next answer for the CNIL feed (answers to one URL are served in sequence): a truncated body
    replay_server.add(cnil.url, body=b"<rss><channel><item><title>trunc", headers={"content-type": "application/rss+xml"})
    replay_server.add(ansm.url, status=500)
    replay_server.add(edpb.url, body=b"<html><body>Maintenance</body></html>", headers={"content-type": "text/html"})
    http = http_client(retries=1)
    reports = ingest(config, store, http, NOW, [cnil, ansm, edpb])
    assert [r.outcome for r in reports] == ["ok", "failed", "failed"]
    assert "500" in reports[1].error and "HTML" in reports[2].error
    again = ingest(config, store, http, NOW + timedelta(hours=7), [cnil])
    assert store.count_items() == 500, "a broken later fetch must not lose what is stored"
    assert again[0].new == 0 and "not well-formed" in again[0].warnings[0]
    assert "not well-formed" in store.fetch_log("cnil")[0]["error"], "the warning is recorded, not a quiet day"


def test_sources_of_one_host_run_in_the_calling_thread_and_other_hosts_concurrently(
        config: Config, demo_server: ReplayServer, http_client: Callable[..., HttpClient],
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bool, int]] = []  # (source, in the calling thread?, objects frozen meanwhile)
    real = pipeline.collect

    def spy(source: SourceConfig, http: HttpClient, state: SourceState) -> Collected:
        seen.append((source.name, threading.current_thread() is threading.main_thread(), gc.get_freeze_count()))
        return real(source, http, state)

    monkeypatch.setattr(pipeline, "collect", spy)
    http = http_client(server=demo_server)
    same_host = _recorded(config, ("ansm-actualites", "ansm-securite"))  # both on ansm.sante.fr
    assert len({pipeline.host_of(s.url) for s in same_host}) == 1
    reports = ingest(config, Store(":memory:"), http, NOW, same_host)
    assert [r.outcome for r in reports] == ["ok", "ok"]
    assert [(name, main) for name, main, _ in seen] == [("ansm-actualites", True), ("ansm-securite", True)]
    assert all(frozen > 0 for *_, frozen in seen), "older objects are set aside from full collections during a run"
    assert gc.get_freeze_count() == 0, "and given back to the collector after it"

    seen.clear()
    reports = ingest(config, Store(":memory:"), http, NOW, _recorded(config, ("ansm-actualites", "cnil", "edpb")))
    assert [r.outcome for r in reports] == ["ok", "ok", "ok"]
    assert sorted(name for name, *_ in seen) == ["ansm-actualites", "cnil", "edpb"]
    assert not any(main for _, main, _ in seen), "three hosts: fetched by the pool, stored by this thread"


def test_a_run_inside_a_frozen_heap_leaves_it_frozen() -> None:
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with pipeline._older_objects_frozen():
            pass
        assert gc.get_freeze_count() >= before > 0, "the outer freeze is not undone by an inner run"
    finally:
        gc.unfreeze()


def test_sources_are_interleaved_by_host() -> None:
    def source(name: str, url: str) -> SourceConfig:
        return SourceConfig(name=name, kind="feed", url=url)

    a1, a2, a3 = (source(f"a{n}", f"https://a.example/feed{n}") for n in (1, 2, 3))
    b1, c1 = source("b1", "https://b.example/rss"), source("c1", "http://c.example:8080/x")
    order = pipeline._interleaved_by_host([a1, a2, a3, b1, c1])
    assert [s.name for s in order] == ["a1", "b1", "c1", "a2", "a3"]


def test_due_sources_respect_intervals(config: Config) -> None:
    store = Store(":memory:")
    assert {s.name for s in due_sources(config, store, NOW)} == {s.name for s in config.sources if s.enabled}
    store.ensure_sources({s.name: s.kind for s in config.sources})
    store.record_success("cnil", now=NOW.isoformat(), etag=None, last_modified=None, cursor=None)
    assert "cnil" not in {s.name for s in due_sources(config, store, NOW + timedelta(minutes=5))}
    later = NOW + timedelta(seconds=config.source("cnil").interval)
    assert "cnil" in {s.name for s in due_sources(config, store, later)}


class CountingClassifier(KeywordClassifier):
    built = 0

    def classify(self, items: Sequence[Item]) -> list[Classified]:
        self.seen = getattr(self, "seen", 0) + len(items)
        return super().classify(items)


def test_classification_runs_on_new_items_only_and_the_model_is_not_built_without_them(
        config: Config, demo_server: ReplayServer, http_client: Callable[..., HttpClient]) -> None:
    store = Store(":memory:")
    built: list[CountingClassifier] = []

    def factory() -> CountingClassifier:
        built.append(CountingClassifier())
        return built[-1]

    ingest(config, store, http_client(server=demo_server), NOW, _recorded(config, ("ansm-securite", "edpb")))
    first = classify_pending(store, factory, NOW)
    assert first.classified == 24 and len(built) == 1 and built[0].seen == 24
    assert first.tagged > 0 and list(store.items_to_classify()) == []
    tags = [t for r in store.search("rappel OR edpb OR data", limit=50) for t in store.themes_of(r["id"])]
    assert tags and all(t["reason"] and t["model"] == "keyword" for t in tags)
    again = classify_pending(store, factory, NOW)
    assert again.classified == 0 and len(built) == 1, "nothing new: the classifier is not even built"


class _App(App):
    """The real App on the real sources.toml and the demo replay, with the classifier this test chooses."""

    def __init__(self, tmp_path: Path, server: ReplayServer, factory: Callable[[], Classifier]):
        super().__init__(ROOT / "sources.toml", database=tmp_path / "w.db", url_map=server.url_map, host_delay=0.0)
        self._factory = factory

    def classifier_factory(self) -> Callable[[], Classifier]:
        return self._factory


def test_run_once_ingests_classifies_and_plans(tmp_path: Path, demo_server: ReplayServer) -> None:
    app = _App(tmp_path, demo_server, CountingClassifier)
    try:
        report = run_once(app, NOW, sources=[app.config.source("edpb"), app.config.source("eurlex-oj")])
        assert [r.new for r in report.sources] == [10, 0] and report.classified.classified == 10
        assert report.alerts is not None and report.classify_error == ""
        assert report.failed, "the EUR-Lex bot wall is a failed source"
        quiet = run_once(app, NOW, sources=(), deliver=False)
        assert quiet.sources == [] and quiet.classified.classified == 0 and quiet.alerts is None
    finally:
        app.close()


@pytest.mark.parametrize("error", [ClassifierError("head.npz is corrupt"), RuntimeError("torch: out of memory")])
def test_a_failing_model_does_not_stop_the_alerts(tmp_path: Path, demo_server: ReplayServer,
                                                  error: Exception) -> None:
    def broken() -> Classifier:
        raise error

    app = _App(tmp_path, demo_server, broken)
    try:
        report = run_once(app, NOW, sources=[app.config.source("edpb")])
        assert report.sources[0].new == 10 and str(error) in report.classify_error
        assert report.alerts is not None, "the alerts still ran"
        assert sum(map(len, app.store.items_to_classify())) == 10, "the items wait for the next run"
    finally:
        app.close()
