"""One run of watcher: ingest the due sources, classify what is new, plan and send the alerts that are due.

Three steps, each a function that takes the archive's writer lock and gives what it needs: ``fetch_step`` (ingest
the due sources, then judge the operations incidents), ``classify_step`` (classify what is pending) and
``deliver_step`` (plan and send the alerts, the digests asked for, the operations messages). Every command
(``fetch``, ``classify``, ``deliver``, ``digest``, ``run``) and every daemon job (``watcher.daemon.schedule``) calls
them; ``run_once`` is the three in a row, under one hold of the lock (``run``, the demo). The work itself lives here
(``ingest``, ``classify_pending``) or in its own package (``watcher.notify.service.deliver``: planning with
``notify.plan``, sending with ``notify.deliver``).

Time is passed in (``now``). One broken source never stops the others: every failure is recorded in the store
(source state + fetch log) and reported. A classifier that fails never stops the alerts: its error is kept in the
``RunReport`` and the items stay pending for the next run.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

from classifiers.decide.base import Classified, Classifier
from store import ArchiveFull, Store, StoreError, UpsertResult
from watcher.config import Config, SourceConfig
from watcher.http import HttpClient, host_of
from watcher.legal.links import LinkReport, link_pending
from watcher.legal.normalize import iso
from watcher.models import Collected, SourceState, ThemeTag
from watcher.records import item_from_row, item_to_row
from watcher.sources import build
from watcher.util.errors import ClassifierError, ConfigError, SourceError

if TYPE_CHECKING:
    from watcher.app import App
    from watcher.notify.ops import OpsReport
    from watcher.notify.service import Outcome

log = logging.getLogger("watcher")


@dataclass
class SourceReport:
    name: str
    outcome: str  # ok | degraded (stored, with warnings) | not-modified | failed
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
    """Store what one source produced (new items, new versions), its state and its fetch log line, in one
    transaction (all of it or nothing: the ETag/cursor never moves past items that were not stored), or record
    its failure."""
    started = iso(now)
    if isinstance(outcome, str):
        return _failed(store, source.name, outcome, started, now)
    # degraded: stored, but the source was not read the normal way (a truncated or mis-encoded feed, an entry
    # skipped...): the warnings say how, in the fetch log and in `watcher sources`
    status = "not-modified" if outcome.not_modified else ("degraded" if outcome.warnings else "ok")
    with store.transaction():
        result = _store_outcome(source, outcome, status, elapsed_ms, store=store, started=started, now=now)
    return SourceReport(source.name, status, result.seen, len(result.new), len(result.changed),
                        outcome.requests, warnings=outcome.warnings, new_ids=result.new + result.changed)


def _store_outcome(source: SourceConfig, outcome: Collected, status: str, elapsed_ms: int, *, store: Store,
                   started: str | None, now: datetime) -> UpsertResult:
    result = store.upsert_items([item_to_row(i) for i in outcome.items], started or "")
    store.record_success(source.name, now=started or "", etag=outcome.etag,
                         last_modified=outcome.last_modified, cursor=outcome.cursor)
    store.log_fetch({"source": source.name, "started_at": started, "finished_at": iso(now),
                     "outcome": status, "requests": outcome.requests, "items_seen": result.seen,
                     "items_new": len(result.new), "items_changed": len(result.changed),
                     "error": "; ".join(outcome.warnings), "duration_ms": elapsed_ms})
    return result


def record_safely(source: SourceConfig, outcome: Collected | str, elapsed_ms: int, *, store: Store,
                  now: datetime) -> SourceReport:
    """``record``, but a storage fault (read-only, disk full, locked...) fails this source only: its write was
    rolled back whole, the failure is recorded if the archive still takes that, and the other sources go on."""
    try:
        return record(source, outcome, elapsed_ms, store=store, now=now)
    except StoreError as exc:
        reason = f"not stored: {exc}"
        try:
            return _failed(store, source.name, reason, iso(now), now)
        except ArchiveFull:
            raise  # the disk cannot take even that line: no other source can be stored, the run stops (exit 3)
        except StoreError:
            log.warning("source %s: %s", source.name, reason)
            return SourceReport(source.name, "failed", error=reason)


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
        reports[source.name] = report = record_safely(source, outcome, elapsed_ms, store=store, now=now)
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


RUN_GC_THRESHOLD = 50_000  # allocations between two young collections during a run (Python's default: 700)


@contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """During a run, garbage collections are rare and scan only what the run allocates:

    - the objects that existed before (modules, configuration, a loaded model) are set aside with ``gc.freeze()``
      and given back to the collector afterwards (nothing is leaked: frozen objects are only exempt from scanning
      while the run lasts); a run nested in another (or concurrent with one) leaves this to the outer run;
    - the young generation is collected every ``RUN_GC_THRESHOLD`` allocations instead of every 700: parsing
      allocates millions of short-lived objects that reference counting frees (elements, entries, items, rows form
      no cycles), so at Python's pace nearly every young collection finds nothing. The threshold is restored after
      the run."""
    threshold = gc.get_threshold()
    raised = threshold[0] < RUN_GC_THRESHOLD
    if raised:
        gc.set_threshold(RUN_GC_THRESHOLD, *threshold[1:])
    try:
        if gc.get_freeze_count():
            yield
            return
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
    finally:
        if raised:
            gc.set_threshold(*threshold)


def classify_pending(store: Store, classifier_factory: Callable[[], Classifier], now: datetime,
                     batch_size: int = 64) -> ClassifyReport:
    """Classify items that are new or changed since their last classification, a page of ``batch_size`` at a
    time (never the whole backlog in memory). The classifier (and its model) is built only if there is something
    to classify."""
    report = ClassifyReport()
    classifier: Classifier | None = None
    for rows in store.items_to_classify(page_size=batch_size):
        if classifier is None:
            classifier = classifier_factory()
        items = [item_from_row(r) for r in rows]
        results = classifier.classify(items)
        keep_embeddings(store, classifier, rows, results)
        for row, item, result in zip(rows, items, results, strict=True):
            store.save_themes(item.id, row["content_hash"], [_tag_row(t) for t in result.tags], now=iso(now) or "",
                              model=classifier.name, model_version=classifier.version,
                              scope_reason=result.scope)
            report.classified += 1
            report.tagged += bool(result.tags)
            report.in_scope_untagged += bool(result.scope)
            report.model_consulted += result.model.startswith("consulted")
    if classifier is not None:  # after the run: the version says whether the model failed on the way
        report.model = f"{classifier.name} {classifier.version}"
        report.degraded = str(getattr(classifier, "degraded", None) or "")
    return report


def keep_embeddings(store: Store, classifier: Classifier, rows: Sequence[Mapping[str, Any]],
                    results: Sequence[Classified]) -> int:
    """Store the embeddings the classifier computed for ``rows`` (search by meaning); 0 when it computed none."""
    vectors = [(str(row["id"]), result.embedding) for row, result in zip(rows, results, strict=True)
               if result.embedding is not None]
    embedder = getattr(classifier, "embedder", None)
    if not vectors or embedder is None:
        return 0
    from watcher.search.similar import vector_model

    hashes = {str(r["id"]): str(r.get("content_hash") or "") for r in rows}
    return store.vectors.save(vectors, model=vector_model(embedder()), hashes=hashes)


def _tag_row(tag: ThemeTag) -> dict[str, object]:
    return {"theme": tag.theme, "score": round(float(tag.score), 4), "reason": tag.reason, "origin": tag.origin,
            "model": tag.model, "model_version": tag.model_version}


@dataclass
class FetchReport:
    """What one fetch step did: a report per source and the operations incidents it opened or closed."""

    sources: list[SourceReport] = field(default_factory=list)
    incidents: OpsReport | None = None  # None when no source was fetched (nothing to judge)

    @property
    def failed(self) -> bool:
        return any(r.outcome == "failed" for r in self.sources)


@dataclass
class RunReport:
    """What one ``run_once`` did: a report per source, the classification, the alerts (None when not asked)."""

    sources: list[SourceReport] = field(default_factory=list)
    classified: ClassifyReport = field(default_factory=ClassifyReport)
    classify_error: str = ""  # why classification stopped (the items stay pending); empty when it did not
    alerts: Outcome | None = None
    incidents: OpsReport | None = None  # operations incidents opened or closed by this run's fetches
    linked: LinkReport = field(default_factory=LinkReport)  # items linked to the acts they are or name

    @property
    def failed(self) -> bool:
        """True when a source failed or a delivery is waiting for a retry or a person."""
        alerts_failed = self.alerts is not None and bool(self.alerts.report.failed or self.alerts.report.held)
        return any(r.outcome == "failed" for r in self.sources) or alerts_failed


# -- the steps: every command and every daemon job calls these, each takes the writer lock ---------------------
# The lock is re-entrant within a process (``store.lock``): ``run_once`` holds it across its steps, so that no other
# writer slips in between the fetch and the alerts.

def fetch_step(app: App, now: datetime, *, sources: Sequence[SourceConfig] | None = None,
               names: Sequence[str] = (), force: bool = False,
               on_source: Callable[[SourceReport], None] | None = None) -> FetchReport:
    """Fetch and store ``sources`` (default: the due ones, or ``names``; every enabled one with ``force``), then
    judge the operations incidents from what was recorded (``notify.ops.check_sources``): a cron ``watcher fetch``
    opens and closes them as the daemon does; their messages are sent by the next delivery step."""
    with app.store.writer_lock():
        chosen = due_sources(app.config, app.store, now, names, force) if sources is None else list(sources)
        if not chosen:
            return FetchReport()
        reports = ingest(app.config, app.store, app.http, now, chosen, on_done=on_source)
        from watcher.notify.ops import check_sources

        return FetchReport(reports, check_sources(app.store, app.config, now))


def classify_step(app: App, now: datetime) -> tuple[ClassifyReport, str]:
    """Classify what is pending with the App's classifier, then link the new items to the acts they are or name
    (:func:`link_step`): (report, why it stopped, "" when it did not). A model that fails is reported, never
    raised: the items stay pending and the alerts of the others still go."""
    with app.store.writer_lock():
        result = _classify_safely(app, now)
        link_step(app, now)
        return result


def deliver_step(app: App, now: datetime, *, cadences: Sequence[str] | None = None, since: date | None = None,
                 names: Sequence[str] = (), stop: threading.Event | None = None) -> Outcome:
    """Plan and send what is due: the alerts of ``cadences`` (default all), the digests asked for with
    ``deliver --since`` (``since`` asks for one more now, for the subscriptions ``names``, default all: one per
    person and channel) and the operations messages. Messages group an act with what names it, then items on the same event (:func:`grouping`).
    ``stop`` (SIGTERM): finish the message in flight, leave the rest pending."""
    from watcher.notify.plan import plan_since
    from watcher.notify.service import CADENCES, alerts_of, deliver

    with app.store.writer_lock():
        asked = plan_since(app.store, alerts_of(app.config, app.store), since, now, names) if since else 0
        outcome = deliver(app.store, app.config, now, cadences=tuple(cadences or CADENCES), stop=stop,
                          same_event=grouping(app.store))
    outcome.since = asked
    return outcome


def run_once(app: App, now: datetime, *, sources: Sequence[SourceConfig] | None = None, force: bool = False,
             classify: bool = True, deliver: bool = True,
             on_source: Callable[[SourceReport], None] | None = None) -> RunReport:
    """Ingest ``sources`` (default: the due ones, every enabled one with ``force``), classify what is pending,
    then plan and send what is due (unless ``deliver`` is false): the three steps above, under one hold of the
    archive's writer lock (another run that writes waits for it, up to the App's ``lock_wait``)."""
    report = RunReport()
    with app.store.writer_lock():
        fetched = fetch_step(app, now, sources=sources, force=force, on_source=on_source)
        report.sources, report.incidents = fetched.sources, fetched.incidents
        if classify:
            report.classified, report.classify_error = _classify_safely(app, now)
            report.linked = link_step(app, now)
        if deliver:
            report.alerts = deliver_step(app, now)
    return report


def grouping(store: Store) -> Any:
    """How messages group items: an act with what names it ("voir aussi", ``watcher.legal.links``), then the
    items on the same event (``watcher.search.similar``)."""
    from watcher.legal.links import grouped_by_links
    from watcher.search.similar import same_event_of

    return grouped_by_links(store.links_among, same_event_of(store))


def link_step(app: App, now: datetime) -> LinkReport:
    """Link the items read since the last run to the acts they are or name, and let themes flow along the links
    (``watcher.legal.links``); the theme labels give the reasons their words."""
    from classifiers.decide.themes import load_themes

    labels = {t.id: t.label_fr for t in load_themes(app.config.settings.themes or None)}
    with app.store.writer_lock():
        return link_pending(app.store, now, theme_labels=labels)


def _classify_safely(app: App, now: datetime) -> tuple[ClassifyReport, str]:
    """Classify what is pending; a classifier or model that fails is logged and reported, never raised, so that
    the alerts of what was classified before still go out."""
    try:
        return classify_pending(app.store, app.classifier_factory(), now), ""
    except (ConfigError, StoreError):  # not the model's: the alerts would meet the same problem
        raise
    except ClassifierError as exc:
        log.error("classification stopped: %s", exc)
        return ClassifyReport(), str(exc)
    except Exception as exc:  # the model (torch, transformers, a corrupt head file) must not stop the alerts
        log.exception("classification stopped")
        return ClassifyReport(), f"unexpected {type(exc).__name__}: {exc}"
