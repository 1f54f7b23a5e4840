"""One run of watcher: ingest every due source, classify what is new, plan and send alerts.

This module only orchestrates; each step lives in its own module. Time is passed in (``now``). One broken source
never stops the others: every failure is recorded in the store (source state + fetch log) and reported.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import zip_longest

from classifiers.base import Classifier
from store import Store
from watcher.config import Config, SourceConfig
from watcher.errors import SourceError
from watcher.http import HttpClient, host_of
from watcher.models import Collected, SourceState, ThemeTag
from watcher.normalize import iso
from watcher.records import item_from_row, item_to_row
from watcher.sources import build

log = logging.getLogger("watcher")


@dataclass
class SourceReport:
    name: str
    outcome: str  # ok | not-modified | failed
    seen: int = 0
    new: int = 0
    changed: int = 0
    requests: int = 0
    error: str = ""
    warnings: tuple[str, ...] = ()
    new_ids: list[str] = field(default_factory=list)


@dataclass
class ClassifyReport:
    classified: int = 0
    tagged: int = 0
    in_scope_untagged: int = 0
    model: str = ""
    model_consulted: int = 0  # items the embedding model was run on (the rules decided the others)
    degraded: str = ""  # why the model failed and the rules ran alone ("" when it did not fail)


def _state(store: Store, name: str) -> SourceState:
    row = store.source_state(name)
    return SourceState(name=name, etag=row.get("etag"), last_modified=row.get("last_modified"),
                       cursor=row.get("cursor"), consecutive_failures=int(row.get("consecutive_failures") or 0),
                       last_success=row.get("last_success"), last_error=row.get("last_error"))


def collect(source: SourceConfig, http: HttpClient, state: SourceState) -> Collected:
    """Fetch and parse one source; no store writes (used by ``fetch --dry-run`` too)."""
    return build(source).collect(http, state)


def collect_safely(source: SourceConfig, http: HttpClient, state: SourceState) -> Collected | str:
    """Fetch and parse one source; a failure comes back as its one-line reason instead of an exception."""
    try:
        return collect(source, http, state)
    except SourceError as exc:
        return exc.reason
    except Exception as exc:  # a bug or an unforeseen input must not stop the other sources
        log.exception("unexpected error in source %s", source.name)
        return f"unexpected {type(exc).__name__}: {exc}"


def record(source: SourceConfig, outcome: Collected | str, elapsed_ms: int, *, store: Store,
           now: datetime) -> SourceReport:
    """Store what one source produced (new items, new versions) and its state, or record its failure."""
    started = iso(now)
    if isinstance(outcome, str):
        return _failed(store, source.name, outcome, started, now)
    result = store.upsert_items([item_to_row(i) for i in outcome.items], started or "")
    store.record_success(source.name, now=started or "", etag=outcome.etag,
                         last_modified=outcome.last_modified, cursor=outcome.cursor)
    status = "not-modified" if outcome.not_modified else "ok"
    store.log_fetch({"source": source.name, "started_at": started, "finished_at": iso(now),
                     "outcome": status, "requests": outcome.requests, "items_seen": result.seen,
                     "items_new": len(result.new), "items_changed": len(result.changed),
                     "error": "; ".join(outcome.warnings), "duration_ms": elapsed_ms})
    return SourceReport(source.name, status, result.seen, len(result.new), len(result.changed),
                        outcome.requests, warnings=outcome.warnings, new_ids=result.new + result.changed)


def _timed_collect(source: SourceConfig, http: HttpClient, state: SourceState) -> tuple[Collected | str, int]:
    clock = time.monotonic()
    outcome = collect_safely(source, http, state)
    return outcome, int((time.monotonic() - clock) * 1000)


def _failed(store: Store, name: str, reason: str, started: str | None, now: datetime) -> SourceReport:
    failures = store.record_failure(name, now=started or "", error=reason)
    store.log_fetch({"source": name, "started_at": started, "finished_at": iso(now), "outcome": "failed",
                     "requests": 0, "items_seen": 0, "items_new": 0, "items_changed": 0, "error": reason})
    log.warning("source %s failed (%d in a row): %s", name, failures, reason)
    return SourceReport(name, "failed", error=reason)


def due_sources(config: Config, store: Store, now: datetime, names: Sequence[str] | None = None,
                force: bool = False) -> list[SourceConfig]:
    """Enabled sources whose interval has elapsed since their last attempt (all of them with ``force``)."""
    chosen = [config.source(n) for n in names] if names else [s for s in config.sources if s.enabled]
    if force or names:
        return chosen
    due = []
    for source in chosen:
        last = store.source_state(source.name).get("last_attempt")
        if not last or (now - datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds() >= source.interval:
            due.append(source)
    return due


def ingest(config: Config, store: Store, http: HttpClient, now: datetime, sources: Iterable[SourceConfig],
           on_done: Callable[[SourceReport], None] | None = None, workers: int = 4) -> list[SourceReport]:
    """Fetch and parse the sources, and store each result as it arrives; only the calling thread touches the
    store. Sources on different hosts are fetched concurrently (at most ``workers`` threads); the sources of one
    host are taken in turn anyway (the HTTP client keeps one request at a time per host), so when every source is
    on one host they run in this thread: a pool would only add GIL hand-offs to CPU-bound parsing. Reports come
    back in the order of ``sources``."""
    chosen = list(sources)
    store.ensure_sources({s.name: s.kind for s in config.sources})
    states = {s.name: _state(store, s.name) for s in chosen}
    reports: dict[str, SourceReport] = {}

    def done(source: SourceConfig, outcome: Collected | str, elapsed_ms: int) -> None:
        reports[source.name] = report = record(source, outcome, elapsed_ms, store=store, now=now)
        if on_done:
            on_done(report)

    order = _interleaved_by_host(chosen)
    hosts = len({host_of(s.url) for s in chosen})
    with _older_objects_frozen():
        if hosts <= 1 or workers <= 1:
            for source in order:
                done(source, *_timed_collect(source, http, states[source.name]))
        else:
            with ThreadPoolExecutor(max_workers=min(workers, hosts), thread_name_prefix="fetch") as pool:
                futures = {pool.submit(_timed_collect, s, http, states[s.name]): s for s in order}
                for future in as_completed(futures):
                    done(futures[future], *future.result())
    return [reports[s.name] for s in chosen]


def _interleaved_by_host(sources: Sequence[SourceConfig]) -> list[SourceConfig]:
    """The sources in round-robin order of their hosts (a, b, c, a, b, a...), so that the sources a pool runs at
    the same time are on different hosts rather than queued behind one host's pacing."""
    lanes: dict[str, list[SourceConfig]] = {}
    for source in sources:
        lanes.setdefault(host_of(source.url), []).append(source)
    return [s for batch in zip_longest(*lanes.values()) for s in batch if s is not None]


@contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """During a run, full garbage collections scan only what the run allocates: the objects that existed before
    (modules, configuration, a loaded model) are set aside with ``gc.freeze()`` and given back to the collector
    afterwards. Nothing is leaked: frozen objects are only exempt from scanning while the run lasts. A run nested
    in another (or concurrent with one) leaves the freezing to the outer run."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def classify_pending(store: Store, classifier_factory: Callable[[], Classifier], now: datetime,
                     batch_size: int = 64) -> ClassifyReport:
    """Classify items that are new or changed since their last classification. The classifier (and its
    model) is built only if there is something to classify."""
    pending = store.items_to_classify()
    report = ClassifyReport()
    if not pending:
        return report
    classifier = classifier_factory()
    for start in range(0, len(pending), batch_size):
        rows = pending[start : start + batch_size]
        items = [item_from_row(r) for r in rows]
        for row, item, result in zip(rows, items, classifier.classify(items), strict=True):
            store.save_themes(item.id, row["content_hash"], [_tag_row(t) for t in result.tags], now=iso(now) or "",
                              model=classifier.name, model_version=classifier.version,
                              scope_reason=result.scope)
            report.classified += 1
            report.tagged += bool(result.tags)
            report.in_scope_untagged += bool(result.scope)
            report.model_consulted += result.model.startswith("consulted")
    report.model = f"{classifier.name} {classifier.version}"
    report.degraded = str(getattr(classifier, "degraded", None) or "")
    return report


def _tag_row(tag: ThemeTag) -> dict[str, object]:
    return {"theme": tag.theme, "score": round(float(tag.score), 4), "reason": tag.reason, "origin": tag.origin,
            "model": tag.model, "model_version": tag.model_version}
