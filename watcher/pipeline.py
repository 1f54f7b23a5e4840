"""One run of watcher: ingest every due source, classify what is new, plan and send alerts.

This module only orchestrates; each step lives in its own module. Time is passed in (``now``). One broken source
never stops the others: every failure is recorded in the store (source state + fetch log) and reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime

from classifiers.base import Classifier
from store import Store
from watcher.config import Config, SourceConfig
from watcher.errors import SourceError
from watcher.http import HttpClient
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
    """Fetch and parse the sources concurrently (the HTTP client keeps one request at a time per host), while
    this thread stores each result as it arrives: only this thread touches the store. Reports come back in the
    order of ``sources``."""
    chosen = list(sources)
    store.ensure_sources({s.name: s.kind for s in config.sources})
    states = {s.name: _state(store, s.name) for s in chosen}
    reports: dict[str, SourceReport] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(chosen))), thread_name_prefix="fetch") as pool:
        futures = {pool.submit(_timed_collect, s, http, states[s.name]): s for s in chosen}
        for future in as_completed(futures):
            source = futures[future]
            report = record(source, *future.result(), store=store, now=now)
            reports[source.name] = report
            if on_done:
                on_done(report)
    return [reports[s.name] for s in chosen]


def classify_pending(store: Store, classifier_factory: Callable[[], Classifier], now: datetime,
                     batch_size: int = 64) -> ClassifyReport:
    """Classify items that are new or changed since their last classification. The classifier (and its
    model) is built only if there is something to classify."""
    pending = store.items_to_classify()
    report = ClassifyReport()
    if not pending:
        return report
    classifier = classifier_factory()
    report.model = f"{classifier.name} {classifier.version}"
    for start in range(0, len(pending), batch_size):
        rows = pending[start : start + batch_size]
        items = [item_from_row(r) for r in rows]
        for row, item, tags in zip(rows, items, classifier.classify(items), strict=True):
            scope = classifier.scope(item) if not tags else None
            store.save_themes(item.id, row["content_hash"], [_tag_row(t) for t in tags], now=iso(now) or "",
                              model=classifier.name, model_version=classifier.version,
                              scope_reason=scope)
            report.classified += 1
            report.tagged += bool(tags)
            report.in_scope_untagged += bool(scope)
    return report


def _tag_row(tag: ThemeTag) -> dict[str, object]:
    return {"theme": tag.theme, "score": round(float(tag.score), 4), "reason": tag.reason, "origin": tag.origin,
            "model": tag.model, "model_version": tag.model_version}
